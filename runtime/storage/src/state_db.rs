//! The authenticated state store.
//!
//! Three column families serve the state:
//! - `tree_nodes`: Jellyfish Merkle nodes (blake3), one tree version per block height;
//! - `tree_values`: every version of every value, keyed `key_hash ‖ version (BE)`, so
//!   the tree can prove any key at any retained height;
//! - `state`: the latest value by raw key, for fast point reads and prefix scans.
//!
//! [`StateDb::prepare_commit`] turns a block's diff into the new root and the writes
//! for all three; the caller adds its own (block, receipts, consensus metadata) and
//! writes one batch, so a crash leaves either the old or the new height.

use crate::kv::{Cf, KvStore, WriteBatch};
use crate::{Result, StorageError};
use atonomi_primitives::codec;
use atonomi_primitives::proof::{key_hash, Blake3Hasher, StateProof};
use atonomi_primitives::Hash;
use jmt::storage::{LeafNode, Node, NodeKey, TreeReader};
use jmt::{JellyfishMerkleTree, KeyHash, OwnedValue, Version};
use std::collections::BTreeMap;

/// A block's effect on state: raw key → new value (`None` deletes).
pub type StateDiff = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

const META_VERSION: &[u8] = b"state_version";
const META_ROOT: &[u8] = b"state_root/";

/// Largest record we accept from disk (a corrupt length would otherwise allocate).
const MAX_RECORD: usize = 64 << 20;

fn root_key(version: u64) -> Vec<u8> {
    let mut k = META_ROOT.to_vec();
    k.extend_from_slice(&version.to_be_bytes());
    k
}

fn value_key(kh: &KeyHash, version: Version) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..32].copy_from_slice(&kh.0);
    k[32..].copy_from_slice(&version.to_be_bytes());
    k
}

/// Reads the tree out of a [`KvStore`] for `jmt`.
struct TreeStore<'a, S>(&'a S);

impl<S: KvStore> TreeReader for TreeStore<'_, S> {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        match self.0.get(Cf::TreeNodes, &codec::encode(node_key))? {
            None => Ok(None),
            Some(bytes) => Ok(Some(codec::decode(&bytes, MAX_RECORD)?)),
        }
    }

    fn get_value_option(
        &self,
        max_version: Version,
        kh: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        let seek = value_key(&kh, max_version);
        match self.0.get_at_or_before(Cf::TreeValues, &seek, &kh.0)? {
            None => Ok(None),
            Some((_, bytes)) => Ok(codec::decode::<Option<Vec<u8>>>(&bytes, MAX_RECORD)?),
        }
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        // Only used by jmt's state-sync restore, which we do not use.
        anyhow::bail!("get_rightmost_leaf is not supported by this store")
    }
}

/// Authenticated state over any [`KvStore`].
#[derive(Debug)]
pub struct StateDb<S> {
    kv: S,
}

impl<S: KvStore> StateDb<S> {
    pub fn new(kv: S) -> Self {
        StateDb { kv }
    }

    pub fn kv(&self) -> &S {
        &self.kv
    }

    /// The latest committed state version (block height), `None` before genesis.
    pub fn version(&self) -> Result<Option<u64>> {
        match self.kv.get(Cf::Meta, META_VERSION)? {
            None => Ok(None),
            Some(b) => Ok(Some(decode(&b, Cf::Meta)?)),
        }
    }

    /// The state root at `version`.
    pub fn root_at(&self, version: u64) -> Result<Hash> {
        match self.kv.get(Cf::Meta, &root_key(version))? {
            Some(b) => decode(&b, Cf::Meta),
            None => Err(StorageError::MissingVersion {
                requested: version,
                latest: self.version()?,
            }),
        }
    }

