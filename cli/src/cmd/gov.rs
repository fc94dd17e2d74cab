//! `atonomi gov`: governance for admins — propose (one subcommand per action, or JSON),
//! approve, show, and change named network parameters without restating the others.

use super::tx::parse_amount;
use super::{print, RpcArg};
use anyhow::{bail, Context, Result};
use atonomi_client::{Answered, AtonomiApiClient, Node};
use atonomi_primitives::gov::{
    GovAction, MemberChange, NewAuditor, NewManufacturer, PoolAccount, UpgradePlan,
};
use atonomi_primitives::state::Validator;
use atonomi_primitives::{
    AccountId, Amount, AuditorId, Height, ManufacturerId, ParamChange, Params, Score,
};
use clap::Subcommand;
use serde_json::Value;
use std::path::PathBuf;

/// What every governance transaction needs: the node and the admin's key. The flags
/// may come before or after a `propose` action.
#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    /// Node JSON-RPC URL.
    #[arg(
        long,
        env = "ATONOMI_RPC",
        default_value = "http://127.0.0.1:8645",
        global = true
    )]
    rpc: String,
    /// The admin's key file (required).
    #[arg(long, env = "ATONOMI_KEY", global = true)]
    key: Option<PathBuf>,
    /// Seconds to wait for finality.
    #[arg(long, default_value_t = 60, global = true)]
    wait: u64,
    /// To prepare it on a machine without a node: `--offline --chain-id ID --nonce N
    /// --out FILE`, then `atonomi tx broadcast FILE` where a node is reachable.
    #[command(flatten)]
    file: super::tx::FileArgs,
}

#[derive(Debug, Subcommand)]
pub enum GovCommand {
    /// Open a proposal; it counts as your approval, and the threshold-th approval
    /// executes it. Name the action as a subcommand (`atonomi gov propose add-auditor
    /// --help`), or give it as JSON for scripts. Prints the receipt, whose
    /// proposal_created event carries the proposal's id.
    Propose {
        #[command(flatten)]
        admin: AdminArgs,
        /// The action as JSON, e.g. '{"change_auditor":{"id":1,"change":"suspend"}}'
        /// (the shapes are in `atonomi tx --help`).
        action: Option<String>,
        #[command(subcommand)]
        named: Option<Action>,
    },
    /// Propose new values for the named network parameters only (an update_params
    /// action): the others keep the values in force when the proposal executes. Names
    /// as `atonomi query params` prints them; amounts in base units.
    /// Example: atonomi gov set-params --key admin1.json registration_fee=2000000000000000000 max_batch=500
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

/// A member's lifecycle change, as a flag value.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Change {
    Suspend,
    Resume,
    Remove,
}

impl From<Change> for MemberChange {
    fn from(c: Change) -> Self {
        match c {
            Change::Suspend => MemberChange::Suspend,
            Change::Resume => MemberChange::Resume,
            Change::Remove => MemberChange::Remove,
        }
    }
}

/// A module account governance pays out of, as a flag value.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Pool {
    Treasury,
    AuditorPool,
}

