//! `atonomi tx`: sign a call with a key file, submit it, wait for finality and print
//! the receipt. The call is JSON (its 24 shapes are in `--help`) or, for the token
//! calls, a subcommand with named flags. With `--out` the transaction goes to a file
//! instead (signed, or unsigned for `atonomi tx sign` on another machine), with
//! `--offline` without talking to any node; `tx show`, `tx sign` and `tx broadcast`
//! take such files.

use anyhow::{bail, Context, Result};
use atonomi_api::keyfile as keys;
use atonomi_client::signer::{KeyFileSigner, Signer};
use atonomi_client::txfile::TxFile;
use atonomi_client::{Error, Node};
use atonomi_primitives::event::TxStatus;
use atonomi_primitives::tx::{sign_activation, Call};
use atonomi_primitives::{AccountId, ChainId, DeviceId, Hash, SignedTransaction, Transaction};
use clap::Subcommand;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct TxArgs {
    /// Node JSON-RPC URL.
    #[arg(
        long,
        env = "ATONOMI_RPC",
        default_value = "http://127.0.0.1:8645",
        global = true
    )]
    rpc: String,
    /// Key file of the signer.
    #[arg(long, env = "ATONOMI_KEY", global = true)]
    key: Option<PathBuf>,
    /// For activate_device and register_and_activate: the device's key file. Its
    /// signature of consent to the owner (the signer, or register_and_activate's
    /// `owner`) fills device_signature, which the JSON may then leave out.
    #[arg(long, global = true)]
    device_key: Option<PathBuf>,
    /// Seconds to wait for finality. A transaction the node dropped (its nonce was
    /// used by another one, or it was replaced) fails at once, saying why.
    #[arg(long, default_value_t = 60)]
    wait: u64,
    #[command(flatten)]
    file: FileArgs,
    /// The call as JSON (`--help` lists all 24 shapes).
    call: Option<String>,
    #[command(subcommand)]
    command: Option<TxCommand>,
}

/// Where a prepared transaction goes instead of the node, and what it is prepared
/// with when no node is asked (`atonomi tx` and `atonomi gov` take these).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FileArgs {
    /// Sign with this nonce instead of the account's next nonce read from the node.
    #[arg(long, global = true)]
    pub(super) nonce: Option<u64>,
    /// Write the transaction to this file instead of submitting it: signed with
    /// --key, or unsigned (with --signer) for `atonomi tx sign` on another machine.
    /// `atonomi tx broadcast FILE` submits it.
    #[arg(long, global = true, value_name = "FILE")]
    pub(super) out: Option<PathBuf>,
    /// Talk to no node: the chain id and nonce come from --chain-id and --nonce, and
    /// the transaction goes to --out.
    #[arg(long, global = true)]
    pub(super) offline: bool,
    /// The chain the transaction is for (by default the node's).
    #[arg(long, global = true, value_name = "ID")]
    pub(super) chain_id: Option<String>,
    /// For an unsigned file (no --key): the account that will sign it.
    #[arg(long, global = true, value_name = "ACCOUNT")]
    signer: Option<AccountId>,
}

/// A named call, or what is done with a transaction file.
#[derive(Debug, Subcommand)]
pub enum TxCommand {
    #[command(flatten)]
    Call(NamedCall),
    /// Decode a transaction file for a person to check before signing or sending:
    /// what it does, who signs, the fee, the nonce, the chain.
    Show {
        /// The transaction file.
        file: PathBuf,
    },
    /// Sign a transaction file with --key (its signer must be the key's account);
    /// needs no node.
    Sign {
        /// The transaction file (from `atonomi tx --out FILE`).
        file: PathBuf,
        /// Write the signed file here (default: replace FILE).
        #[arg(long = "to", value_name = "FILE")]
        to: Option<PathBuf>,
    },
    /// Submit a signed transaction file, wait until it is final and print the receipt.
    /// A file for another chain, with a nonce other than the account's next, or
    /// changed after signing is refused, saying which.
    Broadcast {
        /// The signed transaction file.
        file: PathBuf,
    },
}

/// The shape of every call, as `atonomi tx --help` prints it (a test parses each).
/// ACCOUNT, DEVICE and HASH stand for 64 hex digits, SIG for 128, ETH_SIG for 130.
pub const CALL_SHAPES: &str = r#"The 24 calls (who signs; amounts are base units, 10^-18 ATMI, as decimal strings):

Token (anyone)
  {"transfer":{"to":"ACCOUNT","amount":"1000000000000000000"}}
  {"approve":{"spender":"ACCOUNT","amount":"1000"}}
  {"transfer_from":{"from":"ACCOUNT","to":"ACCOUNT","amount":"1000"}}
  {"burn":{"amount":"1000"}}
  {"deposit_to_pool":{"manufacturer":1,"amount":"1000"}}
