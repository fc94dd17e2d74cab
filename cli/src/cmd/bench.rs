//! `atonomi bench` (benchmarks that print figures) and `atonomi demo`; the work is in
//! `atonomi-tools`.

use anyhow::Result;
use atonomi_tools::{bench, demo, eth_load, load};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Runtime execution throughput on RocksDB (transfers, whitelist batches,
    /// reputation writes), including state-root computation and commit, then bytes on
    /// disk per device and point-lookup latency at scale.
    Runtime(bench::RuntimeArgs),
    /// Open-loop load against running nodes: pre-signs transfers (default), whitelist
    /// batches (--devices-per-tx), reputation-write batches (--reputation-per-tx) or
    /// device payments (--payers), submits them in JSON-RPC batches at --rate tx/s,
    /// follows finality through a block subscription, and prints one JSON line with
    /// finalized tx/s, commit latency p50/p90/p99 and a sample of receipt outcomes.
    Load(load::LoadArgs),
    /// Closed-loop atonomi_validateDevice lookups against one node (single requests or
    /// JSON-RPC batches, several connections); prints lookups/s and request p50/p99.
    Lookups(load::LookupArgs),
    /// The Ethereum baseline under the same open-loop method: the original per-device
    /// registry on a running anvil, one transaction per device at --rate; one JSON line
    /// with devices/s, gas per device and inclusion latency.
    Eth(eth_load::EthArgs),
    /// The signature-verification bound of this machine: ed25519 verifications of
    /// transaction signatures per second under the node's rule, one at a time on one
    /// core, in batches on one core and in batches on all cores; one JSON line.
    Verify(bench::VerifyArgs),
}

pub fn run(cmd: BenchCommand) -> Result<()> {
    let ran = match cmd {
        BenchCommand::Runtime(args) => bench::runtime(args),
        BenchCommand::Verify(args) => bench::verify(args),
        BenchCommand::Eth(args) => super::runtime()?.block_on(eth_load::run(args)),
        BenchCommand::Load(args) => super::runtime()?.block_on(load::run(args)),
        BenchCommand::Lookups(args) => super::runtime()?.block_on(load::lookups(args)),
    };
    Ok(ran?)
}

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Data directory (created if missing; a fresh temporary one if omitted).
    #[arg(long, env = "ATONOMI_HOME")]
    home: Option<PathBuf>,
}

pub fn demo(args: DemoArgs) -> Result<()> {
    Ok(demo::run(args.home)?)
}
