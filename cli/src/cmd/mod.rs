//! One module per command group; `main.rs` holds only the top-level command line and
//! hands each subcommand to its module's `run`.

pub mod auditor;
pub mod backup;
pub mod bench;
pub mod bridge;
pub mod devices;
pub mod genesis;
pub mod gov;
pub mod keys;
pub mod node;
pub mod query;
pub mod snapshot;
mod table;
pub mod tx;
pub mod verify;

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct RpcArg {
    /// Node JSON-RPC URL.
    #[arg(long, env = "ATONOMI_RPC", default_value = "http://127.0.0.1:8645")]
    pub rpc: String,
}

/// The runtime of the commands that talk to a node or to Ethereum.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// How answers (and, with `json`, errors) are printed: `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// JSON, as the node sent it; errors too, as `{"error": …, "code": …}` on stderr.
    Json,
    /// Lists as aligned columns, records as field/value rows.
    Table,
}

static OUTPUT: std::sync::OnceLock<Option<Output>> = std::sync::OnceLock::new();

/// Set once, from the command line, before any command runs.
pub fn set_output(output: Option<Output>) {
    let _ = OUTPUT.set(output);
}

pub fn output() -> Option<Output> {
    OUTPUT.get().copied().flatten()
}

/// Prints an answer: pretty JSON by default, or a table with `--output table`.
pub fn print<T: serde::Serialize>(answer: &T) -> Result<()> {
    let value = serde_json::to_value(answer)?;
    match output() {
        Some(Output::Table) => print!("{}", table::render(&value)),
        _ => println!("{}", serde_json::to_string_pretty(&value)?),
    }
    Ok(())
}

/// A command-line value as the type a method takes (ids are hex, as in JSON).
pub fn arg<T: serde::de::DeserializeOwned>(name: &str, value: &str) -> Result<T> {
    let v = serde_json::from_value(serde_json::Value::String(value.to_string()));
    v.map_err(|e| anyhow::anyhow!("{name} {value:?}: {e}"))
}
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    pub shell: clap_complete::Shell,
}
