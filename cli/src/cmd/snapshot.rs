//! `atonomi snapshot`: export a kept height of a stopped node as verifiable chunks,
//! or restore a new node home from them.

use anyhow::Result;
use atonomi_node::snapshot;
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Write the state of a kept height (default: the latest) of a stopped node as chunk
    /// files, each with its blake3 hash in a manifest.json bound to that height's header
    /// and commit certificate. Heights older than [storage] state_retention are pruned.
    Export {
        /// The stopped node's home directory.
        #[arg(long, env = "ATONOMI_HOME")]
        home: PathBuf,
        /// The kept height to export (default: the latest).
        #[arg(long)]
        height: Option<u64>,
        /// A new or empty directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Restore a node home from a snapshot. The home comes from `atonomi init` with the
    /// chain's genesis.json and has no data yet. Every chunk's hash, every entry, the
    /// state root, the header and its commit certificate are checked before the data
    /// directory appears; a refused snapshot leaves nothing behind. The node then
    /// follows the chain from the snapshot's height. A validator must not import a
    /// height below one it has signed: its double-sign guard starts anew.
    Import {
        /// The new node's home (from `atonomi init`, no data yet).
        #[arg(long, env = "ATONOMI_HOME")]
        home: PathBuf,
        /// The directory `snapshot export` wrote.
        #[arg(long)]
        from: PathBuf,
    },
}

pub fn run(cmd: SnapshotCommand) -> Result<()> {
    let summary = match cmd {
        SnapshotCommand::Export { home, height, out } => snapshot::export(&home, height, &out)?,
        SnapshotCommand::Import { home, from } => snapshot::import(&home, &from)?,
    };
    println!("{summary}");
    Ok(())
}
