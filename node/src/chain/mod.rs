//! The node's chain: RocksDB with the authenticated state, blocks, commit
//! certificates, receipts, the transaction index and consensus data; building,
//! executing and committing blocks. A block, its certificate, its state changes, its
//! receipts and the consensus clean-up go to disk in **one** write batch.
//!
//! [`Chain`] is the one writer (the consensus host owns it); [`ChainReader`]
//! (`reader.rs`) is what every other task holds; `blocks.rs` is the block store,
//! `consensus.rs` the consensus store, `checkpoints.rs` the checkpoint epochs.

mod backup;
mod blocks;
mod checkpoints;
mod consensus;
mod reader;
mod relay_log;

pub use backup::{checkpoint_closed, forget_signing, read_point, DataPoint};
use reader::Head;
pub use reader::{ChainReader, StateView, READ_ATTEMPTS};
pub use relay_log::{RelayLog, RELAY_PREFIX};

use blocks::{
    BlockIndex, Blocks, Commits, MetaHash, MetaU64, Receipts, TxIndex, META_GENESIS_HASH,
    META_HEIGHT,
};
pub(crate) use checkpoints::voting_set_in;
use checkpoints::{checkpoint_key, META_CHECKPOINT_LAST};
pub use consensus::StoredEvidence;
use consensus::{BODY_PREFIX, GUARD_KEY, WAL_PREFIX};

