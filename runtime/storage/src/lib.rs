//! Storage for the Atonomi node: a small key-value interface with column families,
//! implemented over RocksDB (production) and over memory (unit tests), typed tables on
//! top, and the authenticated state store ([`StateDb`]): the state log, an
//! append-only authenticated structure with the latest value of every key one read
//! away, proofs at any retained version, and pruning.
//!
//! Every effect of a block goes through one [`WriteBatch`], written atomically.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod error;
mod kv;
mod memory;
mod rocks;
mod state_db;
pub mod tables;

pub use error::{Result, StorageError};
pub use kv::{Cf, KvRead, KvStore, WriteBatch};
pub use memory::MemoryStore;
pub use rocks::{RocksConfig, RocksStore};
pub use state_db::snapshot::{SnapshotChunk, SnapshotEntry, SnapshotHead, SnapshotTwig, TwigBody};
pub use state_db::{
    LogConfig, Staged, StateDb, StateDiff, WriteStats, DEFAULT_RETENTION, FLUSH_EVERY,
    MIN_RETENTION,
};
