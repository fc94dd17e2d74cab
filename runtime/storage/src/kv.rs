//! The key-value interface both backends implement.

use crate::error::Result;

/// Column families: one per concern, so each can be tuned and scanned on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cf {
    /// Small singletons: latest state version, latest block height, etc.
    Meta,
    /// Latest value of every state key (fast point reads and prefix scans).
    State,
    /// Not written by the node: the Jellyfish Merkle store that the state log replaced
    /// kept its nodes here. Kept so that the comparison benchmark
    /// (`examples/compare-stores`) can run that design beside the log.
    TreeNodes,
    /// Not written by the node (see [`Cf::TreeNodes`]).
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
    /// The state log's links: raw key → serial of its active entry ‖ value hash ‖ next key.
    Links,
    /// The state log's slots: serial (big-endian) → leaf hash ‖ key.
    Log,
    /// The state log's twigs: twig index (big-endian) → entries root ‖ active bitmap.
    Twigs,
    /// The state log's per-height records: height (big-endian) → what the block changed.
    LogHistory,
    /// The state log's undo records: height (big-endian) ‖ raw key → what the key was
    /// before that height, for reads and proofs at retained heights.
    Undo,
    /// The node's secondary indexes, not part of the state: devices by manufacturer,
    /// reputation writes by subject (written with the block they come from).
    Index,
}

impl Cf {
    pub const ALL: [Cf; 16] = [
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
        Cf::Links,
        Cf::Log,
        Cf::Twigs,
        Cf::LogHistory,
        Cf::Undo,
        Cf::Index,
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
            Cf::Links => "links",
            Cf::Log => "log",
            Cf::Twigs => "twigs",
            Cf::LogHistory => "log_history",
            Cf::Undo => "undo",
            Cf::Index => "index",
        }
    }
}

/// A set of writes applied atomically.
#[derive(Debug, Default, Clone)]
pub struct WriteBatch {
    pub(crate) ops: Vec<(Cf, Vec<u8>, Option<Vec<u8>>)>,
    /// Key ranges `[from, to)` deleted, after the other operations.
    pub(crate) ranges: Vec<(Cf, Vec<u8>, Vec<u8>)>,
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

    /// Deletes every key in `[from, to)` (a range tombstone: constant cost, the space
    /// is reclaimed by background compaction).
    pub fn delete_range(&mut self, cf: Cf, from: impl Into<Vec<u8>>, to: impl Into<Vec<u8>>) {
        self.ranges.push((cf, from.into(), to.into()));
    }

    pub fn extend(&mut self, other: WriteBatch) {
        self.ops.extend(other.ops);
        self.ranges.extend(other.ranges);
    }

    pub fn len(&self) -> usize {
        self.ops.len() + self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.ranges.is_empty()
    }

    /// Bytes of keys and values the batch writes.
    pub fn bytes(&self) -> usize {
        self.ops
            .iter()
            .map(|(_, k, v)| k.len() + v.as_ref().map_or(0, Vec::len))
            .sum()
    }
}

/// One key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// The reads the node needs from a key-value store (what a read-only handle offers).
pub trait KvRead: Send + Sync {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// The entry with the greatest key `<= key` among keys starting with `prefix`.
    fn get_at_or_before(
        &self,
        cf: Cf,
        key: &[u8],
        prefix: &[u8],
    ) -> Result<Option<(Vec<u8>, Vec<u8>)>>;

    /// The values of several keys, given in ascending order, in one batched read.
    fn get_many(&self, cf: Cf, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>>;

    /// For each key, the entry with the greatest key `<= key` (`< key` when `strict`),
    /// over the whole column family. One iterator serves the whole batch.
    fn floor_batch(&self, cf: Cf, keys: &[&[u8]], strict: bool) -> Result<Vec<Option<Entry>>>;

    /// Every entry with `from <= key < to`, in key order.
    fn range(&self, cf: Cf, from: &[u8], to: &[u8]) -> Result<Vec<Entry>>;

    /// Up to `limit` entries whose keys start with `prefix`, from `start` (inclusive,
    /// must itself start with `prefix`, or be empty for the beginning), in key order.
    fn scan(
        &self,
        cf: Cf,
        prefix: &[u8],
        start: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;
}

/// What the node needs from a key-value store: its reads and atomic batch writes.
pub trait KvStore: KvRead {
    /// Applies the batch atomically (and durably, for disk stores).
    fn write(&self, batch: WriteBatch) -> Result<()>;
}