/// The governance actions, one subcommand each.
#[derive(Debug, Subcommand)]
pub enum Action {
    /// Admit a manufacturer: its keys may whitelist devices, its pool funds rewards.
    /// Example: atonomi gov propose add-manufacturer --key admin1.json --id 2 --name "Acme" --member-key ACCOUNT --reward-wallet ACCOUNT
    AddManufacturer {
        #[command(flatten)]
        member: NewMember,
        /// Where its share of reputation rewards goes.
        #[arg(long)]
        reward_wallet: AccountId,
        /// Its registration fee instead of the network's (ATMI, or base units ending in `base`).
        #[arg(long, value_parser = parse_amount)]
        registration_fee: Option<Amount>,
        /// The reputation its devices have until an auditor writes one.
        #[arg(long, default_value_t = atonomi_genesis::DEFAULT_MANUFACTURER_SCORE.get())]
        default_score: u32,
    },
    /// Suspend, resume or remove a manufacturer.
    /// Example: atonomi gov propose change-manufacturer --key admin1.json --id 2 --change suspend
    ChangeManufacturer {
        /// Its number.
        #[arg(long)]
        id: u32,
        /// What happens to it.
        #[arg(long, value_enum)]
        change: Change,
    },
    /// Admit an auditor: its keys may write reputation, rewarded to its account.
    /// Example: atonomi gov propose add-auditor --key admin1.json --id 1 --name "Acme Audit" --member-key ACCOUNT --reward-account ACCOUNT
    AddAuditor {
        #[command(flatten)]
        member: NewMember,
        /// Where its reputation rewards go.
        #[arg(long)]
        reward_account: AccountId,
    },
    /// Suspend, resume or remove an auditor.
    /// Example: atonomi gov propose change-auditor --key admin1.json --id 1 --change resume
    ChangeAuditor {
        /// Its number.
        #[arg(long)]
        id: u32,
        /// What happens to it.
        #[arg(long, value_enum)]
        change: Change,
    },
    /// Add a validator to the set (in force two heights after it executes).
    /// Example: atonomi gov propose add-validator --key admin1.json --consensus-key ACCOUNT --peer-id HEX --bridge-address 0x… --operator 1
    AddValidator {
        /// Its consensus key (`account` of `atonomi init`).
        #[arg(long)]
        consensus_key: AccountId,
        /// Its libp2p peer id, hex (`peer_id_hex` of `atonomi init`).
        #[arg(long, value_parser = parse_hex)]
        peer_id: HexBytes,
        /// The Ethereum address of its bridge key (`atonomi bridge new-key`).
        #[arg(long, value_parser = parse_address, default_value = "0x0000000000000000000000000000000000000000")]
        bridge_address: EthAddress,
        /// Its voting power.
        #[arg(long, default_value_t = 1)]
        power: u64,
        /// The manufacturer operating it.
        #[arg(long)]
        operator: u32,
    },
    /// Remove a validator from the set.
    /// Example: atonomi gov propose remove-validator --key admin1.json --consensus-key ACCOUNT
    RemoveValidator {
        /// Its consensus key.
        #[arg(long)]
        consensus_key: AccountId,
    },
    /// Change a validator's voting power.
    /// Example: atonomi gov propose set-validator-power --key admin1.json --consensus-key ACCOUNT --power 2
    SetValidatorPower {
        /// Its consensus key.
        #[arg(long)]
        consensus_key: AccountId,
        /// Its new voting power.
        #[arg(long)]
        power: u64,
    },
    /// Pay out of the treasury or the auditor pool.
    /// Example: atonomi gov propose treasury-payout --key admin1.json --from treasury --to ACCOUNT --amount 10
    TreasuryPayout {
        /// The module account paying.
        #[arg(long, value_enum)]
        from: Pool,
        /// The receiving account (64 hex digits).
        #[arg(long)]
        to: AccountId,
        /// ATMI with up to 18 decimals, or base units ending in `base`.
        #[arg(long, value_parser = parse_amount)]
        amount: Amount,
    },
    /// Replace the admins and the approval threshold.
    /// Example: atonomi gov propose set-admins --key admin1.json --admin A1 --admin A2 --admin A3 --threshold 2
    SetAdmins {
        /// An admin's account (repeat for each, up to 64).
        #[arg(long = "admin", required = true)]
        admins: Vec<AccountId>,
        /// Approvals a proposal needs (1 to the number of admins).
        #[arg(long)]
        threshold: u32,
    },
    /// Allow (or, with --disallow, stop allowing) a full node's peer id to connect to validators.
    /// Example: atonomi gov propose set-node-peer --key admin1.json --peer-id HEX
    SetNodePeer {
        /// The full node's libp2p peer id, hex.
        #[arg(long, value_parser = parse_hex)]
        peer_id: HexBytes,
        /// Take the permission away instead.
        #[arg(long)]
        disallow: bool,
    },
    /// New values for the named network parameters only (`gov set-params` is the same).
    /// Example: atonomi gov propose update-params --key admin1.json payment_fee_bps=50
    UpdateParams {
        /// NAME=VALUE (repeat for more).
        #[arg(required = true)]
        changes: Vec<String>,
    },
    /// Every node stops at HEIGHT unless its binary implements the upgrade NAME; one
    /// that does runs the upgrade's state migration there. HEIGHT must be at least the
    /// parameter upgrade_min_delay blocks ahead when the proposal executes; a name is
    /// used once; one plan at a time (`atonomi query upgrade` shows it).
    /// Example: atonomi gov propose schedule-upgrade --key admin1.json --name v2 --height 150000 --info "atonomi 0.2.0, https://…"
    ScheduleUpgrade {
        /// The upgrade's name, as the new release knows it (a-z, 0-9, '.', '-', '_').
        #[arg(long)]
        name: String,
        /// The first block the new release executes.
        #[arg(long)]
        height: u64,
        /// For operators: what to install (release, URL, checksums); up to 1024 bytes.
        #[arg(long, default_value = "")]
        info: String,
    },
    /// Withdraw the scheduled upgrade of this name: no node stops for it.
    /// Example: atonomi gov propose cancel-upgrade --key admin1.json --name v2
    CancelUpgrade {
        /// The scheduled upgrade's name (`atonomi query upgrade` shows it).
        #[arg(long)]
        name: String,
    },
}

