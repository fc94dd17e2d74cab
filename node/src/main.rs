//! `atonomi`: the Atonomi ledger's command-line tool.

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

mod bench;
mod demo;

/// Atonomi ledger: immutable identity, reputation and payments for IoT devices.
#[derive(Debug, Parser)]
#[command(name = "atonomi", version, about, long_about = None)]
struct Cli {
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `atonomi=debug`.
    #[arg(long, env = "ATONOMI_LOG", default_value = "info", global = true)]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the runtime on the embedded dev genesis, on RocksDB in --home: registers a
    /// device whitelist, activates a device with its key, writes reputation, validates
    /// the device, pays between devices, and proves the device record against the
    /// state root. Prints each step as JSON.
    Demo {
        /// Data directory (created if missing; a fresh temporary one if omitted).
        #[arg(long, env = "ATONOMI_HOME")]
        home: Option<PathBuf>,
    },
    /// Benchmarks that print figures.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Runtime execution throughput on RocksDB (transfers, whitelist batches,
    /// reputation writes), including state-root computation and commit, then bytes on
    /// disk per device and point-lookup latency at scale.
    Runtime(bench::RuntimeArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&cli.log)?)
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Demo { home } => demo::run(home),
        Command::Bench(BenchCommand::Runtime(args)) => bench::runtime(args),
    }
}
