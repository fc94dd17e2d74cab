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
}

impl Cf {
    pub const ALL: [Cf; 10] = [
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
