//! `atonomi gov`: governance for admins — propose, approve, show, and change named
//! network parameters without restating the others.

use super::{print, RpcArg};
use anyhow::{bail, Context, Result};
use atonomi_client::{Answered, AtonomiApiClient, Node};
use clap::Subcommand;
use serde_json::Value;
use std::path::PathBuf;

/// What every governance transaction needs: the node and the admin's key.
#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    /// Node JSON-RPC URL.
    #[arg(long, env = "ATONOMI_RPC", default_value = "http://127.0.0.1:8645")]
    rpc: String,
    /// The admin's key file.
    #[arg(long, env = "ATONOMI_KEY")]
    key: PathBuf,
    /// Seconds to wait for finality.
    #[arg(long, default_value_t = 60)]
    wait: u64,
}

#[derive(Debug, Subcommand)]
pub enum GovCommand {
    /// Open a proposal; it counts as your approval, and the threshold-th approval
    /// executes it. ACTION is JSON, e.g. '{"change_auditor":{"id":1,"change":"suspend"}}'
    /// (the actions are listed in `atonomi tx --help`). Prints the receipt, whose
    /// proposal_created event carries the proposal's id.
    Propose {
        #[command(flatten)]
        admin: AdminArgs,
        /// The governance action as JSON.
        action: String,
    },
    /// Propose new network parameters that change only the named ones: reads those in
    /// force, applies each NAME=VALUE (names as `atonomi query params` prints them;
    /// amounts in base units) and proposes the result. Another set_params executed in
    /// between is overwritten by this one, so check `gov show` before approving.
    SetParams {
        #[command(flatten)]
        admin: AdminArgs,
        /// NAME=VALUE, e.g. registration_fee=2000000000000000000 (repeat for more).
        #[arg(required = true)]
        changes: Vec<String>,
    },
    /// Approve a pending proposal (executes it when yours is the threshold-th approval).
    Approve {
        #[command(flatten)]
        admin: AdminArgs,
        /// The proposal id.
        id: u64,
    },
    /// A proposal: its action, approvals so far, the threshold and its status.
    Show {
        #[command(flatten)]
        rpc: RpcArg,
        /// The proposal id.
        id: u64,
    },
}

/// `atonomi gov …`: governance transactions (signed with the admin key) and reads.
pub async fn run(g: GovCommand) -> Result<()> {
    use serde_json::json;
    let tx = |admin: &AdminArgs, call: serde_json::Value| {
        let (rpc, key, wait) = (admin.rpc.clone(), admin.key.clone(), admin.wait);
        async move {
            super::tx::send(
                &rpc,
                &key,
                &call.to_string(),
                None,
                std::time::Duration::from_secs(wait),
                None,
            )
            .await
        }
    };
    match g {
        GovCommand::Propose { admin, action } => {
            let action: serde_json::Value = serde_json::from_str(&action)
                .map_err(|e| anyhow::anyhow!("the action is not JSON: {e}"))?;
            tx(&admin, json!({ "propose": { "action": action } })).await
        }
        GovCommand::SetParams { admin, changes } => {
            let node = atonomi_client::Node::connect(&admin.rpc)?;
            let params = params_changed(&node, &changes).await?;
            tx(
                &admin,
                json!({ "propose": { "action": { "set_params": params } } }),
            )
            .await
        }
        GovCommand::Approve { admin, id } => {
            tx(&admin, json!({ "approve_proposal": { "id": id } })).await
        }
        GovCommand::Show { rpc, id } => {
            use atonomi_client::{Answered, AtonomiApiClient};
            let node = atonomi_client::Node::connect(&rpc.rpc)?;
            let p = node.rpc().get_proposal(id).await.or_node(&node)?;
            let g = node.rpc().get_governance().await.or_node(&node)?;
            let mut p = serde_json::to_value(p)?;
            p["threshold"] = g.threshold.into();
            print(&p)
        }
    }
}

/// The parameters `current` (as atonomi_getParams returns them) with each NAME=VALUE
/// of `changes` applied: only known names, each value of the type it replaces (a
/// number, or a decimal string for amounts), and the result must decode as Params.
fn change_params(current: &atonomi_primitives::Params, changes: &[String]) -> Result<Value> {
    let mut current = serde_json::to_value(current)?;
    for change in changes {
        let (name, value) = change
            .split_once('=')
            .with_context(|| format!("{change}: expected NAME=VALUE"))?;
        let Some(slot) = current.get_mut(name) else {
            bail!("{name} is not a network parameter (`atonomi query params` lists them)");
        };
        *slot = match slot {
            Value::Number(_) => Value::Number(
                value
                    .parse::<u64>()
                    .with_context(|| format!("{name}: a whole number"))?
                    .into(),
            ),
            _ => Value::String(value.to_string()),
        };
    }
    serde_json::from_value::<atonomi_primitives::params::Params>(current.clone())
        .context("the changed parameters are not valid")?;
    Ok(current)
}

/// The network parameters in force, changed as `changes` say (see [`change_params`]).
async fn params_changed(node: &Node, changes: &[String]) -> Result<Value> {
    let current = node.rpc().get_params().await.or_node(node)?;
    change_params(&current, changes)
}