Governance (admins; the proposer's call counts as its approval)
  {"propose":{"action":{"change_auditor":{"id":1,"change":"suspend"}}}}
  {"approve_proposal":{"id":1}}
  actions: add_manufacturer, change_manufacturer, add_auditor, change_auditor
  (change: suspend|resume|remove), add_validator, remove_validator,
  set_validator_power, set_params, treasury_payout, set_admins, set_node_peer,
  update_params, schedule_upgrade, cancel_upgrade (`atonomi gov propose ACTION
  --help` gives each with named flags)
  {"propose":{"action":{"set_admins":{"admins":["ACCOUNT"],"threshold":1}}}}
  {"propose":{"action":{"update_params":[{"registration_fee":"2000000000000000000"},{"max_batch":500}]}}}
  {"propose":{"action":{"treasury_payout":{"from":"treasury","to":"ACCOUNT","amount":"1000"}}}}
  {"propose":{"action":{"schedule_upgrade":{"name":"v2","height":150000,"info":"atonomi 0.2.0"}}}}
Manufacturer (its key)
  {"register_devices":{"manufacturer":1,"devices":[{"device_id":"DEVICE","public_key":"ACCOUNT","protocols":["mqtt"],"metadata":[]}]}}
  {"register_and_activate":{"manufacturer":1,"device":{"device_id":"DEVICE","public_key":"ACCOUNT","protocols":["mqtt"],"metadata":[]},"owner":"ACCOUNT"}}   with --device-key
  {"suspend_device":{"device":"DEVICE"}}
  {"resume_device":{"device":"DEVICE"}}
  {"revoke_device":{"device":"DEVICE"}}
Owner
  {"activate_device":{"device":"DEVICE"}}   with --device-key (the signer becomes the owner)
  {"transfer_device":{"device":"DEVICE","to":"ACCOUNT","with_wallet":false}}
  {"set_attributes":{"device":"DEVICE","attributes":{"per_tx_limit":"1000","data_policy":"any"}}}
  {"set_wallet":{"device":"DEVICE","wallet":"ACCOUNT"}}
  {"register_service":{"device":"DEVICE","service_type":"weather","price":"1000","unit":"reading","area":null,"metadata":[],"expiry":100000}}
  {"withdraw_service":{"device":"DEVICE","service_type":"weather"}}
Auditor (its key)
  {"write_reputation":{"auditor":1,"entries":[{"subject":{"device":"DEVICE"},"rep_type":"trust","score":8000,"direction":"up"}]}}
Device (the device's own key)
  {"pay":{"from_device":"DEVICE","to_device":"DEVICE","amount":"2000000000000000000","memo":[]}}
  {"anchor_log":{"device":"DEVICE","hash":"HASH","kind":"batch","parties":[]}}
  {"report_interaction":{"device":"DEVICE","peer":"DEVICE","outcome":"success","receipt":"HASH"}}
Validator operator (a key of its operator manufacturer; `atonomi keys rotate-consensus` makes it)
  {"rotate_consensus_key":{"validator":"ACCOUNT","new_key":"ACCOUNT","height":120,"proof":"SIG"}}
Validator (its consensus key; the node's relayer sends it)
  {"sign_checkpoint":{"epoch":1,"height":100,"block_hash":"HASH","state_root":"HASH","next_set_hash":"HASH","signature":"ETH_SIG"}}

ACCOUNT, DEVICE and HASH are 64 hex digits (`atonomi keys show FILE`, `atonomi device-id SALT HW_ID`)."#;

/// An amount in ATMI with up to 18 decimals (`1.5`), or in base units with the suffix
/// `base` (`15base`).
pub(super) fn parse_amount(s: &str) -> Result<atonomi_primitives::Amount, String> {
    atonomi_primitives::Amount::parse_atmi(s).ok_or_else(|| {
        format!("{s}: ATMI with up to 18 decimals (1.5), or base units ending in `base` (15base)")
    })
}

/// `LAT,LON` in micro-degrees.
fn parse_point(s: &str) -> Result<(i32, i32), String> {
    match parse_ints(s)?.as_slice() {
        [lat, lon] => Ok((*lat, *lon)),
        _ => Err(format!("{s}: LAT,LON in micro-degrees")),
    }
}

/// `MIN_LAT,MIN_LON,MAX_LAT,MAX_LON` in micro-degrees.
fn parse_area(s: &str) -> Result<[i32; 4], String> {
    match parse_ints(s)?.as_slice() {
        [a, b, c, d] => Ok([*a, *b, *c, *d]),
        _ => Err(format!(
            "{s}: MIN_LAT,MIN_LON,MAX_LAT,MAX_LON in micro-degrees"
        )),
    }
}

fn parse_ints(s: &str) -> Result<Vec<i32>, String> {
    s.split(',')
        .map(|p| {
            p.trim()
                .parse::<i32>()
                .map_err(|_| format!("{p:?} is not a whole number of micro-degrees"))
        })
        .collect()
}

/// The calls a person sends by hand, with named flags (`atonomi tx transfer --to …
/// --amount 1.5`); the JSON form takes every call, governance under `atonomi gov`.
#[derive(Debug, Subcommand)]
pub enum NamedCall {
    /// Move tokens from the signer to an account.
    Transfer {
        /// The receiving account (64 hex digits).
        #[arg(long)]
        to: String,
        /// ATMI with up to 18 decimals (1.5), or base units ending in `base` (15base).
        #[arg(long, value_parser = parse_amount)]
        amount: atonomi_primitives::Amount,
    },
    /// Let SPENDER move up to this much of the signer's tokens (replaces any earlier
    /// allowance; 0 removes it).
    Approve {
        /// The account allowed to spend (64 hex digits).
        #[arg(long)]
        spender: String,
        /// ATMI with up to 18 decimals, or base units ending in `base`.
        #[arg(long, value_parser = parse_amount)]
        amount: atonomi_primitives::Amount,
    },
    /// As a spender: move an owner's tokens within the allowance it gave you.
    TransferFrom {
        /// The owner whose allowance is used.
        #[arg(long)]
        from: String,
        /// The receiving account.
        #[arg(long)]
        to: String,
        /// ATMI with up to 18 decimals, or base units ending in `base`.
        #[arg(long, value_parser = parse_amount)]
        amount: atonomi_primitives::Amount,
    },
    /// Destroy the signer's own tokens (the total supply falls by as much).
    Burn {
        /// ATMI with up to 18 decimals, or base units ending in `base`.
        #[arg(long, value_parser = parse_amount)]
        amount: atonomi_primitives::Amount,
    },
    /// Add tokens to a manufacturer's pool (it funds reputation rewards).
    DepositToPool {
        /// The manufacturer's number.
        #[arg(long)]
        manufacturer: u32,
        /// ATMI with up to 18 decimals, or base units ending in `base`.
        #[arg(long, value_parser = parse_amount)]
        amount: atonomi_primitives::Amount,
    },
    /// As a manufacturer: whitelist one device (the JSON form, register_devices, takes
    /// up to a thousand at once).
    RegisterDevice {
        /// The manufacturer's number.
        #[arg(long)]
        manufacturer: u32,
        /// The device id (64 hex digits; `atonomi device-id SALT HARDWARE_ID`).
        #[arg(long)]
        device_id: DeviceId,
        /// The device's own public key (64 hex digits; `atonomi keys show FILE`).
        #[arg(long)]
        public_key: AccountId,
        /// A protocol the device speaks, e.g. mqtt (repeat for more).
        #[arg(long = "protocol")]
        protocols: Vec<String>,
    },
    /// As a manufacturer: whitelist a device and make OWNER its owner in one call;
    /// --device-key signs the device's consent to that owner.
    RegisterAndActivate {
        /// The manufacturer's number.
        #[arg(long)]
        manufacturer: u32,
        /// The device id (64 hex digits).
        #[arg(long)]
        device_id: DeviceId,
        /// The device's own public key (64 hex digits).
        #[arg(long)]
        public_key: AccountId,
        /// A protocol the device speaks, e.g. mqtt (repeat for more).
        #[arg(long = "protocol")]
        protocols: Vec<String>,
        /// The owner's account.
        #[arg(long)]
        owner: AccountId,
    },
    /// As the owner-to-be: activate a registered device; the signer becomes its owner
    /// and --device-key signs the device's consent.
    ActivateDevice {
        /// The device id (64 hex digits).
        #[arg(long)]
        device: DeviceId,
    },
    /// As its manufacturer: suspend a device (validation fails until it is resumed).
    SuspendDevice {
        /// The device id (64 hex digits).
        #[arg(long)]
        device: DeviceId,
    },
    /// As its manufacturer: resume a suspended device.
    ResumeDevice {
        /// The device id (64 hex digits).
        #[arg(long)]
        device: DeviceId,
    },
    /// As its manufacturer: revoke a device for good.
    RevokeDevice {
        /// The device id (64 hex digits).
        #[arg(long)]
        device: DeviceId,
    },
    /// As the owner: hand a device to another owner.
    TransferDevice {
        /// The device id (64 hex digits).
        #[arg(long)]
        device: DeviceId,
        /// The new owner's account.
        #[arg(long)]
        to: AccountId,
        /// Move the device's wallet setting to the new owner too.
        #[arg(long)]
        with_wallet: bool,
    },
    /// As the owner: set the device's payment and data policy. It replaces all of the
    /// device's attributes: a flag not given is unset (no limit, no area, no
    /// allowlist, data with registered devices only).
    ///
    /// Example: atonomi tx set-attributes --key owner.json --device DEVICE
    /// --per-tx-limit 5 --data-policy any --payee DEVICE
    SetAttributes {
        /// The device id (64 hex digits).
        #[arg(long)]
        device: DeviceId,
        /// Most one payment may move: ATMI with up to 18 decimals, or base units
        /// ending in `base`.
        #[arg(long, value_parser = parse_amount)]
        per_tx_limit: Option<atonomi_primitives::Amount>,
        /// Most the device may pay within --window-secs (give both).
        #[arg(long, value_parser = parse_amount, requires = "window_secs")]
        window_limit: Option<atonomi_primitives::Amount>,
        /// The window of --window-limit, in seconds.
        #[arg(long, requires = "window_limit")]
        window_secs: Option<u64>,
        /// Who the device exchanges data with: registered-only, any or inside-area.
        #[arg(long, default_value = "registered-only", value_parser = ["registered-only", "any", "inside-area"])]
        data_policy: String,
        /// Counterparties need at least this score (0..=10000), on top of the
        /// network minimum.
        #[arg(long, value_parser = clap::value_parser!(u32).range(0..=10_000))]
        min_counterparty_reputation: Option<u32>,
        /// Where the device says it is: LAT,LON in micro-degrees (e.g. 52520008,13404954).
        #[arg(long, value_parser = parse_point, allow_hyphen_values = true)]
        location: Option<(i32, i32)>,
        /// The area payees (and, under inside-area, data peers) must have declared a
        /// location in: MIN_LAT,MIN_LON,MAX_LAT,MAX_LON in micro-degrees.
        #[arg(long, value_parser = parse_area, allow_hyphen_values = true)]
        area: Option<[i32; 4]>,
        /// A device the device may pay (repeat for each; none: any payee).
        #[arg(long = "payee")]
        payees: Vec<DeviceId>,
    },
    /// As the owner: the account that receives the device's payments.
    SetWallet {
        /// The device id (64 hex digits).
        #[arg(long)]
        device: DeviceId,
        /// The wallet account.
        #[arg(long)]
        wallet: AccountId,
    },
    /// As the owner: offer a service of the device (found by `atonomi query discover`).
    RegisterService {
        /// The device id (64 hex digits).
        #[arg(long)]
        device: DeviceId,
        /// The service type (e.g. weather).
        #[arg(long)]
        service_type: String,
        /// The price per unit: ATMI with up to 18 decimals, or base units ending in `base`.
        #[arg(long, value_parser = parse_amount)]
        price: atonomi_primitives::Amount,
        /// What one unit is (e.g. reading).
        #[arg(long)]
        unit: String,
        /// The last height the offer stands.
        #[arg(long)]
        expiry: u64,
    },
    /// As the owner: stop offering one of the device's services.
    WithdrawService {
        /// The device id (64 hex digits).
        #[arg(long)]
        device: DeviceId,
        /// The service type it offered (e.g. weather).
        #[arg(long)]
        service_type: String,
    },
    /// As an auditor: write one device's score (the JSON form writes many at once).
    WriteReputation {
        /// The auditor's number.
        #[arg(long)]
        auditor: u32,
        /// The device id (64 hex digits).
        #[arg(long)]
        device: DeviceId,
        /// The score, 0..=10000.
        #[arg(long, value_parser = clap::value_parser!(u32).range(0..=10_000))]
        score: u32,
        /// The reputation type.
        #[arg(long, default_value = "trust")]
        rep_type: String,
        /// How the score moved: up, down or steady.
        #[arg(long, value_parser = ["up", "down", "steady"])]
        direction: String,
    },
    /// As a device (signed with the device's key): pay another device.
    Pay {
        /// The paying device.
        #[arg(long)]
        from_device: DeviceId,
        /// The device paid.
        #[arg(long)]
        to_device: DeviceId,
        /// ATMI with up to 18 decimals, or base units ending in `base`.
        #[arg(long, value_parser = parse_amount)]
        amount: atonomi_primitives::Amount,
    },
    /// As a device: anchor the hash of an off-chain transaction or log batch.
    AnchorLog {
        /// The device id (64 hex digits).
        #[arg(long)]
        device: DeviceId,
        /// The hash anchored (64 hex digits).
        #[arg(long)]
        hash: Hash,
        /// What the hash is of.
        #[arg(long, default_value = "batch")]
        kind: String,
    },
    /// As a device: report how an interaction with a peer device went.
    ReportInteraction {
        /// The reporting device.
        #[arg(long)]
        device: DeviceId,
        /// The peer device.
        #[arg(long)]
        peer: DeviceId,
        /// success or failure.
        #[arg(long, value_parser = ["success", "failure"])]
        outcome: String,
        /// The hash of the interaction's receipt (64 hex digits).
        #[arg(long)]
        receipt: Hash,
    },
    /// As a validator (its consensus key): record its bridge key's signature of an
    /// Ethereum checkpoint. A node with `[bridge]` configured does this by itself; this
    /// is for a bridge key kept outside the node (`atonomi query checkpoint EPOCH`
    /// shows what the others signed).
    SignCheckpoint {
        /// The checkpoint's epoch.
        #[arg(long)]
        epoch: u64,
        /// The checkpointed height.
        #[arg(long)]
        height: u64,
        /// That block's hash (64 hex digits).
        #[arg(long)]
        block_hash: Hash,
        /// That block's state root (64 hex digits).
        #[arg(long)]
        state_root: Hash,
        /// The hash of the bridge set after that block (64 hex digits).
        #[arg(long)]
        next_set_hash: Hash,
        /// The bridge key's signature of the checkpoint digest (130 hex digits, r‖s‖v).
        #[arg(long)]
        signature: String,
    },
}

impl NamedCall {
    /// The call's JSON, as `atonomi tx CALL` takes it.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            NamedCall::Transfer { to, amount } => {
                json!({ "transfer": { "to": to, "amount": amount } })
            }
            NamedCall::Approve { spender, amount } => {
                json!({ "approve": { "spender": spender, "amount": amount } })
            }
            NamedCall::TransferFrom { from, to, amount } => {
                json!({ "transfer_from": { "from": from, "to": to, "amount": amount } })
            }
            NamedCall::Burn { amount } => json!({ "burn": { "amount": amount } }),
            NamedCall::DepositToPool {
                manufacturer,
                amount,
            } => json!({ "deposit_to_pool": { "manufacturer": manufacturer, "amount": amount } }),
            NamedCall::RegisterDevice {
                manufacturer,
                device_id,
                public_key,
                protocols,
            } => json!({ "register_devices": { "manufacturer": manufacturer, "devices": [{
                "device_id": device_id, "public_key": public_key, "protocols": protocols, "metadata": [],
            }] } }),
            NamedCall::RegisterAndActivate {
                manufacturer,
                device_id,
                public_key,
                protocols,
                owner,
            } => json!({ "register_and_activate": { "manufacturer": manufacturer, "device": {
                "device_id": device_id, "public_key": public_key, "protocols": protocols, "metadata": [],
            }, "owner": owner } }),
            NamedCall::RegisterService {
                device,
                service_type,
                price,
                unit,
                expiry,
            } => json!({ "register_service": { "device": device, "service_type": service_type,
                "price": price, "unit": unit, "area": null, "metadata": [], "expiry": expiry } }),
            NamedCall::ActivateDevice { device } => {
                json!({ "activate_device": { "device": device } })
            }
            NamedCall::SuspendDevice { device } => {
                json!({ "suspend_device": { "device": device } })
            }
            NamedCall::ResumeDevice { device } => json!({ "resume_device": { "device": device } }),
            NamedCall::RevokeDevice { device } => json!({ "revoke_device": { "device": device } }),
            NamedCall::TransferDevice {
                device,
                to,
                with_wallet,
            } => {
                json!({ "transfer_device": { "device": device, "to": to, "with_wallet": with_wallet } })
            }
            NamedCall::SetAttributes {
                device,
                per_tx_limit,
                window_limit,
                window_secs,
                data_policy,
                min_counterparty_reputation,
                location,
                area,
                payees,
            } => {
                let window = match (window_limit, window_secs) {
                    (Some(amount), Some(secs)) => {
                        json!({ "amount": amount, "window_ms": secs.saturating_mul(1000) })
                    }
                    _ => serde_json::Value::Null,
                };
                let attributes = json!({
                    "per_tx_limit": per_tx_limit,
                    "window_limit": window,
                    "geo_area": area.map(|[a, b, c, d]| json!({
                        "min": { "lat_e6": a, "lon_e6": b },
                        "max": { "lat_e6": c, "lon_e6": d },
                    })),
                    "location": location.map(|(lat, lon)| json!({ "lat_e6": lat, "lon_e6": lon })),
                    "counterparty_min_reputation": min_counterparty_reputation,
                    "data_policy": data_policy.replace('-', "_"),
                    "payee_allowlist": (!payees.is_empty()).then_some(payees),
                });
                json!({ "set_attributes": { "device": device, "attributes": attributes } })
            }
            NamedCall::SetWallet { device, wallet } => {
                json!({ "set_wallet": { "device": device, "wallet": wallet } })
            }
            NamedCall::WithdrawService {
                device,
                service_type,
            } => json!({ "withdraw_service": { "device": device, "service_type": service_type } }),
            NamedCall::WriteReputation {
                auditor,
                device,
                score,
                rep_type,
                direction,
            } => json!({ "write_reputation": { "auditor": auditor, "entries": [{
                "subject": { "device": device }, "rep_type": rep_type, "score": score, "direction": direction,
            }] } }),
            NamedCall::Pay {
                from_device,
                to_device,
                amount,
            } => {
                json!({ "pay": { "from_device": from_device, "to_device": to_device, "amount": amount, "memo": [] } })
            }
            NamedCall::AnchorLog { device, hash, kind } => {
                json!({ "anchor_log": { "device": device, "hash": hash, "kind": kind, "parties": [] } })
            }
            NamedCall::ReportInteraction {
                device,
                peer,
                outcome,
                receipt,
            } => {
                json!({ "report_interaction": { "device": device, "peer": peer, "outcome": outcome, "receipt": receipt } })
            }
            NamedCall::SignCheckpoint {
                epoch,
                height,
                block_hash,
                state_root,
                next_set_hash,
                signature,
            } => json!({ "sign_checkpoint": {
                "epoch": epoch, "height": height, "block_hash": block_hash, "state_root": state_root,
                "next_set_hash": next_set_hash, "signature": signature,
            } }),
        }
    }
}

