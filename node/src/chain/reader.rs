//! The read-only face of the chain store: [`ChainReader`], which every task but the
//! consensus host holds.

use super::checkpoints::voting_set_in;
use super::{corrupt, Result};
use atonomi_primitives::block::BlockHeader;
use atonomi_primitives::codec;
use atonomi_primitives::gov::UpgradePlan;
use atonomi_primitives::state::{StateKey, ValidatorSet};
use atonomi_primitives::{AccountId, ChainId, Hash, Height, Timestamp};
use atonomi_runtime::upgrade::KnownUpgrades;
use atonomi_storage::{KvRead, RocksStore, StateDb};

type StorageResult<T> = atonomi_storage::Result<T>;
use std::sync::Arc;
use tokio::sync::watch;

/// How many times [`ChainReader::at_one_height`] reads while blocks land under it.
pub const READ_ATTEMPTS: u32 = 4;

/// What the writer publishes after each commit: the last committed height with its
/// block's hash and time (before the first block: height 0, no hash, genesis time).
#[derive(Debug, Clone, Copy)]
pub(super) struct Head {
    height: Height,
    hash: Hash,
    time: Timestamp,
}

impl Head {
    pub(super) fn genesis(time: Timestamp) -> Head {
        Head {
            height: Height::new(0),
            hash: Hash::ZERO,
            time,
        }
    }

    pub(super) fn of(header: &BlockHeader) -> Head {
        Head {
            height: header.height,
            hash: header.hash(),
            time: header.timestamp,
        }
    }
}

/// The read-only face of the chain store, cheap to clone, for every task but the
/// host: committed blocks, receipts, certificates, checkpoints and the state. It takes
/// no lock the writer holds while writing: RocksDB serves concurrent reads, the state
/// log guards its own memory, and the head arrives on a watch channel once the block
/// that moved it is on disk. A height read from [`ChainReader::height`] stays readable
/// afterwards (blocks are never removed, a retained version's state is read through
/// the log's history), so a reply that names a height reads at it; reads of the
/// latest state that must name theirs go through [`ChainReader::at_one_height`].
#[derive(Clone)]
pub struct ChainReader {
    pub(super) store: Arc<StateDb<RocksStore>>,
    pub(super) head: watch::Receiver<Head>,
    pub chain_id: ChainId,
    /// The upgrades this binary executes (all it implements, unless a test narrows
    /// them).
    pub upgrades: KnownUpgrades,
}

impl std::fmt::Debug for ChainReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainReader")
            .field("chain_id", &self.chain_id)
            .field("height", &self.height())
            .finish_non_exhaustive()
    }
}

