//! Backups of the data directory: a RocksDB checkpoint taken while the node runs, and
//! where a data directory stands (its height, head and double-sign guard), which a
//! backup records and a restore compares before it replaces anything.

use super::blocks::{Blocks, MetaU64, META_HEIGHT};
use super::consensus::{GUARD_KEY, WAL_PREFIX};
use super::{corrupt, ChainError, ChainReader, Result};
use atonomi_consensus::SignGuard;
use atonomi_primitives::Hash;
use atonomi_storage::{tables, Cf, KvRead, KvStore, RocksConfig, RocksStore, WriteBatch};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Where a data directory stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataPoint {
    /// The last committed height (0: only the genesis state).
    pub height: u64,
    /// That block's hash and state root (absent at genesis).
    pub block_hash: Option<Hash>,
    pub state_root: Option<Hash>,
    /// The highest height its double-sign guard says this validator may have signed
    /// at (absent: it never signed).
    pub guard_height: Option<u64>,
}

impl ChainReader {
    /// A consistent copy of the data directory at `dir` (which must not exist), taken
    /// without stopping anything, and where that copy stands.
    pub fn checkpoint(&self, dir: &Path) -> Result<DataPoint> {
        self.store.kv().checkpoint(dir)?;
        read_point(dir)
    }
}

/// [`ChainReader::checkpoint`] of a data directory no node is running on.
pub fn checkpoint_closed(data: &Path, dir: &Path) -> Result<DataPoint> {
    open_closed(data)?.checkpoint(dir)?;
    read_point(dir)
}

/// Opens a data directory no node is running on.
fn open_closed(data: &Path) -> Result<RocksStore> {
    if !data.join("CURRENT").is_file() {
        return Err(ChainError::NotData(data.to_path_buf()));
    }
    let config = RocksConfig {
        block_cache_bytes: 8 << 20,
        write_buffer_bytes: 8 << 20,
        sync_writes: true,
    };
    RocksStore::open(data, &config).map_err(|error| ChainError::Open {
        path: data.to_path_buf(),
        error,
    })
}

/// Where the data directory at `data` stands; fails while a node runs on it.
pub fn read_point(data: &Path) -> Result<DataPoint> {
    let kv = open_closed(data)?;
    let height = tables::get::<MetaU64, _>(&kv, &META_HEIGHT)?.unwrap_or(0);
    let header = match height {
        0 => None,
        h => Some(
            tables::get::<Blocks, _>(&kv, &h)?
                .ok_or(ChainError::HeadMissing(atonomi_primitives::Height::new(h)))?
                .header,
        ),
    };
    let guard = match kv.get(Cf::Consensus, GUARD_KEY)? {
        Some(b) => Some(SignGuard::from_bytes(&b).map_err(corrupt("the double-sign guard"))?),
        None => None,
    };
    Ok(DataPoint {
        height,
        block_hash: header.as_ref().map(|h| h.hash()),
        state_root: header.as_ref().map(|h| h.state_root),
        guard_height: guard.and_then(|g| g.highest()).map(|h| h.get()),
    })
}

/// Makes a restored data directory forget what its validator signed: the guard is
/// emptied and the consensus WAL of the height in progress (whose replay would sign
/// those messages again and fill the guard) removed. A backup's guard is older than
/// what the validator signed since, so it cannot be trusted to refuse what was signed
/// after the backup; an empty guard with the key's signed marker present is what a
/// wiped validator has, and the node then waits to hear the network's height and
/// refuses every height up to it (`HostConfig::wait_for_peers`).
pub fn forget_signing(data: &Path) -> Result<()> {
    let kv = open_closed(data)?;
    let mut batch = WriteBatch::new();
    batch.put(
        Cf::Consensus,
        GUARD_KEY.to_vec(),
        SignGuard::new().to_bytes(),
    );
    for (k, _) in kv.scan(Cf::Consensus, &[WAL_PREFIX], &[], usize::MAX)? {
        batch.delete(Cf::Consensus, k);
    }
    kv.write(batch)?;
    Ok(())
}