/// `atonomi tx`: the call from JSON or from a named subcommand, or a transaction file.
pub fn run(args: TxArgs) -> Result<()> {
    let wait = Duration::from_secs(args.wait);
    let named = match args.command {
        Some(TxCommand::Show { file }) => return show(&file),
        Some(TxCommand::Sign { file, to }) => {
            let key = args.key.ok_or_else(|| {
                anyhow::anyhow!("--key FILE (or ATONOMI_KEY): the signer's key file is needed")
            })?;
            return sign_file(&file, to.as_deref().unwrap_or(&file), &key);
        }
        Some(TxCommand::Broadcast { file }) => {
            return super::runtime()?.block_on(broadcast(&args.rpc, &file, wait))
        }
        Some(TxCommand::Call(named)) => Some(named),
        None => None,
    };
    let call = match (args.call, named) {
        (Some(json), None) => json,
        (None, Some(named)) => named.to_json().to_string(),
        _ => bail!("give the call as JSON or as a subcommand (see `atonomi tx --help`)"),
    };
    super::runtime()?.block_on(send(
        &args.rpc,
        args.key.as_deref(),
        &call,
        args.device_key.as_deref(),
        wait,
        &args.file,
    ))
}

/// The chain a prepared transaction is for: `--chain-id` (checked against the node's
/// when one is asked), or the node's.
pub(super) async fn chain_id_of(
    file: &FileArgs,
    node: Option<&Node>,
    url: &str,
) -> Result<ChainId> {
    match (&file.chain_id, node) {
        (Some(id), node) => {
            let id =
                ChainId::new(id.clone()).map_err(|e| anyhow::anyhow!("--chain-id {id}: {e}"))?;
            if let Some(node) = node {
                let served = node.chain_id().await?;
                if served != id {
                    bail!("--chain-id {id}, but the node at {url} serves chain {served}");
                }
            }
            Ok(id)
        }
        (None, Some(node)) => Ok(node.chain_id().await?),
        (None, None) => bail!("--offline: give the chain's id with --chain-id ID"),
    }
}

