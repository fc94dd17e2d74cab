//! `atonomi`: the Atonomi ledger's command-line tool.

use anyhow::Result;
use clap::{Parser, Subcommand};

mod cmd;

/// Atonomi ledger: immutable identity, reputation and payments for IoT devices.
#[derive(Debug, Parser)]
#[command(name = "atonomi", version, about, long_about = None)]
struct Cli {
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `atonomi=debug`.
    #[arg(
        long,
        env = "ATONOMI_LOG",
        default_value = "info,arc_malachitebft_core_consensus=warn,arc_malachitebft_core_driver=warn,arc_malachitebft_core_votekeeper=warn",
        global = true
    )]
    log: String,
    /// Log format: `text` for people, `json` for log pipelines.
    #[arg(long, env = "ATONOMI_LOG_FORMAT", default_value = "text", global = true, value_parser = ["text", "json"])]
    log_format: String,
    /// Answers as `json` (the default: pretty JSON, as the node sent it) or `table`
    /// (lists in columns, records as field/value rows). With `--output json` errors
    /// are JSON too, on stderr: {"error": "...", "code": N} (code when the node gave one).
    #[arg(long, env = "ATONOMI_OUTPUT", global = true, value_enum)]
    output: Option<cmd::Output>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a single-validator development chain on the embedded dev genesis. On
    /// first start writes the demo keys (admin, validator, manufacturer, auditor, alice,
    /// bob) to HOME/keys; restarting with the same --home continues the chain. Prints
    /// the RPC URL and what to try next.
    Dev(cmd::node::DevArgs),
    /// Create a node home: a commented config.toml, a validator key, a network key and an
    /// Ethereum bridge key (keys/bridge.json); copies the
    /// genesis file when given.
    Init(cmd::node::InitArgs),
    /// Run a node from its home (config.toml, genesis.json, keys/).
    ///
    /// Exit status: 0 after SIGINT or SIGTERM (a graceful stop); 3 when the chain
    /// reaches an upgrade governance scheduled that this binary does not implement, or
    /// when started at that height (the log and stderr name the upgrade and what to
    /// install: start the release that implements it on the same home, and it runs
    /// the upgrade's migration and goes on); 1 on any other error.
    Run(cmd::node::RunArgs),
    /// Sign a transaction with a key file, submit it, wait until it is final and print
    /// its receipt (exit status 1 when it failed). CALL is one of the 24 calls as JSON;
    /// `--help` lists each with its shape.
    ///
    /// The calls sent by hand (token, device, reputation, payment) also come as
    /// subcommands with named flags and amounts in ATMI, e.g. `atonomi tx transfer
    /// --key alice.json --to ACCOUNT --amount 1.5`; governance is under `atonomi gov`.
    ///
    /// Offline signing: `--out FILE` writes the transaction to a file instead of
    /// sending it (signed with --key, or unsigned with --signer ACCOUNT), and
    /// `--offline --chain-id ID --nonce N` prepares it without any node; `atonomi tx
    /// show FILE` decodes a file for a person to check, `atonomi tx sign FILE --key K`
    /// signs one, `atonomi tx broadcast FILE` sends one (refusing another chain, a
    /// nonce other than the account's next, or a file changed after signing).
    #[command(after_long_help = cmd::tx::CALL_SHAPES)]
    Tx(cmd::tx::TxArgs),
    /// Read from a node over JSON-RPC and print JSON.
    #[command(subcommand)]
    Query(cmd::query::QueryCommand),
    /// Print the device id of a (salt, hardware id) pair.
    ///
    /// The id is blake3 in key-derivation mode with the context string
    /// "atonomi 2026 device id v1", over the salt's length in bytes (u64,
    /// little-endian), the salt, then the hardware id — all as UTF-8 bytes of the
    /// arguments. The length prefix keeps ("ab", "c") and ("a", "bc") apart. The device
    /// SDK and the client libraries derive the same id.
    DeviceId(cmd::keys::DeviceIdArgs),
    /// Run the runtime on the embedded dev genesis, on RocksDB in --home: registers a
    /// device whitelist, activates a device with its key, writes reputation, validates
    /// the device, pays between devices, and proves the device record against the
    /// state root. Prints each step as JSON.
    Demo(cmd::bench::DemoArgs),
    /// A manufacturer's device whitelist in bulk, from a CSV file.
    #[command(subcommand)]
    Devices(cmd::devices::DevicesCommand),
    /// Create and inspect key files (ed25519; JSON with the account and secret seed).
    #[command(subcommand)]
    Keys(cmd::keys::KeysCommand),
    /// Governance for admins: propose, approve, show; change named parameters only.
    #[command(subcommand)]
    Gov(cmd::gov::GovCommand),
    /// Print a shell completion script, e.g. `atonomi completions bash >
    /// ~/.local/share/bash-completion/completions/atonomi` (zsh: a file named _atonomi
    /// in your $fpath; fish: ~/.config/fish/completions/atonomi.fish).
    Completions(cmd::CompletionsArgs),
    /// Check a genesis file, or print the embedded dev genesis as a template.
    #[command(subcommand)]
    Genesis(cmd::genesis::GenesisCommand),
    /// Benchmarks that print figures.
    #[command(subcommand)]
    Bench(cmd::bench::BenchCommand),
    /// Verify chain state against an Ethereum checkpoint (trusting only the contract).
    #[command(subcommand)]
    Verify(cmd::verify::VerifyCommand),
    /// Ethereum bridge tools: deploy the checkpoint contract, print the genesis set.
    #[command(subcommand)]
    Bridge(cmd::bridge::BridgeCommand),
    /// State snapshots: export the state of a kept height as verifiable chunks, or
    /// restore a new node home from one.
    #[command(subcommand)]
    Snapshot(cmd::snapshot::SnapshotCommand),
    /// Back up a node's home without stopping it: a RocksDB checkpoint of its data (the
    /// running node takes it), config.toml, genesis.json and the key files (never the
    /// consensus key unless --include-consensus-key), and backup.json with the height,
    /// block hash, state root and every file's blake3 hash.
    ///
    /// Example: atonomi backup --home /var/lib/atonomi --out /backups/atonomi-2026-12-08
    Backup(cmd::backup::BackupArgs),
    /// Restore a home from `atonomi backup` (the node stopped). Every file is checked
    /// against backup.json first; data ahead of the backup is refused. The restored
    /// double-sign guard starts empty: a validator waits to hear the network's height and
    /// refuses to sign up to it, so it never signs again what it signed after the
    /// backup.
    ///
    /// Example: atonomi restore --from /backups/atonomi-2026-12-08 --home /var/lib/atonomi
    Restore(cmd::backup::RestoreArgs),
    /// Run the reference auditor: read events and the node's lookup log, score devices
    /// (anomalies divide a score by 4, steady activity adds 250) and write reputation
    /// once per epoch. Keeps its own state file; safe to kill and restart.
    ///
    /// Example (dev chain): atonomi auditor --rpc http://127.0.0.1:8645
    ///   --key ~/.atonomi/dev/keys/auditor.json --auditor-id 1 --state auditor.json
    Auditor(cmd::auditor::AuditorArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    cmd::set_output(cli.output);
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            if cmd::output() == Some(cmd::Output::Json) {
                let code = e
                    .chain()
                    .find_map(|c| c.downcast_ref::<atonomi_client::Error>())
                    .and_then(atonomi_client::Error::code);
                let mut v = serde_json::json!({ "error": format!("{e:#}") });
                if let Some(code) = code {
                    v["code"] = code.into();
                }
                eprintln!("{v}");
            } else {
                // One readable line with the chain of causes; no backtrace for operators.
                eprintln!("error: {e:#}");
            }
            // A node stopping at an upgrade it cannot run says so in its status.
            let status = e
                .downcast_ref::<atonomi_node::launch::LaunchError>()
                .map_or(1, atonomi_node::launch::LaunchError::exit_status);
            std::process::ExitCode::from(status)
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)?;
    if cli.log_format == "json" {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    } else {
        // Colours only for a person at a terminal, never into a log file or a pipe.
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .init();
    }
    match cli.command {
        Command::Dev(args) => cmd::node::dev(args),
        Command::Init(args) => cmd::node::init(args),
        Command::Run(args) => cmd::node::run(args),
        Command::Tx(args) => cmd::tx::run(args),
        Command::Query(q) => cmd::runtime()?.block_on(cmd::query::run(q)),
        Command::Gov(g) => cmd::runtime()?.block_on(cmd::gov::run(g)),
        Command::DeviceId(args) => cmd::keys::device_id(args),
        Command::Demo(args) => cmd::bench::demo(args),
        Command::Auditor(args) => cmd::auditor::run(args),
        Command::Bridge(c) => cmd::bridge::run(c),
        Command::Verify(c) => cmd::verify::run(c),
        Command::Bench(c) => cmd::bench::run(c),
        Command::Completions(args) => {
            use clap::CommandFactory;
            let mut cli = Cli::command();
            clap_complete::generate(args.shell, &mut cli, "atonomi", &mut std::io::stdout());
            Ok(())
        }
        Command::Keys(c) => cmd::keys::run(c),
        Command::Devices(c) => cmd::devices::run(c),
        Command::Snapshot(c) => cmd::snapshot::run(c),
        Command::Backup(args) => cmd::backup::backup(args),
        Command::Restore(args) => cmd::backup::restore(args),
        Command::Genesis(c) => cmd::genesis::run(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}

#[cfg(test)]
mod help_tests {
    use super::Cli;
    use clap::CommandFactory;

    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for sub in cmd.get_subcommands() {
            if sub.is_hide_set() || sub.get_name() == "help" {
                continue;
            }
            let here = format!("{path} {}", sub.get_name());
            if sub.get_about().is_none() {
                missing.push(format!("{here}: no help"));
            }
            for arg in sub.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.is_hide_set() || id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{here} <{id}>: no help"));
                }
            }
            walk(sub, &here, missing);
        }
    }

    /// Every subcommand and every flag or argument a person can see says what it is.
    #[test]
    fn every_subcommand_and_argument_has_help() {
        let mut missing = Vec::new();
        walk(&Cli::command(), "atonomi", &mut missing);
        assert!(
            missing.is_empty(),
            "{} without help:\n{}",
            missing.len(),
            missing.join("\n")
        );
    }
}
