//! The node's public formats, usable without the node: the configuration file and the
//! JSON-RPC parameters and error codes. Clients, the auditor, tools and fuzzers depend
//! on this crate instead of the node (which links RocksDB and libp2p).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod config;
pub mod rpc;