/// Signs `call` with the key file, submits it, waits until it is final and prints the
/// receipt. Fails (non-zero exit) when the call failed or the transaction was invalid.
/// With `file.out` the transaction is written there instead (unsigned without a key),
/// and with `file.offline` no node is asked anything.
pub async fn send(
    url: &str,
    key_file: Option<&Path>,
    call_json: &str,
    device_key: Option<&Path>,
    wait: Duration,
    file: &FileArgs,
) -> Result<()> {
    let signer = key_file.map(KeyFileSigner::open).transpose()?;
    let account = match (&signer, file.signer) {
        (Some(s), None) => s.account(),
        (Some(s), Some(a)) if a == s.account() => a,
        (Some(s), Some(a)) => bail!(
            "--signer {a} is not the account of --key ({}); give one of them",
            s.account()
        ),
        (None, Some(a)) if file.out.is_some() => a,
        (None, _) => bail!(
            "--key FILE (or ATONOMI_KEY): the signer's key file is needed (or, to write an unsigned file, --signer ACCOUNT with --out FILE)"
        ),
    };
    if file.offline && file.out.is_none() {
        bail!("--offline writes the transaction to a file: give --out FILE (and send it later with `atonomi tx broadcast FILE`)");
    }
    let node = if file.offline {
        None
    } else {
        Some(Node::connect(url)?)
    };
    let mut json: Value = serde_json::from_str(call_json).context("the call is not valid JSON")?;
    if device_key.is_some() {
        leave_room_for_device_signature(&mut json);
    }
    let mut the_call: Call = serde_json::from_value(json)
        .context("the call is not valid JSON for any call (see `atonomi tx --help`)")?;
    let chain_id = chain_id_of(file, node.as_ref(), url).await?;
    if let Some(dk) = device_key {
        let dkey = keys::read(dk)?;
        // The device consents to its owner: the signer activating it, or the owner
        // named in a manufacturer's register-and-activate.
        match &mut the_call {
            Call::ActivateDevice {
                device,
                device_signature,
            } => *device_signature = sign_activation(&dkey, &chain_id, device, &account),
            Call::RegisterAndActivate {
                device,
                owner,
                device_signature,
                ..
            } => {
                *device_signature = sign_activation(&dkey, &chain_id, &device.device_id, owner)
            }
            other => bail!(
                "--device-key signs a device's consent to its owner: only activate_device and register_and_activate take it, not {}",
                other.name()
            ),
        }
    }
    let nonce = match (file.nonce, &node) {
        (Some(n), _) => n,
        (None, Some(node)) => node.next_nonce(account).await?,
        (None, None) => bail!(
            "--offline: give the signer's next nonce with --nonce N (`atonomi query account ACCOUNT` where a node is reachable)"
        ),
    };
    let tx = Transaction {
        chain_id,
        signer: account,
        nonce,
        max_fee: None,
        call: the_call,
    };
    if let Some(out) = &file.out {
        let written = match &signer {
            Some(s) => TxFile::signed(&s.sign(tx)?),
            None => TxFile::unsigned(tx),
        };
        return write_file(&written, out);
    }
    let (Some(signer), Some(node)) = (signer, node) else {
        bail!("nothing to send: no key or no node");
    };
    submit_and_wait(&node, &signer.sign(tx)?, wait).await
}

