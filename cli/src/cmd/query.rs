//! `atonomi query`: read any record from a node over JSON-RPC and print it as JSON.

use super::{arg, print, RpcArg};
use anyhow::Result;
use atonomi_api::rpc::HistoryPosition;
use atonomi_primitives::{AccountId, DeviceId};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum QueryCommand {
    /// Chain id, height, latest block, state root, validators, mempool size.
    Status(RpcArg),
    /// A block (header, transaction hashes, commit certificate) by height or hash.
    Block {
        #[command(flatten)]
        rpc: RpcArg,
        /// A height, or a block hash (64 hex digits).
        id: String,
    },
    /// A transaction's receipt (or "pending").
    Tx {
        #[command(flatten)]
        rpc: RpcArg,
        /// The transaction hash `atonomi tx` or atonomi_sendTransaction returned.
        hash: String,
    },
    /// Balance and next nonce of an account.
    Account {
        #[command(flatten)]
        rpc: RpcArg,
        /// The account (64 hex digits; `atonomi keys show FILE`).
        account: String,
    },
    /// The token: name, symbol, decimals and total supply (base units).
    Token(RpcArg),
    /// How much SPENDER may move of OWNER's tokens (base units; 0 when none).
    Allowance {
        #[command(flatten)]
        rpc: RpcArg,
        /// The account whose tokens may be spent.
        owner: String,
        /// The account allowed to spend them.
        spender: String,
    },
    /// The network parameters in force (fees, limits, reputation rules, bridge).
    Params(RpcArg),
    /// The governance council: admins, approvals needed (threshold) and the next
    /// proposal id.
    Governance(RpcArg),
    /// A governance proposal: its action, proposer, approvals so far and status.
    Proposal {
        #[command(flatten)]
        rpc: RpcArg,
        /// The proposal id (from its proposal_created event or `query proposals`).
        id: u64,
    },
    /// The scheduled upgrade (or the one named) with its status, the protocol version
    /// in state, and the upgrades the node's binary implements (`known: false`: that
    /// node stops at the upgrade's height until its binary is replaced).
    Upgrade {
        #[command(flatten)]
        rpc: RpcArg,
        /// An upgrade's name (default: the scheduled one).
        name: Option<String>,
    },
    /// Governance proposals by id, a page at a time (`next` is the id to go on from).
    Proposals {
        #[command(flatten)]
        rpc: RpcArg,
        /// Only pending, executed or failed ones.
        #[arg(long, value_parser = ["pending", "executed", "failed"])]
        status: Option<String>,
        /// The first id to look at.
        #[arg(long)]
        from: Option<u64>,
        /// At most this many (up to 100).
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// The validator set in force, and the one a governance change has scheduled; with
    /// --height, as they were after that height (a height this node still keeps).
    Validators {
        #[command(flatten)]
        rpc: RpcArg,
        /// A kept height (default: the latest).
        #[arg(long)]
        height: Option<u64>,
    },
    /// Manufacturers by id, a page at a time (`next` is the id to go on from).
    Manufacturers {
        #[command(flatten)]
        rpc: RpcArg,
        /// The first id to list (default: the lowest).
        #[arg(long)]
        from: Option<u32>,
        /// At most this many (up to 100).
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Auditors by id, a page at a time (`next` is the id to go on from).
    Auditors {
        #[command(flatten)]
        rpc: RpcArg,
        /// The first id to list (default: the lowest).
        #[arg(long)]
        from: Option<u32>,
        /// At most this many (up to 100).
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// A manufacturer's record: name, keys, status, fee pool, registration fee, reward
    /// wallet and how many devices it has registered.
    Manufacturer {
        #[command(flatten)]
        rpc: RpcArg,
        /// The manufacturer's number (as in genesis or its AddManufacturer proposal).
        id: u32,
    },
    /// An auditor's record: name, keys, status and reward account.
    Auditor {
        #[command(flatten)]
        rpc: RpcArg,
        /// The auditor's number.
        id: u32,
    },
    /// A device's record: manufacturer, key, status, owner, wallet, attributes.
    Device {
        #[command(flatten)]
        rpc: RpcArg,
        /// The device id (64 hex digits; `atonomi device-id SALT HARDWARE_ID`).
        id: String,
    },
    /// The aggregate reputation of one type (median and each auditor's score) of a
    /// device, or of a manufacturer or an account.
    #[command(group(clap::ArgGroup::new("subject").required(true).args(["device", "manufacturer", "account"])))]
    Reputation {
        #[command(flatten)]
        rpc: RpcArg,
        /// The device id (64 hex digits).
        device: Option<DeviceId>,
        /// A manufacturer's reputation instead.
        #[arg(long)]
        manufacturer: Option<u32>,
        /// An account's reputation instead.
        #[arg(long)]
        account: Option<AccountId>,
        /// The reputation type (e.g. trust).
        #[arg(long, default_value = "trust")]
        rep_type: String,
    },
    /// A manufacturer's devices (full records) by device id, a page at a time (`next`
    /// is the id to go on from).
    /// Example: atonomi query devices --manufacturer 1 --limit 100
    Devices {
        #[command(flatten)]
        rpc: RpcArg,
        /// The manufacturer's number.
        #[arg(long)]
        manufacturer: u32,
        /// The first device id to list (default: the lowest).
        #[arg(long)]
        from: Option<DeviceId>,
        /// At most this many (up to 100).
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Every reputation write about a device, a manufacturer or an account, oldest
    /// first: height, time, auditor, type, score, direction and the aggregate after it.
    /// Example: atonomi query reputation-history --device DEVICE
    #[command(group(clap::ArgGroup::new("subject").required(true).args(["device", "manufacturer", "account"])))]
    ReputationHistory {
        #[command(flatten)]
        rpc: RpcArg,
        /// About this device (64 hex digits).
        #[arg(long)]
        device: Option<DeviceId>,
        /// About this manufacturer.
        #[arg(long)]
        manufacturer: Option<u32>,
        /// About this account (64 hex digits).
        #[arg(long)]
        account: Option<AccountId>,
        /// Go on from here: the `next` of the page before, as HEIGHT:TX:EVENT.
        #[arg(long, value_parser = parse_position)]
        from: Option<HistoryPosition>,
        /// At most this many (up to 100).
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// May I trade with this device? (registered, active, reputation, policy)
    ValidateDevice {
        #[command(flatten)]
        rpc: RpcArg,
        /// The device to check (64 hex digits).
        device: String,
        /// The asking device (its data policy applies).
        #[arg(long)]
        requester: Option<String>,
        /// Refuse below this score (0..=10000) on top of the network minimum.
        #[arg(long)]
        min_reputation: Option<u32>,
    },
    /// Active devices offering a service type, optionally in an area and above a
    /// reputation (JSON area: {"min":{"lat_e6":..,"lon_e6":..},"max":{..}}).
    Discover {
        #[command(flatten)]
        rpc: RpcArg,
        /// The service type offered (e.g. weather).
        service_type: String,
        /// Only offers inside this area (JSON, see above).
        #[arg(long)]
        area: Option<String>,
        /// Only devices with at least this score (0..=10000).
        #[arg(long)]
        min_reputation: Option<u32>,
    },
    /// The events of a range of committed heights (at most 1000), each height with its
    /// transactions' events, or what failed and who sent it.
    Events {
        #[command(flatten)]
        rpc: RpcArg,
        /// The first height.
        #[arg(long)]
        from: u64,
        /// The last height (default: --from).
        #[arg(long)]
        to: Option<u64>,
    },
    /// Equivocation evidence recorded by this node (from height --from on).
    Evidence {
        #[command(flatten)]
        rpc: RpcArg,
        /// The first height to list evidence from.
        #[arg(long, default_value_t = 0)]
        from: u64,
    },
    /// Inclusion or non-inclusion proof of a state record, with the header and commit
    /// it is proven against: a device (by default), or the record another flag names
    /// (what the other reads print, proven).
    /// Example: atonomi query proof DEVICE; atonomi query proof --account ACCOUNT --height 120
    #[command(group(clap::ArgGroup::new("record").required(true).args([
        "device", "account", "manufacturer", "auditor", "proposal", "allowance", "reputation",
        "params", "governance", "token", "validators", "node_peer",
    ])))]
    Proof {
        #[command(flatten)]
        rpc: RpcArg,
        /// The device id (64 hex digits) whose record, or absence, is proven.
        device: Option<DeviceId>,
        /// An account (balance and nonce).
        #[arg(long)]
        account: Option<AccountId>,
        /// A manufacturer's record.
        #[arg(long)]
        manufacturer: Option<u32>,
        /// An auditor's record.
        #[arg(long)]
        auditor: Option<u32>,
        /// A governance proposal.
        #[arg(long)]
        proposal: Option<u64>,
        /// An allowance: OWNER,SPENDER.
        #[arg(long, value_parser = parse_pair)]
        allowance: Option<(AccountId, AccountId)>,
        /// A device's reputation aggregate: DEVICE,TYPE.
        #[arg(long, value_parser = parse_reputation)]
        reputation: Option<(DeviceId, String)>,
        /// The network parameters.
        #[arg(long)]
        params: bool,
        /// Admins and threshold.
        #[arg(long)]
        governance: bool,
        /// Token name, symbol, decimals and supply.
        #[arg(long)]
        token: bool,
        /// The validator set in force.
        #[arg(long)]
        validators: bool,
        /// Whether a full node's peer id (hex) may connect to validators: present or absent.
        #[arg(long)]
        node_peer: Option<String>,
        /// A kept height to prove at (default: the latest).
        #[arg(long)]
        height: Option<u64>,
    },
    /// A checkpoint epoch: its height and the validators' signatures recorded so far.
    Checkpoint {
        #[command(flatten)]
        rpc: RpcArg,
        /// The epoch (1 is the first checkpoint).
        epoch: u64,
    },
    /// The checkpoint bridge as the node sees it: the chain's last epoch, the contract,
    /// this node's signer and relayer, the latest submissions to Ethereum.
    Bridge(RpcArg),
}

