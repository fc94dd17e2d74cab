//! `atonomi auditor`: the reference auditor (`atonomi-auditor`), run until a signal.

use anyhow::Result;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct AuditorArgs {
    /// JSON-RPC URL of a node.
    #[arg(long, default_value = "http://127.0.0.1:8645")]
    rpc: String,
    /// Key file of one of the auditor's keys.
    #[arg(long)]
    key: PathBuf,
    /// The auditor's id on chain.
    #[arg(long)]
    auditor_id: u32,
    /// The auditor's state file (created if missing; written atomically).
    #[arg(long)]
    state: PathBuf,
    /// Heights per epoch: scores are written at the end of each.
    #[arg(long, default_value_t = 10)]
    epoch_blocks: u64,
    /// Heights over which failure reports, refused payments and transfers count.
    #[arg(long, default_value_t = 1_000)]
    window_blocks: u64,
    /// The reputation type written (the chain's payment reputation type by default).
    #[arg(long, default_value = "trust")]
    rep_type: String,
    /// How often to poll the node, in milliseconds.
    #[arg(long, default_value_t = 500)]
    poll_ms: u64,
}

pub fn run(args: AuditorArgs) -> Result<()> {
    let config = atonomi_auditor::AuditorConfig {
        rpc: args.rpc,
        key: args.key,
        auditor: atonomi_primitives::AuditorId::new(args.auditor_id),
        state: args.state,
        epoch_blocks: args.epoch_blocks,
        window_blocks: args.window_blocks,
        rep_type: args.rep_type,
        poll: std::time::Duration::from_millis(args.poll_ms.max(10)),
    };
    let shutdown = atonomi_node::launch::shutdown_signal();
    Ok(super::runtime()?.block_on(atonomi_auditor::run(config, shutdown))?)
}
