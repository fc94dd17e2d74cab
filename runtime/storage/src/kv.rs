//! The key-value interface both backends implement.

use crate::Result;

/// Column families: one per concern, so each can be tuned and scanned on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cf {
    /// Small singletons: latest state version, latest block height, etc.
    Meta,
    /// Latest value of every state key (fast point reads and prefix scans).
    State,
    /// Jellyfish Merkle tree nodes, by borsh-encoded node key.
    TreeNodes,
    /// Every version of every value: key hash ‖ version (big-endian) → Option<value>.
    TreeValues,
    /// Blocks by height (big-endian).
    Blocks,
    /// Block height by block hash.
    BlockIndex,
    /// Commit certificates by height.
    Commits,
    /// Receipts by (height, index).
    Receipts,
    /// Transaction location (height, index) by hash.
    TxIndex,
    /// Consensus metadata (WAL, double-sign guard).
    Consensus,
    /// The state log's slots: serial (big-endian) → leaf hash ‖ key.
    Log,
    /// The state log's twigs: twig index (big-endian) → entries root ‖ active bitmap.
    Twigs,
    /// The state log's per-height records: height (big-endian) → what the block changed.
    LogHistory,
}

impl Cf {
    pub const ALL: [Cf; 13] = [
        Cf::Meta,
        Cf::State,
        Cf::TreeNodes,
        Cf::TreeValues,
        Cf::Blocks,
        Cf::BlockIndex,
        Cf::Commits,
        Cf::Receipts,
        Cf::TxIndex,
        Cf::Consensus,
        Cf::Log,
        Cf::Twigs,
        Cf::LogHistory,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Cf::Meta => "meta",
            Cf::State => "state",
            Cf::TreeNodes => "tree_nodes",
            Cf::TreeValues => "tree_values",
            Cf::Blocks => "blocks",
            Cf::BlockIndex => "block_index",
            Cf::Commits => "commits",
            Cf::Receipts => "receipts",
            Cf::TxIndex => "tx_index",
            Cf::Consensus => "consensus",
            Cf::Log => "log",
            Cf::Twigs => "twigs",
            Cf::LogHistory => "log_history",
        }
    }
}

/// A set of writes applied atomically.
#[derive(Debug, Default, Clone)]
pub struct WriteBatch {
    pub(crate) ops: Vec<(Cf, Vec<u8>, Option<Vec<u8>>)>,
}

impl WriteBatch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn put(&mut self, cf: Cf, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push((cf, key.into(), Some(value.into())));
    }

    pub fn delete(&mut self, cf: Cf, key: impl Into<Vec<u8>>) {
        self.ops.push((cf, key.into(), None));
    }

    pub fn extend(&mut self, other: WriteBatch) {
        self.ops.extend(other.ops);
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// One key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// What the node needs from a key-value store.
pub trait KvStore: Send + Sync {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// The entry with the greatest key `<= key` among keys starting with `prefix`.
    fn get_at_or_before(
        &self,
        cf: Cf,
        key: &[u8],
        prefix: &[u8],
    ) -> Result<Option<(Vec<u8>, Vec<u8>)>>;

    /// For each key, the entry with the greatest key `<= key` (`< key` when `strict`),
    /// over the whole column family. One iterator serves the whole batch.
    fn floor_batch(&self, cf: Cf, keys: &[&[u8]], strict: bool) -> Result<Vec<Option<Entry>>>;

    /// Up to `limit` entries whose keys start with `prefix`, from `start` (inclusive,
    /// must itself start with `prefix`, or be empty for the beginning), in key order.
    fn scan(
        &self,
        cf: Cf,
        prefix: &[u8],
        start: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;

    /// Applies the batch atomically (and durably, for disk stores).
    fn write(&self, batch: WriteBatch) -> Result<()>;
}