/// A proven value's borsh bytes (hex) as the JSON of its record type, so that what is
/// proven can be read (`atonomi verify proof` checks the bytes themselves).
fn decode_record(
    key: &atonomi_primitives::state::StateKey,
    hex: &str,
) -> Result<serde_json::Value> {
    use atonomi_primitives::state::*;
    use atonomi_primitives::{codec, Amount, Params};
    fn json<T: borsh::BorshDeserialize + serde::Serialize>(b: &[u8]) -> Result<serde_json::Value> {
        let v: T = codec::decode(b, 16 << 20)
            .map_err(|e| anyhow::anyhow!("the proven value does not decode: {e}"))?;
        Ok(serde_json::to_value(v)?)
    }
    let b = hex::decode(hex)?;
    match key {
        StateKey::Device(_) => json::<Device>(&b),
        StateKey::Account(_) => json::<Account>(&b),
        StateKey::Manufacturer(_) => json::<Manufacturer>(&b),
        StateKey::Auditor(_) => json::<Auditor>(&b),
        StateKey::Proposal(_) => json::<atonomi_primitives::gov::Proposal>(&b),
        StateKey::Allowance { .. } => json::<Amount>(&b),
        StateKey::ReputationAggregate { .. } => json::<ReputationAggregate>(&b),
        StateKey::Params => json::<Params>(&b),
        StateKey::Governance => json::<atonomi_primitives::gov::Governance>(&b),
        StateKey::Token => json::<TokenInfo>(&b),
        StateKey::ValidatorSet => json::<ValidatorSet>(&b),
        StateKey::NodePeer(_) => Ok(serde_json::json!("allowed")),
        StateKey::ScheduledUpgrade => json::<atonomi_primitives::gov::UpgradePlan>(&b),
        StateKey::Upgrade(_) => json::<atonomi_primitives::gov::UpgradeRecord>(&b),
        StateKey::ProtocolVersion => json::<u32>(&b),
        _ => Ok(serde_json::Value::String(hex.to_string())),
    }
}