use atonomi_consensus::{CommitCertificate, SignGuard};
use atonomi_genesis::Genesis;
use atonomi_primitives::block::{receipts_root, tx_root, Block, BlockHeader};
use atonomi_primitives::codec;
use atonomi_primitives::event::Receipt;
use atonomi_primitives::state::StateKey;
use atonomi_primitives::{AccountId, Hash, Height, Timestamp};
use atonomi_runtime::upgrade::KnownUpgrades;
use atonomi_runtime::{execute_block_preverified, genesis_diff, BlockContext, SigCheck};
use atonomi_storage::tables;
use atonomi_storage::{
    Cf, KvRead, LogConfig, RocksConfig, RocksStore, Staged, StateDb, WriteBatch,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::watch;

/// What can go wrong in the chain store. Every variant says what, and where on disk
/// when it is about a data directory.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error(transparent)]
    Storage(#[from] atonomi_storage::StorageError),
    #[error("creating {}: {error}", path.display())]
    CreateDir {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("opening RocksDB at {}: {error}", path.display())]
    Open {
        path: PathBuf,
        error: atonomi_storage::StorageError,
    },
    #[error("{} was written by an older atonomi whose state was a Jellyfish Merkle tree; this version keeps state in the state log and cannot read it: start from a new --home (the chain replays from its peers) or import a snapshot", path.display())]
    LegacyState { path: PathBuf },
    #[error("{} holds a chain with another genesis (hash {stored}, this genesis {genesis}); use another --home or remove it", path.display())]
    OtherGenesis {
        path: PathBuf,
        stored: Hash,
        genesis: Hash,
    },
    #[error("building the genesis state: {0}")]
    GenesisState(atonomi_runtime::Fatal),
    #[error("{} is not a node's data directory (no RocksDB there)", .0.display())]
    NotData(PathBuf),
    #[error("the last committed block (height {0}) is missing")]
    HeadMissing(Height),
    #[error("{what} is corrupt: {error}")]
    Corrupt {
        what: String,
        error: atonomi_primitives::codec::CodecError,
    },
    #[error("executing block {height}: {error}")]
    Execution {
        height: Height,
        error: atonomi_runtime::Fatal,
    },
    #[error("block {block} does not follow height {head}")]
    NotNext { block: Height, head: Height },
    #[error("block {height}: its {what} differs from the header's")]
    HeaderMismatch { height: Height, what: &'static str },
    #[error("commit of block {block} at height {height} does not follow {head}")]
    CommitMismatch {
        block: Hash,
        height: Height,
        head: Height,
    },
}

type Result<T, E = ChainError> = std::result::Result<T, E>;

fn corrupt(
    what: impl Into<String>,
) -> impl FnOnce(atonomi_primitives::codec::CodecError) -> ChainError {
    let what = what.into();
    move |error| ChainError::Corrupt { what, error }
}

/// Largest block accepted from disk or the network.
pub const MAX_BLOCK_BYTES: usize = 32 << 20;

/// A block run against the state: what `build` and `execute` make an [`Executed`] of.
struct Ran {
    staged: Staged,
    receipts: Vec<Receipt>,
    batch: WriteBatch,
    /// The hash of the set voting on the next height.
    next_set: Hash,
    nonces: Vec<(AccountId, u64)>,
}

/// The next nonce of each account a block's state diff writes (a removed account is
/// back at nonce 0), in key order.
fn changed_nonces(diff: &atonomi_runtime::StateDiff) -> Result<Vec<(AccountId, u64)>> {
    let from = [atonomi_primitives::state::tag::ACCOUNT];
    let to = [atonomi_primitives::state::tag::ACCOUNT + 1];
    diff.range(from.to_vec()..to.to_vec())
        .filter_map(|(key, value)| {
            let id: [u8; 32] = key.get(1..)?.try_into().ok()?;
            Some((AccountId::new(id), value))
        })
        .map(|(account, value)| {
            let nonce = match value {
                Some(bytes) => {
                    codec::decode::<atonomi_primitives::state::Account>(bytes, 1 << 16)
                        .map_err(corrupt("an account the block wrote"))?
                        .nonce
                }
                None => 0,
            };
            Ok((account, nonce))
        })
        .collect()
}

/// A block executed against the committed state, ready to commit if decided.
#[derive(Debug)]
pub struct Executed {
    pub block: Block,
    pub receipts: Vec<Receipt>,
    /// State, log and meta writes of the new version.
    pub batch: WriteBatch,
    /// The state log's change in memory, applied once the batch is written.
    pub staged: Staged,
    /// The next nonce of every account the block changed, for the mempool (no other
    /// account's nonce changed).
    pub nonces: Vec<(AccountId, u64)>,
}

/// The chain store's one writer, owned by the consensus host: it builds, executes and
/// commits blocks and keeps the consensus records (WAL, guard, pending bodies,
/// evidence). Everything a reader may do, it does too (it dereferences to its
/// [`ChainReader`]); [`Chain::reader`] hands out readers.
pub struct Chain {
    reader: ChainReader,
    publish: watch::Sender<Head>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("chain_id", &self.chain_id)
            .field("height", &self.height())
            .finish_non_exhaustive()
    }
}

impl std::ops::Deref for Chain {
    type Target = ChainReader;

    fn deref(&self) -> &ChainReader {
        &self.reader
    }
}

/// The node's records a data directory imported from a snapshot at `block`'s height
/// starts with (the state itself comes from the snapshot): the genesis it belongs to,
/// its height, the block and its certificate, the bridge's checkpoint count then, and
/// a new double-sign guard.
pub(crate) fn snapshot_records(
    genesis: &Genesis,
    block: &Block,
    certificate: &CommitCertificate,
    epoch: (u64, Option<Height>),
) -> WriteBatch {
    let mut batch = WriteBatch::new();
    let h = block.header.height.get();
    tables::put::<MetaHash>(
        &mut batch,
        &META_GENESIS_HASH,
        &Hash::of(genesis.to_json().as_bytes()),
    );
    tables::put::<MetaU64>(&mut batch, &META_HEIGHT, &h);
    tables::put::<Blocks>(&mut batch, &h, block);
    tables::put::<BlockIndex>(&mut batch, &block.hash().0, &h);
    tables::put::<Commits>(&mut batch, &h, certificate);
    tables::put::<MetaU64>(&mut batch, &META_CHECKPOINT_LAST, &epoch.0);
    if let Some(at) = epoch.1 {
        batch.put(
            Cf::Meta,
            checkpoint_key(epoch.0),
            at.get().to_be_bytes().to_vec(),
        );
    }
    batch.put(
        Cf::Consensus,
        GUARD_KEY.to_vec(),
        SignGuard::new().to_bytes(),
    );
    batch
}

/// The meta key the Jellyfish-tree state of earlier versions wrote.
const LEGACY_STATE_VERSION: &[u8] = b"state_version";

impl Chain {
    /// Opens the data directory, writing the genesis state on first start and refusing
    /// a directory that belongs to another genesis.
    pub fn open(
        path: &Path,
        genesis: &Genesis,
        config: &RocksConfig,
        log: LogConfig,
    ) -> Result<Chain> {
        std::fs::create_dir_all(path).map_err(|error| ChainError::CreateDir {
            path: path.to_path_buf(),
            error,
        })?;
        let kv = RocksStore::open(path, config).map_err(|error| ChainError::Open {
            path: path.to_path_buf(),
            error,
        })?;
        if kv.get(Cf::Meta, LEGACY_STATE_VERSION)?.is_some() {
            return Err(ChainError::LegacyState {
                path: path.to_path_buf(),
            });
        }
        let db = StateDb::open_with(kv, log).map_err(|error| ChainError::Open {
            path: path.to_path_buf(),
            error,
        })?;
        let genesis_hash = Hash::of(genesis.to_json().as_bytes());
        match tables::get::<MetaHash, _>(db.kv(), &META_GENESIS_HASH)? {
            Some(stored) if stored != genesis_hash => {
                return Err(ChainError::OtherGenesis {
                    path: path.to_path_buf(),
                    stored,
                    genesis: genesis_hash,
                })
            }
            Some(_) => {}
            None => {
                let diff = genesis_diff(&genesis.state()).map_err(ChainError::GenesisState)?;
                let (staged, mut batch) = db.prepare_commit(&diff, 0)?;
                tables::put::<MetaHash>(&mut batch, &META_GENESIS_HASH, &genesis_hash);
                tables::put::<MetaU64>(&mut batch, &META_HEIGHT, &0);
                // A new node's guard exists from the start: a missing guard later
                // means lost data, never a fresh node.
                batch.put(
                    Cf::Consensus,
                    GUARD_KEY.to_vec(),
                    SignGuard::new().to_bytes(),
                );
                db.write_and_apply(batch, staged)?;
            }
        }
        let height = Height::new(tables::get::<MetaU64, _>(db.kv(), &META_HEIGHT)?.unwrap_or(0));
        let head = if height.get() == 0 {
            Head::genesis(Timestamp::new(genesis.genesis_time_ms))
        } else {
            Head::of(
                &tables::get::<Blocks, _>(db.kv(), &height.get())?
                    .ok_or(ChainError::HeadMissing(height))?
                    .header,
            )
        };
        let (publish, head) = watch::channel(head);
        Ok(Chain {
            reader: ChainReader {
                store: Arc::new(db),
                head,
                chain_id: genesis.chain_id.clone(),
                upgrades: KnownUpgrades::ALL,
            },
            publish,
        })
    }

    /// Executes only these of the upgrades this binary implements (tests that play
    /// an older binary); before any reader is handed out.
    pub fn with_upgrades(mut self, upgrades: KnownUpgrades) -> Chain {
        self.reader.upgrades = upgrades;
        self
    }

    /// A read-only handle on this chain, for another task.
    pub fn reader(&self) -> ChainReader {
        self.reader.clone()
    }

    /// The relayer's own records, beside the chain (see [`RelayLog`]).
    pub fn relay_log(&self) -> RelayLog {
        RelayLog::new(self.reader.store.clone())
    }

    /// The store, writes included: the writer's alone.
    fn store(&self) -> &StateDb<RocksStore> {
        &self.reader.store
    }

    /// Executes `txs` as the next block and builds its header.
    pub fn build(
        &self,
        txs: Vec<Vec<u8>>,
        proposer: AccountId,
        timestamp: Timestamp,
        sig_check: SigCheck,
    ) -> Result<Executed> {
        let height = self.height().next();
        let timestamp = Timestamp::new(timestamp.get().max(self.head_timestamp().get() + 1));
        let header = BlockHeader {
            chain_id: self.chain_id.clone(),
            height,
            parent_hash: self.head_hash(),
            timestamp,
            proposer,
            tx_root: tx_root(&txs),
            state_root: Hash::ZERO,
            receipts_root: Hash::ZERO,
            validator_set_hash: self.next_validator_set()?.hash(),
            next_validator_set_hash: Hash::ZERO,
        };
        let preverified = vec![sig_check == SigCheck::Trusted; txs.len()];
        let mut block = Block { header, txs };
        let Ran {
            staged,
            receipts,
            batch,
            next_set,
            nonces,
        } = self.run(&block, &preverified)?;
        block.header.state_root = staged.root();
        block.header.receipts_root = receipts_root(&receipts);
        block.header.next_validator_set_hash = next_set;
        Ok(Executed {
            block,
            receipts,
            batch,
            staged,
            nonces,
        })
    }

    /// Executes a proposed block and checks the roots its header claims;
    /// `preverified[i]` says this node already verified the signature of exactly
    /// `block.txs[i]` (see `Mailbox::preverified`), the others are verified here.
    pub fn execute(&self, block: Block, preverified: &[bool]) -> Result<Executed> {
        if block.header.height != self.height().next() {
            return Err(ChainError::NotNext {
                block: block.header.height,
                head: self.height(),
            });
        }
        let Ran {
            staged,
            receipts,
            batch,
            next_set,
            nonces,
        } = self.run(&block, preverified)?;
        let mismatch = |what| ChainError::HeaderMismatch {
            height: block.header.height,
            what,
        };
        if staged.root() != block.header.state_root {
            return Err(mismatch("state root"));
        }
        if receipts_root(&receipts) != block.header.receipts_root {
            return Err(mismatch("receipts root"));
        }
        if next_set != block.header.next_validator_set_hash {
            return Err(mismatch("next validator-set hash"));
        }
        Ok(Executed {
            block,
            receipts,
            batch,
            staged,
            nonces,
        })
    }

    fn run(&self, block: &Block, preverified: &[bool]) -> Result<Ran> {
        let ctx = BlockContext {
            chain_id: self.chain_id.clone(),
            height: block.header.height,
            timestamp: block.header.timestamp,
            upgrades: self.upgrades,
        };
        let reader = |k: &[u8]| self.db().get(k);
        let out =
            execute_block_preverified(&reader, &ctx, &block.txs, preverified).map_err(|error| {
                ChainError::Execution {
                    height: block.header.height,
                    error,
                }
            })?;
        // The set voting on the next height, from the state after this block.
        let after = |key: &StateKey| -> Result<Option<Vec<u8>>> {
            let raw = key.to_bytes();
            match out.diff.get(&raw) {
                Some(v) => Ok(v.clone()),
                None => Ok(self.db().get(&raw)?),
            }
        };
        let next_set = voting_set_in(block.header.height.next(), after)?.hash();
        let (staged, batch) = self
            .store()
            .prepare_commit(&out.diff, block.header.height.get())?;
        let nonces = changed_nonces(&out.diff)?;
        Ok(Ran {
            staged,
            receipts: out.receipts,
            batch,
            next_set,
            nonces,
        })
    }

    /// Commits an executed block with its certificate in one write batch, with the
    /// state changes, receipts, transaction index, new height and checkpoint epoch, and
    /// the deletion of every WAL record and pending block body (the WAL only ever holds
    /// the height in progress, which this decides).
    pub fn commit(&mut self, executed: Executed, certificate: &CommitCertificate) -> Result<()> {
        let Executed {
            block,
            receipts,
            mut batch,
            staged,
            nonces: _,
        } = executed;
        let height = block.header.height;
        if height != self.height().next()
            || certificate.height != height
            || certificate.block != block.hash()
        {
            return Err(ChainError::CommitMismatch {
                block: certificate.block,
                height,
                head: self.height(),
            });
        }
        let h = height.get();
        tables::put::<Blocks>(&mut batch, &h, &block);
        tables::put::<BlockIndex>(&mut batch, &block.hash().0, &h);
        tables::put::<Commits>(&mut batch, &h, certificate);
        for (i, r) in receipts.iter().enumerate() {
            tables::put::<Receipts>(&mut batch, &(h, i as u32), r);
            tables::put::<TxIndex>(&mut batch, &r.tx_hash.0, &(h, i as u32));
        }
        crate::index::add_block(&mut batch, &block.header, &receipts);
        tables::put::<MetaU64>(&mut batch, &META_HEIGHT, &h);
        let params = self.params()?;
        if h % params.checkpoint_interval.max(1) == 0
            || block.header.next_validator_set_hash != block.header.validator_set_hash
        {
            let epoch = self.last_checkpoint_epoch()? + 1;
            batch.put(Cf::Meta, checkpoint_key(epoch), h.to_be_bytes().to_vec());
            tables::put::<MetaU64>(&mut batch, &META_CHECKPOINT_LAST, &epoch);
        }
        for (k, _) in self
            .db()
            .kv()
            .scan(Cf::Consensus, &[WAL_PREFIX], &[], usize::MAX)?
        {
            batch.delete(Cf::Consensus, k);
        }
        for (k, _) in self
            .db()
            .kv()
            .scan(Cf::Consensus, &[BODY_PREFIX], &[], usize::MAX)?
        {
            batch.delete(Cf::Consensus, k);
        }
        self.store().write_and_apply(batch, staged)?;
        // Readers see the new height only once its block and state are on disk.
        self.publish.send_replace(Head::of(&block.header));
        Ok(())
    }
}