/// Submits a signed transaction, waits until it is final and prints the receipt.
async fn submit_and_wait(node: &Node, stx: &SignedTransaction, wait: Duration) -> Result<()> {
    let nonce = stx.tx.nonce;
    let hash = node.submit(stx).await?;
    tracing::debug!(%hash, "submitted");
    let receipt = match node.wait_final(hash, wait).await {
        Ok(r) => r,
        Err(Error::Dropped { reason, .. }) => bail!(
            "transaction {hash} (nonce {nonce}) was dropped by the node: {reason}; run the command again to sign with the account's current nonce"
        ),
        Err(e) => return Err(e.into()),
    };
    super::print(&receipt)?;
    match receipt.status {
        TxStatus::Success => Ok(()),
        other => bail!("transaction {hash} is final but did not succeed: {other}"),
    }
}

/// `atonomi tx show FILE`.
fn show(path: &Path) -> Result<()> {
    let file = TxFile::read(path)?;
    let tx = &file.transaction;
    super::print(&serde_json::json!({
        "does": tx.call.name(),
        "call": tx.call,
        "signer": tx.signer,
        "nonce": tx.nonce,
        "chain_id": tx.chain_id,
        "max_fee": match &tx.max_fee {
            Some(fee) => serde_json::to_value(fee)?,
            None => Value::String("the network's tx_fee when it runs".into()),
        },
        "signed": file.signature.is_some(),
        "hash": file.hash,
    }))
}

