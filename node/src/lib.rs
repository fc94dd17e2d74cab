//! The Atonomi node as a library: what a running node is made of. The `atonomi`
//! binary (the `atonomi-cli` crate: the command line, the JSON-RPC client, the
//! auditor, the load generators and benchmarks) starts it through [`launch`].
//!
//! - [`launch`]: the `dev` home, `init`, and starting the tasks below.
//! - [`config`]: reading `config.toml` and the genesis, bounded.
//! - [`host`]: the consensus host driving the sans-I/O engine, building,
//!   executing and committing blocks.
//! - [`admit`]: the mempool's entry point ([`admit::Admission`], the handle the RPC
//!   server, the network and the bridge signer hold): the checks a block would make, the
//!   operator's [`admission`] policy, then the [`mempool`]'s own bounds.
//! - [`mempool`]: an actor on its own thread owning the pool, reached by typed messages.
//! - [`health`]: what `/health` and `/ready` on the metrics port answer;
//!   [`endpoint`] serves them beside the [`metrics`].
//! - [`ingress`]: the messages between the host, the network and the RPC server.
//! - [`chain`]: the chain store on RocksDB (blocks, receipts, state).
//! - [`index`]: the node's secondary indexes (devices by manufacturer, reputation history).
//! - [`p2p`]: libp2p gossip, block sync and peer scoring.
//! - [`rpc`]: the JSON-RPC server.
//! - [`bridge`]: the Ethereum checkpoint signer and relayer.
//! - [`snapshot`]: state snapshots for export and import; [`snapshot_schedule`]
//!   takes them every `[storage] snapshot_interval` heights.
//! - [`backup`]: hot backup and restore of a node's home.
//! - [`control`]: the local control socket (`<home>/node.sock`) through which
//!   `atonomi backup` takes a checkpoint of a running node.
//! - [`faults`]: the fault modes of the fault tests (not in release builds).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod admission;
pub mod admit;
pub mod backup;
pub mod bridge;
pub mod chain;
pub mod clock;
pub mod config;
pub mod control;
pub mod endpoint;
pub mod faults;
pub mod health;
pub mod host;
pub mod index;
pub mod ingress;
pub mod keys;
pub mod launch;
pub mod lookups;
pub mod mempool;
pub mod metrics;
pub mod p2p;
pub mod rpc;
pub mod snapshot;
pub mod snapshot_schedule;
#[cfg(test)]
mod testing;