/// What a new manufacturer and a new auditor both have.
#[derive(Debug, clap::Args)]
pub struct NewMember {
    /// Its number (unused so far).
    #[arg(long)]
    id: u32,
    /// Its name (up to 64 bytes).
    #[arg(long)]
    name: String,
    /// An account that signs for it (64 hex digits; repeat for more, up to 16).
    #[arg(long = "member-key", required = true)]
    keys: Vec<AccountId>,
    /// Free-form metadata, hex (up to 1024 bytes).
    #[arg(long, value_parser = parse_hex, default_value = "")]
    metadata: HexBytes,
}

/// Bytes given as hex on the command line (clap needs a named type for a `Vec<u8>`).
#[derive(Debug, Clone)]
pub struct HexBytes(Vec<u8>);

/// A 20-byte Ethereum address.
#[derive(Debug, Clone, Copy)]
pub struct EthAddress([u8; 20]);

fn parse_hex(s: &str) -> Result<HexBytes, String> {
    hex::decode(s.trim_start_matches("0x"))
        .map(HexBytes)
        .map_err(|e| format!("{s}: not hex ({e})"))
}

fn parse_address(s: &str) -> Result<EthAddress, String> {
    let bytes = parse_hex(s)?.0;
    <[u8; 20]>::try_from(bytes)
        .map(EthAddress)
        .map_err(|_| format!("{s}: an Ethereum address is 20 bytes (40 hex digits)"))
}

fn score(v: u32) -> Result<Score> {
    Score::new(v).with_context(|| format!("score {v}: at most 2147483647"))
}

impl Action {
    /// The governance action this subcommand names.
    fn into_action(self) -> Result<GovAction> {
        Ok(match self {
            Action::AddManufacturer {
                member,
                reward_wallet,
                registration_fee,
                default_score,
            } => GovAction::AddManufacturer(NewManufacturer {
                id: ManufacturerId::new(member.id),
                name: member.name,
                keys: member.keys,
                registration_fee,
                default_score: score(default_score)?,
                reward_wallet,
                metadata: member.metadata.0,
            }),
            Action::ChangeManufacturer { id, change } => GovAction::ChangeManufacturer {
                id: ManufacturerId::new(id),
                change: change.into(),
            },
            Action::AddAuditor {
                member,
                reward_account,
            } => GovAction::AddAuditor(NewAuditor {
                id: AuditorId::new(member.id),
                name: member.name,
                keys: member.keys,
                reward_account,
                metadata: member.metadata.0,
            }),
            Action::ChangeAuditor { id, change } => GovAction::ChangeAuditor {
                id: AuditorId::new(id),
                change: change.into(),
            },
            Action::AddValidator {
                consensus_key,
                peer_id,
                bridge_address,
                power,
                operator,
            } => GovAction::AddValidator(Validator {
                consensus_key,
                peer_id: peer_id.0,
                bridge_address: bridge_address.0,
                power,
                operator: ManufacturerId::new(operator),
            }),
            Action::RemoveValidator { consensus_key } => {
                GovAction::RemoveValidator { consensus_key }
            }
            Action::SetValidatorPower {
                consensus_key,
                power,
            } => GovAction::SetValidatorPower {
                consensus_key,
                power,
            },
            Action::TreasuryPayout { from, to, amount } => GovAction::TreasuryPayout {
                from: match from {
                    Pool::Treasury => PoolAccount::Treasury,
                    Pool::AuditorPool => PoolAccount::AuditorPool,
                },
                to,
                amount,
            },
            Action::SetAdmins { admins, threshold } => GovAction::SetAdmins { admins, threshold },
            Action::SetNodePeer { peer_id, disallow } => GovAction::SetNodePeer {
                peer_id: peer_id.0,
                allowed: !disallow,
            },
            Action::UpdateParams { changes } => GovAction::UpdateParams(param_changes(&changes)?),
            Action::ScheduleUpgrade { name, height, info } => {
                GovAction::ScheduleUpgrade(UpgradePlan {
                    name,
                    height: Height::new(height),
                    info,
                })
            }
            Action::CancelUpgrade { name } => GovAction::CancelUpgrade { name },
        })
    }
}