/// `A,B`: two accounts.
fn parse_pair(s: &str) -> Result<(AccountId, AccountId), String> {
    let (a, b) = s
        .split_once(',')
        .ok_or_else(|| format!("{s}: OWNER,SPENDER (two accounts, 64 hex digits each)"))?;
    let account = |x: &str| {
        x.trim()
            .parse::<AccountId>()
            .map_err(|e| format!("{x}: {e}"))
    };
    Ok((account(a)?, account(b)?))
}

/// `DEVICE,TYPE`.
fn parse_reputation(s: &str) -> Result<(DeviceId, String), String> {
    let (d, t) = s
        .split_once(',')
        .ok_or_else(|| format!("{s}: DEVICE,TYPE (e.g. …,trust)"))?;
    Ok((
        d.trim()
            .parse::<DeviceId>()
            .map_err(|e| format!("{d}: {e}"))?,
        t.trim().to_string(),
    ))
}

fn score(name: &str, v: Option<u32>) -> Result<Option<atonomi_primitives::Score>> {
    v.map(|v| {
        atonomi_primitives::Score::new(v)
            .ok_or_else(|| anyhow::anyhow!("{name}: at most {}", atonomi_primitives::Score::MAX))
    })
    .transpose()
}

/// `atonomi query …`: one read, printed as the node answered it.
pub async fn run(q: QueryCommand) -> Result<()> {
    use atonomi_api::rpc::{
        BlockId, DiscoverParams, ListDevices, ListPage, ListProposals, ReputationHistoryQuery,
        StatusFilter, ValidateParams,
    };
    use atonomi_client::{Answered, AtonomiApiClient};
    use atonomi_primitives::state::{StateKey, Subject};
    use atonomi_primitives::ManufacturerId;
    let node = |url: &str| atonomi_client::Node::connect(url);
    match q {
        QueryCommand::Status(r) => {
            let n = node(&r.rpc)?;
            print(&n.rpc().status().await.or_node(&n)?)
        }
        QueryCommand::Block { rpc, id } => {
            let n = node(&rpc.rpc)?;
            let id = match id.parse::<u64>() {
                Ok(h) => BlockId::Height(h),
                Err(_) => BlockId::Hash(arg("block hash", &id)?),
            };
            print(&n.rpc().get_block(id).await.or_node(&n)?)
        }
        QueryCommand::Tx { rpc, hash } => {
            let n = node(&rpc.rpc)?;
            let hash = arg("hash", &hash)?;
            print(&n.rpc().get_transaction(hash).await.or_node(&n)?)
        }
        QueryCommand::Account { rpc, account } => {
            let n = node(&rpc.rpc)?;
            let account = arg("account", &account)?;
            print(&n.rpc().get_account(account).await.or_node(&n)?)
        }
        QueryCommand::Manufacturer { rpc, id } => {
            let n = node(&rpc.rpc)?;
            print(&n.rpc().get_manufacturer(id).await.or_node(&n)?)
        }
        QueryCommand::Auditor { rpc, id } => {
            let n = node(&rpc.rpc)?;
            print(&n.rpc().get_auditor(id).await.or_node(&n)?)
        }
        QueryCommand::Device { rpc, id } => {
            let n = node(&rpc.rpc)?;
            let device = arg("device", &id)?;
            print(&n.rpc().get_device(device).await.or_node(&n)?)
        }
        QueryCommand::Reputation {
            rpc,
            device,
            manufacturer,
            account,
            rep_type,
        } => {
            let n = node(&rpc.rpc)?;
            let subject = subject_of(device, manufacturer, account)?;
            print(
                &n.rpc()
                    .get_reputation(subject, rep_type)
                    .await
                    .or_node(&n)?,
            )
        }
        QueryCommand::ValidateDevice {
            rpc,
            device,
            requester,
            min_reputation,
        } => {
            let n = node(&rpc.rpc)?;
            let query = ValidateParams {
                device: arg("device", &device)?,
                requester: requester.map(|r| arg("--requester", &r)).transpose()?,
                min_reputation: score("--min-reputation", min_reputation)?,
            };
            print(&n.rpc().validate_device(query).await.or_node(&n)?)
        }
        QueryCommand::Discover {
            rpc,
            service_type,
            area,
            min_reputation,
        } => {
            let n = node(&rpc.rpc)?;
            let area = match area {
                Some(a) => {
                    Some(serde_json::from_str(&a).map_err(|e| anyhow::anyhow!("--area: {e}"))?)
                }
                None => None,
            };
            let query = DiscoverParams {
                service_type,
                area,
                min_reputation: score("--min-reputation", min_reputation)?,
                limit: None,
            };
            print(&n.rpc().discover(query).await.or_node(&n)?)
        }
        QueryCommand::Events { rpc, from, to } => {
            let to = to.unwrap_or(from);
            anyhow::ensure!(from <= to, "--to {to} is below --from {from}");
            anyhow::ensure!(to - from < 1_000, "at most 1000 heights at once");
            let n = node(&rpc.rpc)?;
            let mut heights = Vec::new();
            for h in from..=to {
                heights.push(n.rpc().get_events(h).await.or_node(&n)?);
            }
            print(&heights)
        }
        QueryCommand::Evidence { rpc, from } => {
            let n = node(&rpc.rpc)?;
            print(&n.rpc().get_evidence(Some(from)).await.or_node(&n)?)
        }
        QueryCommand::Token(r) => {
            let n = node(&r.rpc)?;
            print(&n.rpc().get_token().await.or_node(&n)?)
        }
        QueryCommand::Allowance {
            rpc,
            owner,
            spender,
        } => {
            let n = node(&rpc.rpc)?;
            let (owner, spender) = (arg("owner", &owner)?, arg("spender", &spender)?);
            print(&n.rpc().get_allowance(owner, spender).await.or_node(&n)?)
        }
        QueryCommand::Params(r) => {
            let n = node(&r.rpc)?;
            print(&n.rpc().get_params().await.or_node(&n)?)
        }
        QueryCommand::Governance(r) => {
            let n = node(&r.rpc)?;
            print(&n.rpc().get_governance().await.or_node(&n)?)
        }
        QueryCommand::Upgrade { rpc, name } => {
            let n = node(&rpc.rpc)?;
            print(&n.rpc().get_upgrade(name).await.or_node(&n)?)
        }
        QueryCommand::Proposal { rpc, id } => {
            let n = node(&rpc.rpc)?;
            print(&n.rpc().get_proposal(id).await.or_node(&n)?)
        }
        QueryCommand::Proposals {
            rpc,
            status,
            from,
            limit,
        } => {
            let n = node(&rpc.rpc)?;
            let status: Option<StatusFilter> = status.map(|s| arg("--status", &s)).transpose()?;
            let filter = ListProposals {
                status,
                from,
                limit: Some(limit),
            };
            print(&n.rpc().list_proposals(filter).await.or_node(&n)?)
        }
        QueryCommand::Validators { rpc, height } => {
            let n = node(&rpc.rpc)?;
            print(&n.rpc().get_validators(height).await.or_node(&n)?)
        }
        QueryCommand::Devices {
            rpc,
            manufacturer,
            from,
            limit,
        } => {
            let n = node(&rpc.rpc)?;
            let query = ListDevices {
                manufacturer,
                from,
                limit: Some(limit),
            };
            print(&n.rpc().list_devices(query).await.or_node(&n)?)
        }
        QueryCommand::ReputationHistory {
            rpc,
            device,
            manufacturer,
            account,
            from,
            limit,
        } => {
            let n = node(&rpc.rpc)?;
            let subject = subject_of(device, manufacturer, account)?;
            let query = ReputationHistoryQuery {
                subject,
                from,
                limit: Some(limit),
            };
            print(&n.rpc().get_reputation_history(query).await.or_node(&n)?)
        }
        QueryCommand::Manufacturers { rpc, from, limit } => {
            let n = node(&rpc.rpc)?;
            let page = ListPage {
                from,
                limit: Some(limit),
            };
            print(&n.rpc().list_manufacturers(page).await.or_node(&n)?)
        }
        QueryCommand::Auditors { rpc, from, limit } => {
            let n = node(&rpc.rpc)?;
            let page = ListPage {
                from,
                limit: Some(limit),
            };
            print(&n.rpc().list_auditors(page).await.or_node(&n)?)
        }
        QueryCommand::Proof {
            rpc,
            device,
            account,
            manufacturer,
            auditor,
            proposal,
            allowance,
            reputation,
            params,
            governance,
            token,
            validators,
            node_peer,
            height,
        } => {
            let n = node(&rpc.rpc)?;
            let key = if let Some(d) = device {
                StateKey::Device(d)
            } else if let Some(a) = account {
                StateKey::Account(a)
            } else if let Some(m) = manufacturer {
                StateKey::Manufacturer(ManufacturerId::new(m))
            } else if let Some(a) = auditor {
                StateKey::Auditor(atonomi_primitives::AuditorId::new(a))
            } else if let Some(p) = proposal {
                StateKey::Proposal(atonomi_primitives::ProposalId::new(p))
            } else if let Some((owner, spender)) = allowance {
                StateKey::Allowance { owner, spender }
            } else if let Some((d, rep_type)) = reputation {
                StateKey::ReputationAggregate {
                    subject: Subject::Device(d),
                    rep_type,
                }
            } else if params {
                StateKey::Params
            } else if governance {
                StateKey::Governance
            } else if token {
                StateKey::Token
            } else if validators {
                StateKey::ValidatorSet
            } else if let Some(peer) = node_peer {
                StateKey::NodePeer(hex::decode(peer.trim_start_matches("0x"))?)
            } else {
                anyhow::bail!("name the record to prove (see `atonomi query proof --help`)")
            };
            let proof = n.rpc().get_proof(key.clone(), height).await.or_node(&n)?;
            let record = match &proof.value {
                Some(hex) => Some(decode_record(&key, hex)?),
                None => None,
            };
            let mut out = serde_json::to_value(&proof)?;
            out["record"] = record.unwrap_or(serde_json::Value::Null);
            print(&out)
        }
        QueryCommand::Checkpoint { rpc, epoch } => {
            let n = node(&rpc.rpc)?;
            print(&n.rpc().get_checkpoint(epoch).await.or_node(&n)?)
        }
        QueryCommand::Bridge(r) => {
            let n = node(&r.rpc)?;
            print(&n.rpc().get_bridge_status().await.or_node(&n)?)
        }
    }
}

/// The one subject of `--device`, `--manufacturer` or `--account` (clap requires one).
fn subject_of(
    device: Option<DeviceId>,
    manufacturer: Option<u32>,
    account: Option<AccountId>,
) -> Result<atonomi_primitives::state::Subject> {
    use atonomi_primitives::state::Subject;
    Ok(match (device, manufacturer, account) {
        (Some(d), _, _) => Subject::Device(d),
        (_, Some(m), _) => Subject::Manufacturer(atonomi_primitives::ManufacturerId::new(m)),
        (_, _, Some(a)) => Subject::Account(a),
        _ => anyhow::bail!("name the subject: a device, --manufacturer or --account"),
    })
}

/// `HEIGHT:TX:EVENT`, as a history page's `next` gives it.
fn parse_position(s: &str) -> Result<HistoryPosition, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let bad = || format!("{s}: HEIGHT:TX:EVENT, e.g. 120:0:3 (the `next` of the page before)");
    match parts.as_slice() {
        [h, t, e] => Ok(HistoryPosition {
            height: h.parse().map_err(|_| bad())?,
            tx: t.parse().map_err(|_| bad())?,
            event: e.parse().map_err(|_| bad())?,
        }),
        _ => Err(bad()),
    }
}
