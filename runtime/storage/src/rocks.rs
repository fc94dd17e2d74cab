//! The RocksDB backend: one column family per [`Cf`], atomic write batches.

use crate::error::{Result, StorageError};
use crate::kv::{Cf, KvRead, KvStore, WriteBatch};
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DBCompressionType, Direction, IteratorMode,
    Options, ReadOptions, DB,
};
use std::path::Path;

/// Tuning knobs with defaults sized for a validator on a small machine.
#[derive(Debug, Clone)]
pub struct RocksConfig {
    /// Shared block cache across column families.
    pub block_cache_bytes: usize,
    /// Memtable size per column family.
    pub write_buffer_bytes: usize,
    /// `fsync` every batch. Consensus needs durable commits; benchmarks of the
    /// runtime alone may turn it off to see the engine's bound.
    pub sync_writes: bool,
}

impl Default for RocksConfig {
    fn default() -> Self {
        RocksConfig {
            block_cache_bytes: 256 << 20,
            write_buffer_bytes: 64 << 20,
            sync_writes: true,
        }
    }
}

#[derive(Debug)]
pub struct RocksStore {
    db: DB,
    sync: bool,
}

impl RocksStore {
    pub fn open(path: &Path, config: &RocksConfig) -> Result<RocksStore> {
        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.set_max_background_jobs(2);
        db_opts.set_bytes_per_sync(1 << 20);

        let cache = Cache::new_lru_cache(config.block_cache_bytes);
        let cfs = Cf::ALL.iter().map(|cf| {
            let mut table = BlockBasedOptions::default();
            table.set_block_cache(&cache);
            // Point lookups dominate (devices, accounts, tree nodes): bloom filters let
            // misses skip SST files.
            table.set_bloom_filter(10.0, false);
            table.set_cache_index_and_filter_blocks(true);
            let mut o = Options::default();
            o.set_block_based_table_factory(&table);
            o.set_write_buffer_size(config.write_buffer_bytes);
            o.set_compression_type(DBCompressionType::Lz4);
            ColumnFamilyDescriptor::new(cf.name(), o)
        });
        let db = DB::open_cf_descriptors(&db_opts, path, cfs)?;
        Ok(RocksStore {
            db,
            sync: config.sync_writes,
        })
    }

    fn cf(&self, cf: Cf) -> Result<&rocksdb::ColumnFamily> {
        self.db
            .cf_handle(cf.name())
            .ok_or_else(|| StorageError::Invalid(format!("missing column family {}", cf.name())))
    }

    /// Approximate bytes on disk (live SST files plus memtables) of all column families.
    pub fn approximate_size(&self) -> Result<u64> {
        Ok(self.size_by_cf()?.iter().map(|(_, b)| b).sum())
    }

    /// A consistent copy of the whole database at `dir` (which must not exist yet),
    /// taken while it is in use: RocksDB's checkpoint flushes the memtables, then
    /// hard-links the immutable SST files (copies them across filesystems) and copies
    /// the manifest. Every write batch is in it whole or not at all.
    pub fn checkpoint(&self, dir: &Path) -> Result<()> {
        rocksdb::checkpoint::Checkpoint::new(&self.db)?.create_checkpoint(dir)?;
        Ok(())
    }

    /// Approximate bytes (live SST files plus memtables) of each column family.
    pub fn size_by_cf(&self) -> Result<Vec<(Cf, u64)>> {
        let mut out = Vec::with_capacity(Cf::ALL.len());
        for cf in Cf::ALL {
            let h = self.cf(cf)?;
            let mut bytes = 0u64;
            for prop in ["rocksdb.live-sst-files-size", "rocksdb.size-all-mem-tables"] {
                bytes += self.db.property_int_value_cf(h, prop)?.unwrap_or(0);
            }
            out.push((cf, bytes));
        }
        Ok(out)
    }

    /// Flushes memtables to SST files (used before measuring size on disk).
    pub fn flush(&self) -> Result<()> {
        for cf in Cf::ALL {
            self.db.flush_cf(self.cf(cf)?)?;
        }
        Ok(())
    }
}

impl KvRead for RocksStore {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get_cf(self.cf(cf)?, key)?)
    }

    fn get_at_or_before(
        &self,
        cf: Cf,
        key: &[u8],
        prefix: &[u8],
    ) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let mut it = self.db.raw_iterator_cf(self.cf(cf)?);
        it.seek_for_prev(key);
        if !it.valid() {
            it.status()?;
            return Ok(None);
        }
        match (it.key(), it.value()) {
            (Some(k), Some(v)) if k.starts_with(prefix) => Ok(Some((k.to_vec(), v.to_vec()))),
            _ => Ok(None),
        }
    }

    fn get_many(&self, cf: Cf, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>> {
        let h = self.cf(cf)?;
        self.db
            .batched_multi_get_cf(h, keys.iter().copied(), true)
            .into_iter()
            .map(|r| Ok(r?.map(|v| v.to_vec())))
            .collect()
    }

    fn floor_batch(
        &self,
        cf: Cf,
        keys: &[&[u8]],
        strict: bool,
    ) -> Result<Vec<Option<crate::kv::Entry>>> {
        let mut it = self.db.raw_iterator_cf(self.cf(cf)?);
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            it.seek_for_prev(key);
            if strict && it.valid() && it.key() == Some(*key) {
                it.prev();
            }
            if !it.valid() {
                it.status()?;
                out.push(None);
                continue;
            }
            out.push(match (it.key(), it.value()) {
                (Some(k), Some(v)) => Some((k.to_vec(), v.to_vec())),
                _ => None,
            });
        }
        Ok(out)
    }

    fn range(&self, cf: Cf, from: &[u8], to: &[u8]) -> Result<Vec<crate::kv::Entry>> {
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(to.to_vec());
        let mut it = self.db.raw_iterator_cf_opt(self.cf(cf)?, ro);
        it.seek(from);
        let mut out = Vec::new();
        while it.valid() {
            if let (Some(k), Some(v)) = (it.key(), it.value()) {
                out.push((k.to_vec(), v.to_vec()));
            }
            it.next();
        }
        it.status()?;
        Ok(out)
    }

    fn scan(
        &self,
        cf: Cf,
        prefix: &[u8],
        start: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let from = if start.is_empty() { prefix } else { start };
        let mut ro = ReadOptions::default();
        ro.set_prefix_same_as_start(false);
        let it = self.db.iterator_cf_opt(
            self.cf(cf)?,
            ro,
            IteratorMode::From(from, Direction::Forward),
        );
        let mut out = Vec::new();
        for item in it {
            let (k, v) = item?;
            if !k.starts_with(prefix) || out.len() >= limit {
                break;
            }
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }
}

impl KvStore for RocksStore {
    fn write(&self, batch: WriteBatch) -> Result<()> {
        let mut wb = rocksdb::WriteBatch::default();
        for (cf, k, v) in &batch.ops {
            let h = self.cf(*cf)?;
            match v {
                Some(v) => wb.put_cf(h, k, v),
                None => wb.delete_cf(h, k),
            }
        }
        for (cf, from, to) in &batch.ranges {
            wb.delete_range_cf(self.cf(*cf)?, from, to);
        }
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(self.sync);
        self.db.write_opt(wb, &wo)?;
        Ok(())
    }
}
