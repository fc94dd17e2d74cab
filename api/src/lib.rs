//! The node's public formats, usable without the node: the configuration file, key
//! files, and the JSON-RPC interface (methods, parameter and result types, error
//! codes). Clients, the auditor, tools and fuzzers depend on this crate instead of the
//! node (which links RocksDB and libp2p).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod config;
pub mod file;
pub mod keyfile;
pub mod rpc;
