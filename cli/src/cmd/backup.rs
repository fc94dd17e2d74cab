//! `atonomi backup` and `atonomi restore`: a consistent copy of a running node's home,
//! and putting one back (see `atonomi_node::backup`).

use anyhow::Result;
use atonomi_node::backup;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// The node's home. A running node takes the RocksDB checkpoint itself (through
    /// HOME/node.sock); a stopped one is copied directly.
    #[arg(long, env = "ATONOMI_HOME")]
    pub home: PathBuf,
    /// A new or empty directory for the backup.
    #[arg(long)]
    pub out: PathBuf,
    /// Also copy the validator's consensus key. Whoever holds the backup can then sign
    /// as this validator: keep it offline, and never start a node from it while this
    /// one runs (two machines signing with one key is equivocation).
    #[arg(long)]
    pub include_consensus_key: bool,
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The directory `atonomi backup` wrote.
    #[arg(long)]
    pub from: PathBuf,
    /// The home to restore into; its node must be stopped. Files it has must equal the
    /// backup's; data ahead of the backup is refused (its double-sign guard would go
    /// back in time); data behind it is moved aside to data.before-restore-HEIGHT.
    #[arg(long, env = "ATONOMI_HOME")]
    pub home: PathBuf,
}

pub fn backup(args: BackupArgs) -> Result<()> {
    if args.include_consensus_key {
        eprintln!(
            "warning: this backup holds the consensus key. Anyone with it can sign as this validator; never run a second node from it while this one runs."
        );
    }
    let manifest = backup::backup(&args.home, &args.out, args.include_consensus_key)?;
    let bytes: u64 = manifest.files.values().map(|f| f.bytes).sum();
    super::print(&serde_json::json!({
        "out": args.out,
        "data": manifest.data,
        "files": manifest.files.len(),
        "bytes": bytes,
        "consensus_key_included": manifest.consensus_key_included,
    }))
}

pub fn restore(args: RestoreArgs) -> Result<()> {
    let restored = backup::restore(&args.from, &args.home)?;
    super::print(&restored)
}