    /// The latest value of a raw state key.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.kv.get(Cf::State, key)
    }

    /// The value of a raw state key as of `version`.
    pub fn get_at(&self, key: &[u8], version: u64) -> Result<Option<Vec<u8>>> {
        self.check_version(version)?;
        TreeStore(&self.kv)
            .get_value_option(version, key_hash(key))
            .map_err(|e| StorageError::Tree(e.to_string()))
    }

    /// The value of `key` at `version` with a proof of it (or of its absence) against
    /// the root at `version`.
    pub fn prove(&self, key: &[u8], version: u64) -> Result<(Option<Vec<u8>>, StateProof)> {
        self.check_version(version)?;
        let reader = TreeStore(&self.kv);
        let tree = JellyfishMerkleTree::<_, Blake3Hasher>::new(&reader);
        let (value, proof) = tree
            .get_with_proof(key_hash(key), version)
            .map_err(|e| StorageError::Tree(e.to_string()))?;
        Ok((value, StateProof(proof)))
    }

    /// Up to `limit` latest entries whose raw keys start with `prefix`, from `start`.
    pub fn scan(
        &self,
        prefix: &[u8],
        start: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.kv.scan(Cf::State, prefix, start, limit)
    }

    fn check_version(&self, version: u64) -> Result<()> {
        let latest = self.version()?;
        match latest {
            Some(l) if version <= l => Ok(()),
            _ => Err(StorageError::MissingVersion {
                requested: version,
                latest,
            }),
        }
    }

    /// Computes the root after applying `diff` as `version` (which must be the next
    /// version: 0 for genesis, latest + 1 after) and returns it with every write the
    /// commit needs. Nothing is written until the caller writes the batch.
    pub fn prepare_commit(&self, diff: &StateDiff, version: u64) -> Result<(Hash, WriteBatch)> {
        let expected = match self.version()? {
            None => 0,
            Some(v) => v + 1,
        };
        if version != expected {
            return Err(StorageError::Invalid(format!(
                "commit of state version {version}, expected {expected}"
            )));
        }
        let reader = TreeStore(&self.kv);
        let tree = JellyfishMerkleTree::<_, Blake3Hasher>::new(&reader);
        let inserts_only = !diff.is_empty() && diff.values().all(Option::is_some);
        let (root, update) = if inserts_only {
            // One pass over the sorted keys, hashing each new internal node once:
            // several times faster than key-by-key updates for large blocks. jmt only
            // offers it for non-empty, insert-only sets.
            let kvs: Vec<(KeyHash, OwnedValue)> = diff
                .iter()
                .filter_map(|(k, v)| v.clone().map(|v| (key_hash(k), v)))
                .collect();
            tree.batch_put_value_sets(vec![kvs], None, version)
                .map(|(roots, batch)| (roots.first().copied(), batch))
                .map_err(|e| StorageError::Tree(e.to_string()))?
        } else {
            tree.put_value_set(diff.iter().map(|(k, v)| (key_hash(k), v.clone())), version)
                .map(|(root, batch)| (Some(root), batch))
                .map_err(|e| StorageError::Tree(e.to_string()))?
        };
        let root = root.ok_or_else(|| StorageError::Tree("no root computed".into()))?;

        let mut batch = WriteBatch::new();
        for (node_key, node) in update.node_batch.nodes() {
            batch.put(Cf::TreeNodes, codec::encode(node_key), codec::encode(node));
        }
        for ((v, kh), value) in update.node_batch.values() {
            batch.put(
                Cf::TreeValues,
                value_key(kh, *v).to_vec(),
                codec::encode(value),
            );
        }
        for (k, v) in diff {
            match v {
                Some(v) => batch.put(Cf::State, k.clone(), v.clone()),
                None => batch.delete(Cf::State, k.clone()),
            }
        }
        let root = Hash(root.0);
        batch.put(Cf::Meta, META_VERSION, codec::encode(&version));
        batch.put(Cf::Meta, root_key(version), codec::encode(&root));
        Ok((root, batch))
    }

    /// Prepares and writes a commit on its own (tests, benchmarks, genesis).
    pub fn commit(&self, diff: &StateDiff, version: u64) -> Result<Hash> {
        let (root, batch) = self.prepare_commit(diff, version)?;
        self.kv.write(batch)?;
        Ok(root)
    }
}