/// `atonomi gov …`: governance transactions (signed with the admin key) and reads.
pub async fn run(g: GovCommand) -> Result<()> {
    use serde_json::json;
    let tx = |admin: &AdminArgs, call: Value| {
        let (rpc, key, wait, file) = (
            admin.rpc.clone(),
            admin.key.clone(),
            admin.wait,
            admin.file.clone(),
        );
        async move {
            super::tx::send(
                &rpc,
                key.as_deref(),
                &call.to_string(),
                None,
                std::time::Duration::from_secs(wait),
                &file,
            )
            .await
        }
    };
    match g {
        GovCommand::Propose {
            admin,
            action,
            named,
        } => {
            let action: Value = match (action, named) {
                (Some(json), None) => serde_json::from_str(&json)
                    .map_err(|e| anyhow::anyhow!("the action is not JSON: {e}"))?,
                (None, Some(named)) => serde_json::to_value(named.into_action()?)?,
                _ => bail!(
                    "name the action (`atonomi gov propose --help` lists them) or give it as JSON"
                ),
            };
            tx(&admin, json!({ "propose": { "action": action } })).await
        }
        GovCommand::SetParams { admin, changes } => {
            let action = GovAction::UpdateParams(param_changes(&changes)?);
            tx(&admin, json!({ "propose": { "action": action } })).await
        }
        GovCommand::Approve { admin, id } => {
            tx(&admin, json!({ "approve_proposal": { "id": id } })).await
        }
        GovCommand::Show { rpc, id } => {
            let node = Node::connect(&rpc.rpc)?;
            let p = node.rpc().get_proposal(id).await.or_node(&node)?;
            let g = node.rpc().get_governance().await.or_node(&node)?;
            let mut p = serde_json::to_value(p)?;
            p["threshold"] = g.threshold.into();
            print(&p)
        }
    }
}

