//! The bridge relayer's records of what it sent to Ethereum, kept beside the chain in
//! the meta column under `relay/`: the one thing a task other than the consensus host
//! writes, through a handle the host's [`super::Chain`] hands out. Readers see them
//! through [`super::ChainReader`] (`atonomi_getBridgeStatus`).

use atonomi_storage::{Cf, KvRead, KvStore, RocksStore, StateDb, WriteBatch};
use std::sync::Arc;

/// The key prefix of relay records in the meta column.
pub const RELAY_PREFIX: &[u8] = b"relay/";

fn key(epoch: u64) -> Vec<u8> {
    let mut k = RELAY_PREFIX.to_vec();
    k.extend_from_slice(&epoch.to_be_bytes());
    k
}

/// Reads and writes relay records by epoch, and nothing else.
#[derive(Clone)]
pub struct RelayLog {
    store: Arc<StateDb<RocksStore>>,
}

impl std::fmt::Debug for RelayLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayLog").finish_non_exhaustive()
    }
}

impl RelayLog {
    pub(super) fn new(store: Arc<StateDb<RocksStore>>) -> RelayLog {
        RelayLog { store }
    }

    /// The record of `epoch`, as stored.
    pub fn load(&self, epoch: u64) -> atonomi_storage::Result<Option<Vec<u8>>> {
        self.store.kv().get(Cf::Meta, &key(epoch))
    }

    /// Replaces the record of `epoch`, durably.
    pub fn store(&self, epoch: u64, record: Vec<u8>) -> atonomi_storage::Result<()> {
        let mut batch = WriteBatch::new();
        batch.put(Cf::Meta, key(epoch), record);
        self.store.kv().write(batch)
    }
}