/// `atonomi tx sign FILE --key K [--to OUT]`: needs no node.
fn sign_file(path: &Path, out: &Path, key: &Path) -> Result<()> {
    let file = TxFile::read(path)?;
    let signed = TxFile::signed(&KeyFileSigner::open(key)?.sign(file.transaction)?);
    write_file(&signed, out)
}

/// Writes a transaction file and prints where, whether signed, and what it holds.
fn write_file(file: &TxFile, out: &Path) -> Result<()> {
    file.write(out)?;
    super::print(&serde_json::json!({
        "file": out,
        "signed": file.signature.is_some(),
        "hash": file.hash,
        "signer": file.transaction.signer,
        "nonce": file.transaction.nonce,
        "chain_id": file.transaction.chain_id,
    }))
}

/// `atonomi tx broadcast FILE`: the file's own checks, then the node's chain and the
/// signer's next nonce, then submitted and waited for.
async fn broadcast(url: &str, path: &Path, wait: Duration) -> Result<()> {
    let file = TxFile::read(path)?;
    let stx = file.require_signed(path)?;
    let node = Node::connect(url)?;
    let chain = node.chain_id().await?;
    let next = node.next_nonce(stx.tx.signer).await?;
    file.check_against(&chain, next)?;
    submit_and_wait(&node, &stx, wait).await
}

