//! `atonomi`: the Atonomi ledger's command-line tool.

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

mod bench;
mod demo;
mod keys;

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
    /// Create and inspect key files (ed25519; JSON with the account and secret seed).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Check a genesis file, or print the embedded dev genesis as a template.
    #[command(subcommand)]
    Genesis(GenesisCommand),
    /// Benchmarks that print figures.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Generate a new key from the operating system's randomness and write it to --out
    /// (permissions 0600). Prints the account.
    New {
        #[arg(long)]
        out: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Print the account (public key, hex) of a key file.
    Show { file: PathBuf },
}

#[derive(Debug, Subcommand)]
enum GenesisCommand {
    /// Validate a genesis file: schema, every rule the runtime relies on, and print
    /// its summary with the genesis state root (compare it with other operators').
    Validate { file: PathBuf },
    /// Print the embedded dev genesis (JSON), a starting point for a real one.
    Dev,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Runtime execution throughput on RocksDB (transfers, whitelist batches,
    /// reputation writes), including state-root computation and commit, then bytes on
    /// disk per device and point-lookup latency at scale.
    Runtime(bench::RuntimeArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One readable line with the chain of causes; no backtrace for operators.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&cli.log)?)
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Demo { home } => demo::run(home),
        Command::Bench(BenchCommand::Runtime(args)) => bench::runtime(args),
        Command::Keys(KeysCommand::New { out, force }) => {
            let key = atonomi_primitives::Keypair::generate().map_err(anyhow::Error::msg)?;
            keys::write(&out, &key, force)?;
            println!("{}", serde_json::json!({ "account": key.account(), "file": out }));
            Ok(())
        }
        Command::Keys(KeysCommand::Show { file }) => {
            let key = keys::read(&file)?;
            println!("{}", serde_json::json!({ "account": key.account() }));
            Ok(())
        }
        Command::Genesis(GenesisCommand::Validate { file }) => genesis_validate(&file),
        Command::Genesis(GenesisCommand::Dev) => {
            println!("{}", atonomi_genesis::dev::genesis().to_json());
            Ok(())
        }
    }
}

fn genesis_validate(file: &std::path::Path) -> Result<()> {
    use anyhow::Context;
    let meta = std::fs::metadata(file).with_context(|| format!("reading {}", file.display()))?;
    anyhow::ensure!(
        meta.len() <= atonomi_genesis::MAX_GENESIS_BYTES as u64,
        "{} is {} bytes; the limit is {}",
        file.display(),
        meta.len(),
        atonomi_genesis::MAX_GENESIS_BYTES
    );
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let g = atonomi_genesis::Genesis::from_json(&bytes)?;
    let diff = atonomi_runtime::genesis_diff(&g.state())?;
    let db = atonomi_storage::StateDb::new(atonomi_storage::MemoryStore::new());
    let root = db.commit(&diff, 0)?;
    println!(
        "{}",
        serde_json::json!({
            "valid": true,
            "chain_id": g.chain_id,
            "validators": g.validators.len(),
            "total_power": g.validators.iter().map(|v| u128::from(v.power)).sum::<u128>().to_string(),
            "admins": g.governance.admins.len(),
            "threshold": g.governance.threshold,
            "total_supply": g.token.total_supply,
            "manufacturers": g.manufacturers.len(),
            "auditors": g.auditors.len(),
            "genesis_state_root": root,
        })
    );
    Ok(())
}
