use atonomi_primitives::CodecError;

/// Storage failures. Corruption is reported, never papered over.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("corrupt record in column family {cf}: {source}")]
    Corrupt {
        cf: &'static str,
        source: CodecError,
    },
    #[error("authenticated tree: {0}")]
    Tree(String),
    #[error("state version {requested} is not available (latest is {latest:?})")]
    MissingVersion { requested: u64, latest: Option<u64> },
    #[error(
        "state version {requested} has been pruned: this node keeps versions {oldest} to {latest}"
    )]
    Pruned {
        requested: u64,
        oldest: u64,
        latest: u64,
    },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;