/// With `--device-key` the device's signature comes from its key, so the JSON of a
/// call that carries one may leave it out: a placeholder is put in, to be replaced.
pub fn leave_room_for_device_signature(json: &mut Value) {
    let Some(obj) = json.as_object_mut() else {
        return;
    };
    for name in ["activate_device", "register_and_activate"] {
        if let Some(body) = obj.get_mut(name).and_then(Value::as_object_mut) {
            body.entry("device_signature")
                .or_insert_with(|| Value::String("0".repeat(128)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Named {
        #[command(subcommand)]
        call: NamedCall,
    }

    /// Every named subcommand, given its flags, makes the JSON of the call it names,
    /// and each one is exercised here.
    #[test]
    fn every_named_call_makes_its_call() {
        use clap::{CommandFactory, Parser};
        let (d, a, h) = ("cd".repeat(32), "ab".repeat(32), "ef".repeat(32));
        let sig = "12".repeat(65);
        let cases: Vec<Vec<&str>> = vec![
            vec!["transfer", "--to", &a, "--amount", "1.5"],
            vec!["approve", "--spender", &a, "--amount", "2"],
            vec![
                "transfer-from",
                "--from",
                &a,
                "--to",
                &a,
                "--amount",
                "15base",
            ],
            vec!["burn", "--amount", "1"],
            vec!["deposit-to-pool", "--manufacturer", "1", "--amount", "1"],
            vec![
                "register-device",
                "--manufacturer",
                "1",
                "--device-id",
                &d,
                "--public-key",
                &a,
                "--protocol",
                "mqtt",
            ],
            vec![
                "register-and-activate",
                "--manufacturer",
                "1",
                "--device-id",
                &d,
                "--public-key",
                &a,
                "--owner",
                &a,
            ],
            vec![
                "register-service",
                "--device",
                &d,
                "--service-type",
                "weather",
                "--price",
                "0.001",
                "--unit",
                "reading",
                "--expiry",
                "100000",
            ],
            vec!["activate-device", "--device", &d],
            vec!["suspend-device", "--device", &d],
            vec!["resume-device", "--device", &d],
            vec!["revoke-device", "--device", &d],
            vec![
                "transfer-device",
                "--device",
                &d,
                "--to",
                &a,
                "--with-wallet",
            ],
            vec!["set-wallet", "--device", &d, "--wallet", &a],
            vec!["set-attributes", "--device", &d],
            vec![
                "set-attributes",
                "--device",
                &d,
                "--per-tx-limit",
                "5",
                "--window-limit",
                "50",
                "--window-secs",
                "3600",
                "--data-policy",
                "inside-area",
                "--min-counterparty-reputation",
                "4000",
                "--location",
                "-33868820,151209296",
                "--area",
                "-34000000,151000000,-33000000,152000000",
                "--payee",
                &d,
            ],
            vec![
                "withdraw-service",
                "--device",
                &d,
                "--service-type",
                "weather",
            ],
            vec![
                "write-reputation",
                "--auditor",
                "1",
                "--device",
                &d,
                "--score",
                "8000",
                "--direction",
                "up",
            ],
            vec![
                "pay",
                "--from-device",
                &d,
                "--to-device",
                &d,
                "--amount",
                "0.5",
            ],
            vec!["anchor-log", "--device", &d, "--hash", &h],
            vec![
                "report-interaction",
                "--device",
                &d,
                "--peer",
                &d,
                "--outcome",
                "failure",
                "--receipt",
                &h,
            ],
            vec![
                "sign-checkpoint",
                "--epoch",
                "1",
                "--height",
                "100",
                "--block-hash",
                &h,
                "--state-root",
                &h,
                "--next-set-hash",
                &h,
                "--signature",
                &sig,
            ],
        ];
        let mut covered = std::collections::BTreeSet::new();
        for args in &cases {
            let parsed = Named::try_parse_from(std::iter::once("t").chain(args.iter().copied()))
                .unwrap_or_else(|e| panic!("{args:?}: {e}"));
            let mut json = parsed.call.to_json();
            leave_room_for_device_signature(&mut json);
            let call: Call =
                serde_json::from_value(json).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            let wanted = match args[0] {
                "register-device" => "register_devices".to_string(),
                other => other.replace('-', "_"),
            };
            assert_eq!(call.name(), wanted);
            covered.insert(args[0]);
        }
        let all: Vec<String> = Named::command()
            .get_subcommands()
            .map(|c| c.get_name().to_string())
            .collect();
        for name in &all {
            assert!(covered.contains(name.as_str()), "{name} is not exercised");
        }
        // Every attribute flag lands in its field.
        let full = cases
            .iter()
            .find(|c| c[0] == "set-attributes" && c.len() > 3)
            .unwrap();
        let parsed =
            Named::try_parse_from(std::iter::once("t").chain(full.iter().copied())).unwrap();
        let call: Call = serde_json::from_value(parsed.call.to_json()).unwrap();
        let Call::SetAttributes { attributes: at, .. } = call else {
            panic!("not set_attributes")
        };
        assert_eq!(at.per_tx_limit.map(|a| a.to_string()), Some("5".into()));
        assert_eq!(at.window_limit.map(|w| w.window_ms), Some(3_600_000));
        assert_eq!(
            at.location.map(|p| (p.lat_e6, p.lon_e6)),
            Some((-33_868_820, 151_209_296))
        );
        assert_eq!(at.geo_area.map(|g| g.max.lon_e6), Some(152_000_000));
        assert_eq!(at.counterparty_min_reputation.map(|s| s.get()), Some(4000));
        assert_eq!(
            at.data_policy,
            atonomi_primitives::state::DataPolicy::InsideArea
        );
        assert_eq!(at.payee_allowlist.map(|p| p.len()), Some(1));
        // A malformed id is refused when the command line is read, naming the flag.
        let e = Named::try_parse_from(["t", "suspend-device", "--device", "xyz"]).unwrap_err();
        assert!(e.to_string().contains("--device"), "{e}");
        let e = Named::try_parse_from([
            "t",
            "write-reputation",
            "--auditor",
            "1",
            "--device",
            &d,
            "--score",
            "10001",
            "--direction",
            "up",
        ])
        .unwrap_err();
        assert!(e.to_string().contains("--score"), "{e}");
    }

    /// Every shape `atonomi tx --help` prints parses as its call, and together they
    /// cover all 24.
    #[test]
    fn every_call_shape_in_the_help_parses() {
        let mut names = std::collections::BTreeSet::new();
        for line in CALL_SHAPES
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with('{'))
        {
            let shape = line.split("   ").next().unwrap_or(line);
            let text = shape
                .replace("ETH_SIG", &"11".repeat(65))
                .replace("\"SIG\"", &format!("\"{}\"", "22".repeat(64)))
                .replace("ACCOUNT", &"ab".repeat(32))
                .replace("DEVICE", &"cd".repeat(32))
                .replace("HASH", &"ef".repeat(32));
            let mut json: serde_json::Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{shape}: {e}"));
            if line.contains("--device-key") {
                leave_room_for_device_signature(&mut json);
            }
            let call: atonomi_primitives::tx::Call =
                serde_json::from_value(json).unwrap_or_else(|e| panic!("{shape}: {e}"));
            names.insert(call.name());
        }
        assert_eq!(names.len(), 24, "{names:?}");
    }
}