/// Each NAME=VALUE as the change of one network parameter: only known names, each at
/// most once, each value of the parameter's type (a whole number, or a decimal string
/// of base units for amounts).
fn param_changes(changes: &[String]) -> Result<Vec<ParamChange>> {
    let mut out: Vec<ParamChange> = Vec::with_capacity(changes.len());
    for change in changes {
        let (name, value) = change
            .split_once('=')
            .with_context(|| format!("{change}: expected NAME=VALUE"))?;
        if !Params::NAMES.contains(&name) {
            bail!(
                "{name} is not a network parameter; they are: {}",
                Params::NAMES.join(", ")
            );
        }
        if out.iter().any(|c| c.name() == name) {
            bail!("{name} is named twice");
        }
        // A number where the parameter is one, else the text (amounts, the type name).
        let as_number = value
            .parse::<u64>()
            .ok()
            .map(|n| serde_json::json!({ name: n }));
        let parsed = as_number
            .and_then(|v| serde_json::from_value::<ParamChange>(v).ok())
            .or_else(|| serde_json::from_value(serde_json::json!({ name: value })).ok());
        out.push(parsed.with_context(|| format!("{name}={value}: not a valid value for {name}"))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_parameters_become_typed_changes() {
        let changes = param_changes(&[
            "registration_fee=2000000000000000000".into(),
            "max_batch=500".into(),
            "payment_reputation_type=uptime".into(),
        ])
        .unwrap();
        assert_eq!(
            changes,
            vec![
                ParamChange::registration_fee(Amount::new(2 * Amount::ONE_ATMI)),
                ParamChange::max_batch(500),
                ParamChange::payment_reputation_type("uptime".into()),
            ]
        );
        for bad in [
            "fee=1",
            "max_batch",
            "max_batch=-1",
            "payment_fee_bps=70000",
            "registration_fee=lots",
        ] {
            assert!(param_changes(&[bad.into()]).is_err(), "{bad}");
        }
        assert!(param_changes(&["max_batch=1".into(), "max_batch=2".into()]).is_err());
    }

    #[test]
    fn every_action_subcommand_makes_its_action() {
        use clap::Parser;
        #[derive(Parser)]
        struct Gov {
            #[command(subcommand)]
            g: GovCommand,
        }
        let a = "11".repeat(32);
        let action = |args: &str| -> GovAction {
            let argv = std::iter::once("gov").chain(args.split(' '));
            match Gov::try_parse_from(argv)
                .unwrap_or_else(|e| panic!("{args}: {e}"))
                .g
            {
                GovCommand::Propose {
                    named: Some(n),
                    admin,
                    ..
                } => {
                    assert_eq!(admin.key.as_deref(), Some(std::path::Path::new("k.json")));
                    n.into_action().unwrap()
                }
                other => panic!("{args}: {other:?}"),
            }
        };
        let acct: AccountId = a.parse().unwrap();
        assert_eq!(
            action(&format!("propose add-auditor --key k.json --id 1 --name Audit --member-key {a} --reward-account {a}")),
            GovAction::AddAuditor(NewAuditor {
                id: AuditorId::new(1),
                name: "Audit".into(),
                keys: vec![acct],
                reward_account: acct,
                metadata: vec![],
            })
        );
        assert!(matches!(
            action(&format!("propose --key k.json add-manufacturer --id 2 --name M --member-key {a} --reward-wallet {a} --registration-fee 0.5")),
            GovAction::AddManufacturer(NewManufacturer { registration_fee: Some(f), .. }) if f.to_string() == "0.5"
        ));
        assert_eq!(
            action("propose change-auditor --id 1 --change suspend --key k.json"),
            GovAction::ChangeAuditor {
                id: AuditorId::new(1),
                change: MemberChange::Suspend
            }
        );
        assert!(matches!(
            action("propose change-manufacturer --id 3 --change remove --key k.json"),
            GovAction::ChangeManufacturer {
                change: MemberChange::Remove,
                ..
            }
        ));
        assert!(matches!(
            action(&format!("propose add-validator --key k.json --consensus-key {a} --peer-id 0024 --bridge-address 0x{} --power 3 --operator 1", "ab".repeat(20))),
            GovAction::AddValidator(Validator { power: 3, bridge_address, ref peer_id, .. }) if bridge_address == [0xab; 20] && peer_id == &vec![0x00, 0x24]
        ));
        assert_eq!(
            action(&format!(
                "propose remove-validator --key k.json --consensus-key {a}"
            )),
            GovAction::RemoveValidator {
                consensus_key: acct
            }
        );
        assert_eq!(
            action(&format!(
                "propose set-validator-power --key k.json --consensus-key {a} --power 7"
            )),
            GovAction::SetValidatorPower {
                consensus_key: acct,
                power: 7
            }
        );
        assert_eq!(
            action(&format!(
                "propose treasury-payout --key k.json --from auditor-pool --to {a} --amount 2"
            )),
            GovAction::TreasuryPayout {
                from: PoolAccount::AuditorPool,
                to: acct,
                amount: Amount::new(2 * Amount::ONE_ATMI)
            }
        );
        assert_eq!(
            action(&format!(
                "propose set-admins --key k.json --admin {a} --threshold 1"
            )),
            GovAction::SetAdmins {
                admins: vec![acct],
                threshold: 1
            }
        );
        assert_eq!(
            action("propose set-node-peer --key k.json --peer-id 0a0b --disallow"),
            GovAction::SetNodePeer {
                peer_id: vec![10, 11],
                allowed: false
            }
        );
        assert_eq!(
            action("propose update-params --key k.json payment_fee_bps=50"),
            GovAction::UpdateParams(vec![ParamChange::payment_fee_bps(50)])
        );
        assert_eq!(
            action("propose schedule-upgrade --key k.json --name v2 --height 900 --info release"),
            GovAction::ScheduleUpgrade(UpgradePlan {
                name: "v2".into(),
                height: Height::new(900),
                info: "release".into()
            })
        );
        assert_eq!(
            action("propose cancel-upgrade --key k.json --name v2"),
            GovAction::CancelUpgrade { name: "v2".into() }
        );
        // Every action has its subcommand (set_params, the whole set at once, is JSON
        // only): this match stops compiling when an action is added.
        match GovAction::UpdateParams(vec![]) {
            GovAction::AddManufacturer(_)
            | GovAction::ChangeManufacturer { .. }
            | GovAction::AddAuditor(_)
            | GovAction::ChangeAuditor { .. }
            | GovAction::AddValidator(_)
            | GovAction::RemoveValidator { .. }
            | GovAction::SetValidatorPower { .. }
            | GovAction::SetParams(_)
            | GovAction::TreasuryPayout { .. }
            | GovAction::SetAdmins { .. }
            | GovAction::SetNodePeer { .. }
            | GovAction::UpdateParams(_)
            | GovAction::ScheduleUpgrade(_)
            | GovAction::CancelUpgrade { .. } => {}
        }
        // The JSON form stays, for scripts.
        let json = Gov::try_parse_from([
            "gov",
            "propose",
            "--key",
            "k.json",
            r#"{"change_auditor":{"id":1,"change":"suspend"}}"#,
        ])
        .unwrap();
        assert!(matches!(
            json.g,
            GovCommand::Propose {
                action: Some(_),
                named: None,
                ..
            }
        ));
    }
}
