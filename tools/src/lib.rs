//! The load generators and benchmarks behind `atonomi bench`, and `atonomi demo`.
//!
//! Everything here is a client of the node (through `atonomi-client`) or runs the
//! runtime in process on RocksDB; nothing holds node state. Each module prints its
//! figures as one JSON line so that `scripts/bench.sh` can collect them; what stops one
//! is a [`error::ToolError`].

pub mod bench;
pub mod demo;
pub mod error;
pub mod eth_load;
pub mod load;