impl ChainReader {
    /// The state and the node's tables, read-only.
    pub fn db(&self) -> StateView<'_> {
        StateView(&self.store)
    }

    /// The last committed height (0 before the first block).
    pub fn height(&self) -> Height {
        self.head.borrow().height
    }

    pub fn head_hash(&self) -> Hash {
        self.head.borrow().hash
    }

    pub fn head_timestamp(&self) -> Timestamp {
        self.head.borrow().time
    }

    /// The last committed height with its block's hash and time, read together.
    pub fn head(&self) -> (Height, Hash, Timestamp) {
        let head = *self.head.borrow();
        (head.height, head.hash, head.time)
    }

    /// Runs `read` on the latest state and returns its answer with the height it was
    /// read at, for a reply that names its height. The state's version (its height)
    /// moves only when a block is written, under the lock those writes take; when it
    /// is the same before and after `read`, every read in between saw that height.
    /// When blocks land during [`READ_ATTEMPTS`] reads in a row, the last answer comes
    /// with the height it started at (it read that height or newer).
    pub fn at_one_height<T, E>(
        &self,
        mut read: impl FnMut(Height) -> Result<T, E>,
    ) -> Result<(T, Height), E> {
        let version = || Height::new(self.store.version().unwrap_or(0));
        let mut attempt = 1;
        loop {
            let before = version();
            let answer = read(before)?;
            if version() == before || attempt == READ_ATTEMPTS {
                return Ok((answer, before));
            }
            attempt += 1;
        }
    }

    fn decode_state<T: borsh::BorshDeserialize>(&self, key: &StateKey) -> Result<Option<T>> {
        match self.store.get(&key.to_bytes())? {
            None => Ok(None),
            Some(b) => {
                let what = format!("state record {key:?}");
                Ok(Some(codec::decode(&b, 16 << 20).map_err(corrupt(what))?))
            }
        }
    }

    /// An account's next nonce in the committed state (0 for an account that does not
    /// exist or cannot be read).
    pub fn next_nonce(&self, account: &AccountId) -> u64 {
        match self.store.get(&StateKey::Account(*account).to_bytes()) {
            Ok(Some(b)) => codec::decode::<atonomi_primitives::state::Account>(&b, 1 << 16)
                .map_or(0, |a| a.nonce),
            _ => 0,
        }
    }

    /// The network parameters in the committed state (the defaults where genesis wrote
    /// none): the one way the node reads them.
    pub fn params(&self) -> Result<atonomi_primitives::Params> {
        Ok(self.decode_state(&StateKey::Params)?.unwrap_or_default())
    }

    /// The validator set voting on the next height (from the committed state).
    pub fn next_validator_set(&self) -> Result<ValidatorSet> {
        voting_set_in(self.height().next(), |k| {
            Ok(self.store.get(&k.to_bytes())?)
        })
    }

    /// The lowest height whose block is stored (`None`: no block yet).
    pub fn lowest_block_height(&self) -> Result<Option<Height>> {
        let first = self
            .store
            .kv()
            .scan(atonomi_storage::Cf::Blocks, &[], &[], 1)?;
        Ok(first.first().and_then(|(k, _)| {
            let bytes: [u8; 8] = k.as_slice().try_into().ok()?;
            Some(Height::new(u64::from_be_bytes(bytes)))
        }))
    }

    /// The lowest height whose state can still be proven.
    pub fn lowest_state_height(&self) -> Option<Height> {
        self.store.oldest().map(Height::new)
    }

    /// Approximate bytes on disk of each column family (RocksDB's live SST files and
    /// memtables), by name.
    pub fn storage_sizes(&self) -> Result<Vec<(&'static str, u64)>> {
        let sizes = self.store.kv().size_by_cf()?;
        Ok(sizes.into_iter().map(|(cf, b)| (cf.name(), b)).collect())
    }

    /// The upgrade scheduled at the next height when this binary does not execute it:
    /// the next block cannot be run here, the node must be replaced.
    pub fn missing_upgrade(&self) -> Result<Option<UpgradePlan>> {
        let next = self.height().next();
        let plan = atonomi_runtime::upgrade::scheduled(&|k: &[u8]| self.store.get(k)).map_err(
            |error| super::ChainError::Execution {
                height: next,
                error,
            },
        )?;
        Ok(plan.filter(|p| p.height <= next && !self.upgrades.knows(&p.name)))
    }
}

/// The state and the node's own tables (blocks, index, meta), read-only: what a
/// [`ChainReader`] reads through. The store that writes stays with the host's
/// [`super::Chain`].
#[derive(Debug, Clone, Copy)]
pub struct StateView<'a>(&'a StateDb<RocksStore>);

impl<'a> StateView<'a> {
    /// The latest value of a state key.
    pub fn get(&self, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
        self.0.get(key)
    }

    /// Up to `limit` latest state entries under `prefix`, from `start`.
    pub fn scan(
        &self,
        prefix: &[u8],
        start: &[u8],
        limit: usize,
    ) -> StorageResult<Vec<(Vec<u8>, Vec<u8>)>> {
        self.0.scan(prefix, start, limit)
    }

    /// The value of a state key at a retained version.
    pub fn get_at(&self, key: &[u8], version: u64) -> StorageResult<Option<Vec<u8>>> {
        self.0.get_at(key, version)
    }

    /// A state key's value at a retained version with its proof.
    pub fn prove(
        &self,
        key: &[u8],
        version: u64,
    ) -> StorageResult<(Option<Vec<u8>>, atonomi_primitives::statelog::LogProof)> {
        self.0.prove(key, version)
    }

    /// The state root at a retained version.
    pub fn root_at(&self, version: u64) -> StorageResult<Hash> {
        self.0.root_at(version)
    }

    /// The state of a retained version in chunks (see [`StateDb::snapshot`]).
    pub fn snapshot(
        &self,
        version: u64,
        twigs_per_chunk: u64,
        sink: impl FnMut(atonomi_storage::SnapshotChunk) -> StorageResult<()>,
    ) -> StorageResult<atonomi_storage::SnapshotHead> {
        self.0.snapshot(version, twigs_per_chunk, sink)
    }

    /// The node's tables, for reads only.
    pub fn kv(&self) -> &'a impl KvRead {
        self.0.kv()
    }
}