fn decode<T: borsh::BorshDeserialize>(bytes: &[u8], cf: Cf) -> Result<T> {
    codec::decode(bytes, MAX_RECORD).map_err(|source| StorageError::Corrupt {
        cf: cf.name(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;
    use atonomi_primitives::proof::{empty_root, verify_raw};

    fn diff(pairs: &[(&[u8], Option<&[u8]>)]) -> StateDiff {
        pairs
            .iter()
            .map(|(k, v)| (k.to_vec(), v.map(|v| v.to_vec())))
            .collect()
    }

    #[test]
    fn versions_roots_and_proofs() {
        let db = StateDb::new(MemoryStore::new());
        assert_eq!(db.version().unwrap(), None);
        let r0 = db.commit(&diff(&[]), 0).unwrap();
        assert_eq!(r0, empty_root());
        let r1 = db
            .commit(&diff(&[(b"a", Some(b"1")), (b"b", Some(b"2"))]), 1)
            .unwrap();
        let r2 = db
            .commit(&diff(&[(b"a", Some(b"3")), (b"b", None)]), 2)
            .unwrap();
        assert_ne!(r1, r2);
        assert_eq!(db.root_at(1).unwrap(), r1);

        assert_eq!(db.get(b"a").unwrap(), Some(b"3".to_vec()));
        assert_eq!(db.get(b"b").unwrap(), None);
        assert_eq!(db.get_at(b"a", 1).unwrap(), Some(b"1".to_vec()));
        assert_eq!(db.get_at(b"b", 1).unwrap(), Some(b"2".to_vec()));
        assert_eq!(db.get_at(b"b", 2).unwrap(), None);

        // Inclusion at an old height, non-inclusion of a deleted key and an absent key.
        let (v, p) = db.prove(b"b", 1).unwrap();
        assert_eq!(v.as_deref(), Some(&b"2"[..]));
        verify_raw(r1, b"b", Some(b"2"), &p).unwrap();
        assert!(verify_raw(r1, b"b", Some(b"9"), &p).is_err());
        assert!(verify_raw(r2, b"b", Some(b"2"), &p).is_err());
        let (v, p) = db.prove(b"b", 2).unwrap();
        assert_eq!(v, None);
        verify_raw(r2, b"b", None, &p).unwrap();
        let (v, p) = db.prove(b"zzz", 2).unwrap();
        assert_eq!(v, None);
        verify_raw(r2, b"zzz", None, &p).unwrap();
        assert!(verify_raw(r2, b"a", None, &p).is_err());
    }

    #[test]
    fn rejects_out_of_order_versions_and_future_reads() {
        let db = StateDb::new(MemoryStore::new());
        assert!(db.commit(&diff(&[]), 1).is_err());
        db.commit(&diff(&[]), 0).unwrap();
        assert!(db.commit(&diff(&[]), 0).is_err());
        assert!(matches!(
            db.prove(b"a", 5),
            Err(StorageError::MissingVersion { .. })
        ));
    }

    #[test]
    fn batch_and_incremental_updates_agree() {
        // Insert-only diffs take jmt's batch path, diffs with deletes the incremental
        // one: both must produce the same tree.
        let batch = StateDb::new(MemoryStore::new());
        let incremental = StateDb::new(MemoryStore::new());
        batch.commit(&diff(&[]), 0).unwrap();
        incremental.commit(&diff(&[]), 0).unwrap();
        let mut all = StateDiff::new();
        for round in 1..6u64 {
            let mut d = StateDiff::new();
            for i in 0..300u64 {
                let k = (i * 7 + round * 13).to_be_bytes().to_vec();
                d.insert(k, Some((i + round).to_le_bytes().to_vec()));
            }
            all.extend(d.clone());
            let rb = batch.commit(&d, round).unwrap();
            // Force the incremental path with a delete of a key that never existed.
            let mut d2 = d.clone();
            d2.insert(b"never".to_vec(), None);
            let ri = incremental.commit(&d2, round).unwrap();
            assert_eq!(rb, ri, "round {round}");
        }
        for (k, v) in &all {
            let (got, p) = batch.prove(k, 5).unwrap();
            assert_eq!(&got, v);
            verify_raw(batch.root_at(5).unwrap(), k, v.as_deref(), &p).unwrap();
        }
    }

    #[test]
    fn unchanged_blocks_keep_the_root() {
        let db = StateDb::new(MemoryStore::new());
        db.commit(&diff(&[(b"k", Some(b"v"))]), 0).unwrap();
        let r0 = db.root_at(0).unwrap();
        let r1 = db.commit(&diff(&[]), 1).unwrap();
        assert_eq!(r0, r1);
        let (_, p) = db.prove(b"k", 1).unwrap();
        verify_raw(r1, b"k", Some(b"v"), &p).unwrap();
    }
}
