//! `atonomi genesis`: write a genesis from flags, validate one, print the dev genesis.

use anyhow::Result;
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum GenesisCommand {
    /// Validate a genesis file: schema, every rule the runtime relies on, and print
    /// its summary with the genesis state root (compare it with other operators').
    Validate {
        /// The genesis file (JSON).
        file: PathBuf,
    },
    /// Print the embedded dev genesis (JSON), a starting point for a real one.
    Dev,
    /// Write a genesis: your chain id and validators; governance admins and
    /// threshold, manufacturers, auditors and allocations from the flags, each taken
    /// from the dev genesis (its dev-key admin, demo manufacturer 1 and auditor 1,
    /// funded dev accounts) when its flag is not given — fine for a test network, never
    /// for real value. Check the result with `genesis validate`.
    ///
    /// A 2-of-3 network with its own admins, manufacturer, auditor and treasury:
    ///
    ///   atonomi genesis new --chain-id acme-1 --validator ACCT,PEER --admin A1 --admin A2
    ///     --admin A3 --threshold 2 --manufacturer 1,"Acme Sensors",KEY
    ///     --auditor 1,"Acme Audit",KEY --alloc A1,1000000 --out genesis.json
    New {
        /// The chain id every transaction signs over (letters, digits, - and _).
        #[arg(long, default_value = "atonomi-testnet")]
        chain_id: String,
        /// ACCOUNT,PEER_ID_HEX[,POWER[,BRIDGE_ADDRESS]] for each validator (as printed by
        /// `atonomi init`; the bridge address is its Ethereum checkpoint key). Its
        /// operator is the first manufacturer.
        #[arg(long = "validator", required = true)]
        validators: Vec<String>,
        /// A governance admin's account (repeat for each; `atonomi keys show FILE`
        /// prints it). Replaces the dev admin.
        #[arg(long = "admin")]
        admins: Vec<String>,
        /// Admin approvals a proposal needs (k of the n admins; default 1).
        #[arg(long)]
        threshold: Option<u32>,
        /// ID,NAME,KEY_ACCOUNT of a manufacturer (repeat for each; its key also
        /// receives its rewards). Replaces the demo manufacturer.
        #[arg(long = "manufacturer")]
        manufacturers: Vec<String>,
        /// ID,NAME,KEY_ACCOUNT of an auditor (repeat for each; its key also receives its
        /// rewards). Replaces the demo auditor.
        #[arg(long = "auditor")]
        auditors: Vec<String>,
        /// ACCOUNT,AMOUNT: tokens at genesis, in ATMI (up to 18 decimals, e.g. 1.5) or
        /// base units with the suffix `base` (e.g. 15base). Replaces the dev
        /// allocations; the total supply is their sum.
        #[arg(long = "alloc")]
        allocations: Vec<String>,
        /// PEER_ID_HEX of a full node allowed to connect.
        #[arg(long = "node-peer")]
        node_peers: Vec<String>,
        /// Blocks between Ethereum checkpoints (the `checkpoint_interval` parameter).
        #[arg(long)]
        checkpoint_interval: Option<u64>,
        /// Output file (stdout when omitted).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub fn run(cmd: GenesisCommand) -> Result<()> {
    match cmd {
        GenesisCommand::Validate { file } => validate(&file),
        GenesisCommand::New {
            chain_id,
            validators,
            admins,
            threshold,
            manufacturers,
            auditors,
            allocations,
            node_peers,
            checkpoint_interval,
            out,
        } => new(
            &chain_id,
            &validators,
            &Members {
                admins,
                threshold,
                manufacturers,
                auditors,
                allocations,
            },
            node_peers,
            checkpoint_interval,
            out.as_deref(),
        ),
        GenesisCommand::Dev => {
            println!("{}", atonomi_genesis::dev::genesis().to_json());
            Ok(())
        }
    }
}

/// What `genesis new` takes from its flags instead of the dev genesis.
struct Members {
    admins: Vec<String>,
    threshold: Option<u32>,
    manufacturers: Vec<String>,
    auditors: Vec<String>,
    allocations: Vec<String>,
}

fn parse_account(flag: &str, s: &str) -> Result<atonomi_primitives::AccountId> {
    use anyhow::Context;
    s.trim()
        .parse()
        .with_context(|| format!("{flag} {s}: not an account (64 hex digits)"))
}

/// `ID,NAME,KEY` of a manufacturer or auditor (the name may hold commas).
fn parse_member(flag: &str, s: &str) -> Result<(u32, String, atonomi_primitives::AccountId)> {
    use anyhow::Context;
    let (id, rest) = s
        .split_once(',')
        .with_context(|| format!("{flag} {s}: expected ID,NAME,KEY_ACCOUNT"))?;
    let (name, key) = rest
        .rsplit_once(',')
        .with_context(|| format!("{flag} {s}: expected ID,NAME,KEY_ACCOUNT"))?;
    let id = id
        .trim()
        .parse()
        .with_context(|| format!("{flag} {s}: the id is a number"))?;
    Ok((id, name.trim().to_string(), parse_account(flag, key)?))
}

impl Members {
    fn apply(&self, g: &mut atonomi_genesis::Genesis) -> Result<()> {
        use anyhow::Context;
        use atonomi_primitives::gov::{NewAuditor, NewManufacturer};
        use atonomi_primitives::{Amount, AuditorId, ManufacturerId};
        if !self.admins.is_empty() {
            g.governance.admins = self
                .admins
                .iter()
                .map(|a| parse_account("--admin", a))
                .collect::<Result<_>>()?;
            g.governance.threshold = 1;
        }
        if let Some(k) = self.threshold {
            g.governance.threshold = k;
        }
        if !self.manufacturers.is_empty() {
            g.manufacturers = self
                .manufacturers
                .iter()
                .map(|m| {
                    let (id, name, key) = parse_member("--manufacturer", m)?;
                    Ok(NewManufacturer {
                        id: ManufacturerId::new(id),
                        name,
                        keys: vec![key],
                        registration_fee: None,
                        default_score: atonomi_genesis::DEFAULT_MANUFACTURER_SCORE,
                        reward_wallet: key,
                        metadata: vec![],
                    })
                })
                .collect::<Result<_>>()?;
        }
        if !self.auditors.is_empty() {
            g.auditors = self
                .auditors
                .iter()
                .map(|a| {
                    let (id, name, key) = parse_member("--auditor", a)?;
                    Ok(NewAuditor {
                        id: AuditorId::new(id),
                        name,
                        keys: vec![key],
                        reward_account: key,
                        metadata: vec![],
                    })
                })
                .collect::<Result<_>>()?;
        }
        if !self.allocations.is_empty() {
            let mut total = Amount::ZERO;
            g.allocations = self
                .allocations
                .iter()
                .map(|a| {
                    let (account, amount) = a
                        .split_once(',')
                        .with_context(|| format!("--alloc {a}: expected ACCOUNT,AMOUNT"))?;
                    let amount = Amount::parse_atmi(amount.trim()).with_context(|| {
                        format!("--alloc {a}: the amount is ATMI with up to 18 decimals, or base units ending in `base`")
                    })?;
                    total = total
                        .checked_add(amount)
                        .with_context(|| "--alloc: the allocations overflow".to_string())?;
                    Ok(atonomi_genesis::Allocation {
                        account: parse_account("--alloc", account)?,
                        amount,
                    })
                })
                .collect::<Result<_>>()?;
            g.token.total_supply = total;
        }
        Ok(())
    }
}

fn new(
    chain_id: &str,
    validators: &[String],
    members: &Members,
    node_peers: Vec<String>,
    checkpoint_interval: Option<u64>,
    out: Option<&std::path::Path>,
) -> Result<()> {
    use anyhow::Context;
    let mut g = atonomi_genesis::dev::genesis();
    g.chain_id = atonomi_primitives::ChainId::new(chain_id)
        .map_err(|e| anyhow::anyhow!("--chain-id: {e}"))?;
    members.apply(&mut g)?;
    let operator = g
        .manufacturers
        .first()
        .map_or(atonomi_genesis::dev::MANUFACTURER, |m| m.id);
    g.validators = validators
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let parts: Vec<&str> = v.split(',').collect();
            anyhow::ensure!(
                (2..=4).contains(&parts.len()),
                "--validator {v}: expected ACCOUNT,PEER_ID_HEX[,POWER[,BRIDGE_ADDRESS]]"
            );
            let consensus_key = parse_account("--validator", parts[0])?;
            let peer_id =
                hex::decode(parts[1]).with_context(|| format!("--validator {i}: peer id hex"))?;
            let power = match parts.get(2) {
                Some(p) => p
                    .parse()
                    .with_context(|| format!("--validator {i}: power"))?,
                None => 1,
            };
            let bridge_address: [u8; 20] = match parts.get(3) {
                Some(a) => hex::decode(a.trim_start_matches("0x"))
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .with_context(|| {
                        format!("--validator {i}: bridge address is 20 bytes of hex")
                    })?,
                None => [0; 20],
            };
            Ok(atonomi_primitives::state::Validator {
                consensus_key,
                peer_id,
                bridge_address,
                power,
                operator,
            })
        })
        .collect::<Result<_>>()?;
    g.node_peers = node_peers;
    if let Some(i) = checkpoint_interval {
        g.params.checkpoint_interval = i;
    }
    g.validate()?;
    let json = g.to_json();
    match out {
        Some(p) => std::fs::write(p, json).with_context(|| format!("writing {}", p.display()))?,
        None => println!("{json}"),
    }
    Ok(())
}

fn validate(file: &std::path::Path) -> Result<()> {
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
    let db = atonomi_storage::StateDb::open(atonomi_storage::MemoryStore::new())?;
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
