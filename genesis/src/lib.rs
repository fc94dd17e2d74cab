//! The genesis file: a versioned JSON schema, validated on load with errors that name
//! the bad field, and the embedded genesis of `dev` mode.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use atonomi_primitives::genesis::GenesisState;
use atonomi_primitives::gov::{Governance, NewAuditor, NewManufacturer};
use atonomi_primitives::state::{
    valid_member, Auditor, ChainInfo, Manufacturer, MemberStatus, TokenInfo, Validator,
    ValidatorSet,
};
use atonomi_primitives::{
    AccountId, Amount, AuditorId, ChainId, Keypair, ManufacturerId, Params, ProposalId, Score,
    Timestamp,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

const MEMBER_RULE: &str =
    "needs a name of 1..=64 bytes, 1..=16 distinct keys and at most 1024 bytes of metadata";

/// The schema version this build reads and writes.
pub const GENESIS_VERSION: u32 = 1;

/// Largest genesis file accepted.
pub const MAX_GENESIS_BYTES: usize = 64 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allocation {
    pub account: AccountId,
    /// Base units (10^-18 ATMI), as a decimal string.
    pub amount: Amount,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GovernanceConfig {
    pub admins: Vec<AccountId>,
    pub threshold: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub name: String,
    pub symbol: String,
    pub decimals: u8,
    pub total_supply: Amount,
}

/// A genesis file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    pub version: u32,
    pub chain_id: ChainId,
    /// Milliseconds since the Unix epoch; the first block's timestamp must be later.
    pub genesis_time_ms: u64,
    pub token: TokenConfig,
    #[serde(default)]
    pub params: Params,
    pub governance: GovernanceConfig,
    pub validators: Vec<Validator>,
    pub allocations: Vec<Allocation>,
    #[serde(default)]
    pub manufacturers: Vec<NewManufacturer>,
    #[serde(default)]
    pub auditors: Vec<NewAuditor>,
    /// Full nodes allowed to connect to validators from the start: libp2p peer ids as
    /// hex of their bytes (governance adds more with `SetNodePeer`).
    #[serde(default)]
    pub node_peers: Vec<String>,
}

/// What is wrong with a genesis file, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    #[error("genesis file is {0} bytes; the limit is {MAX_GENESIS_BYTES}")]
    TooLarge(usize),
    #[error("genesis is not valid JSON for schema version {GENESIS_VERSION}: {0}")]
    Parse(String),
    #[error("genesis field `{field}`: {reason}")]
    Field { field: String, reason: String },
}

fn field(field: impl Into<String>, reason: impl Into<String>) -> GenesisError {
    GenesisError::Field {
        field: field.into(),
        reason: reason.into(),
    }
}

impl Genesis {
    /// Parses and validates a genesis file.
    pub fn from_json(bytes: &[u8]) -> Result<Genesis, GenesisError> {
        if bytes.len() > MAX_GENESIS_BYTES {
            return Err(GenesisError::TooLarge(bytes.len()));
        }
        let g: Genesis =
            serde_json::from_slice(bytes).map_err(|e| GenesisError::Parse(e.to_string()))?;
        g.validate()?;
        Ok(g)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks everything the runtime relies on, naming the first bad field.
    pub fn validate(&self) -> Result<(), GenesisError> {
        if self.version != GENESIS_VERSION {
            return Err(field(
                "version",
                format!(
                    "this node reads version {GENESIS_VERSION}, the file is version {}",
                    self.version
                ),
            ));
        }
        if self.token.name.is_empty() || self.token.symbol.is_empty() {
            return Err(field("token", "name and symbol must not be empty"));
        }
        self.params
            .validate()
            .map_err(|e| field(format!("params.{}", e.field), e.reason))?;
        let admins: BTreeSet<_> = self.governance.admins.iter().collect();
        if self.governance.admins.is_empty() || admins.len() != self.governance.admins.len() {
            return Err(field(
                "governance.admins",
                "must be a non-empty list without duplicates",
            ));
        }
        if self.governance.threshold == 0 || self.governance.threshold as usize > admins.len() {
            return Err(field(
                "governance.threshold",
                format!(
                    "must be between 1 and {} (the number of admins)",
                    admins.len()
                ),
            ));
        }
        let mut peers = BTreeSet::new();
        for (i, p) in self.node_peers.iter().enumerate() {
            let bytes = hex::decode(p).map_err(|_| field(format!("node_peers[{i}]"), "not hex"))?;
            if bytes.is_empty() || bytes.len() > 64 {
                return Err(field(
                    format!("node_peers[{i}]"),
                    "a peer id is 1..=64 bytes",
                ));
            }
            if !peers.insert(bytes) {
                return Err(field(format!("node_peers[{i}]"), "listed twice"));
            }
        }
        if self.validators.is_empty() {
            return Err(field("validators", "at least one validator is required"));
        }
        let mut keys = BTreeSet::new();
        let mut bridge = BTreeSet::new();
        for (i, v) in self.validators.iter().enumerate() {
            if v.bridge_address != [0u8; 20] && !bridge.insert(v.bridge_address) {
                return Err(field(
                    format!("validators[{i}].bridge_address"),
                    "another validator has this bridge address (one key would count twice on Ethereum)",
                ));
            }
            if v.power == 0 {
                return Err(field(
                    format!("validators[{i}].power"),
                    "must be greater than zero",
                ));
            }
            if atonomi_primitives::PublicKey::from_account(&v.consensus_key).is_err() {
                return Err(field(
                    format!("validators[{i}].consensus_key"),
                    "not a valid ed25519 public key",
                ));
            }
            if !keys.insert(v.consensus_key) {
                return Err(field(
                    format!("validators[{i}].consensus_key"),
                    "listed twice",
                ));
            }
            if v.peer_id.is_empty() {
                return Err(field(
                    format!("validators[{i}].peer_id"),
                    "must not be empty",
                ));
            }
        }
        let mut sum = Amount::ZERO;
        let mut seen = BTreeSet::new();
        for (i, a) in self.allocations.iter().enumerate() {
            if !seen.insert(a.account) {
                return Err(field(
                    format!("allocations[{i}].account"),
                    "allocated twice",
                ));
            }
            sum = sum
                .checked_add(a.amount)
                .ok_or_else(|| field("allocations", "sum overflows"))?;
        }
        if sum != self.token.total_supply {
            return Err(field(
                "allocations",
                format!(
                    "sum to {sum} ATMI but token.total_supply is {} ATMI",
                    self.token.total_supply
                ),
            ));
        }
        let mut ids = BTreeSet::new();
        for (i, m) in self.manufacturers.iter().enumerate() {
            if !ids.insert(m.id) {
                return Err(field(format!("manufacturers[{i}].id"), "listed twice"));
            }
            if !valid_member(&m.name, &m.keys, &m.metadata) {
                return Err(field(format!("manufacturers[{i}]"), MEMBER_RULE));
            }
        }
        let mut ids = BTreeSet::new();
        for (i, a) in self.auditors.iter().enumerate() {
            if !ids.insert(a.id) {
                return Err(field(format!("auditors[{i}].id"), "listed twice"));
            }
            if !valid_member(&a.name, &a.keys, &a.metadata) {
                return Err(field(format!("auditors[{i}]"), MEMBER_RULE));
            }
        }
        Ok(())
    }

    /// The records the runtime writes at height 0.
    pub fn state(&self) -> GenesisState {
        let mut validators = self.validators.clone();
        validators.sort_by_key(|v| v.consensus_key);
        GenesisState {
            chain: ChainInfo {
                chain_id: self.chain_id.clone(),
                genesis_time: Timestamp::new(self.genesis_time_ms),
            },
            token: TokenInfo {
                name: self.token.name.clone(),
                symbol: self.token.symbol.clone(),
                decimals: self.token.decimals,
                total_supply: self.token.total_supply,
            },
            params: self.params.clone(),
            governance: Governance {
                admins: self.governance.admins.clone(),
                threshold: self.governance.threshold,
                next_proposal: ProposalId::new(1),
            },
            validators: ValidatorSet { validators },
            balances: self
                .allocations
                .iter()
                .map(|a| (a.account, a.amount))
                .collect(),
            manufacturers: self
                .manufacturers
                .iter()
                .map(|m| Manufacturer {
                    id: m.id,
                    name: m.name.clone(),
                    keys: m.keys.clone(),
                    status: MemberStatus::Active,
                    registration_fee: m.registration_fee,
                    default_score: m.default_score,
                    reward_wallet: m.reward_wallet,
                    pool: Amount::ZERO,
                    devices_registered: 0,
                    metadata: m.metadata.clone(),
                })
                .collect(),
            auditors: self
                .auditors
                .iter()
                .map(|a| Auditor {
                    id: a.id,
                    name: a.name.clone(),
                    keys: a.keys.clone(),
                    status: MemberStatus::Active,
                    reward_account: a.reward_account,
                    metadata: a.metadata.clone(),
                })
                .collect(),
            // Validated to be hex by `validate`.
            node_peers: self
                .node_peers
                .iter()
                .filter_map(|p| hex::decode(p).ok())
                .collect(),
        }
    }
}

/// The score a manufacturer's devices have until an auditor writes one, when neither
/// the dev genesis nor `atonomi genesis new --manufacturer` is told otherwise.
pub const DEFAULT_MANUFACTURER_SCORE: Score = match Score::new(5_000) {
    Some(s) => s,
    None => panic!("5,000 is a score"), // evaluated at compile time
};

/// The accounts of the dev chain, derived from fixed labels so every dev node and
/// every test agrees on them. Never use these keys on a real network.
pub mod dev {
    use super::*;

    pub const CHAIN_ID: &str = "atonomi-dev";
    pub const NAMES: [&str; 6] = [
        "admin",
        "validator",
        "manufacturer",
        "auditor",
        "alice",
        "bob",
    ];
    pub const MANUFACTURER: ManufacturerId = ManufacturerId::new(1);
    pub const AUDITOR: AuditorId = AuditorId::new(1);

    pub fn key(name: &str) -> Keypair {
        Keypair::from_label(&format!("atonomi dev key {name}"))
    }

    /// The dev genesis: one validator, admin threshold 1, 1,000,000,000 ATMI split
    /// between the demo accounts (the admin keeps the rest), a demo manufacturer and
    /// auditor.
    pub fn genesis() -> Genesis {
        let atmi = |n: u128| Amount::new(n * Amount::ONE_ATMI);
        let supply = atmi(1_000_000_000);
        let each = atmi(1_000_000);
        let others = ["manufacturer", "auditor", "alice", "bob"];
        let mut allocations: Vec<Allocation> = others
            .iter()
            .map(|n| Allocation {
                account: key(n).account(),
                amount: each,
            })
            .collect();
        let rest = Amount::new(supply.get() - each.get() * others.len() as u128);
        allocations.insert(
            0,
            Allocation {
                account: key("admin").account(),
                amount: rest,
            },
        );
        Genesis {
            version: GENESIS_VERSION,
            #[allow(clippy::expect_used)] // a literal, checked by `dev_genesis_is_valid_and_round_trips`
            chain_id: ChainId::new(CHAIN_ID).expect("CHAIN_ID is a valid chain id"),
            genesis_time_ms: 1_767_225_600_000, // 2026-01-01T00:00:00Z
            token: TokenConfig {
                name: "Atonomi Token".into(),
                symbol: "ATMI".into(),
                decimals: 18,
                total_supply: supply,
            },
            params: Params::default(),
            governance: GovernanceConfig { admins: vec![key("admin").account()], threshold: 1 },
            validators: vec![Validator {
                consensus_key: key("validator").account(),
                peer_id: key("validator").account().0.to_vec(),
                bridge_address: [0u8; 20],
                power: 1,
                operator: MANUFACTURER,
            }],
            allocations,
            manufacturers: vec![NewManufacturer {
                id: MANUFACTURER,
                name: "Demo Devices Inc.".into(),
                keys: vec![key("manufacturer").account()],
                registration_fee: None,
                default_score: DEFAULT_MANUFACTURER_SCORE,
                reward_wallet: key("manufacturer").account(),
                metadata: vec![],
            }],
            auditors: vec![NewAuditor {
                id: AUDITOR,
                name: "Demo Auditor".into(),
                keys: vec![key("auditor").account()],
                reward_account: key("auditor").account(),
                metadata: vec![],
            }],
            node_peers: vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_genesis_is_valid_and_round_trips() {
        let g = dev::genesis();
        g.validate().unwrap();
        let back = Genesis::from_json(g.to_json().as_bytes()).unwrap();
        assert_eq!(back, g);
    }

    #[test]
    fn errors_name_the_field() {
        let mut g = dev::genesis();
        g.governance.threshold = 5;
        assert!(
            matches!(g.validate(), Err(GenesisError::Field { field, .. }) if field == "governance.threshold")
        );
        let mut g = dev::genesis();
        g.allocations[0].amount = Amount::new(1);
        assert!(
            matches!(g.validate(), Err(GenesisError::Field { field, .. }) if field == "allocations")
        );
        let mut g = dev::genesis();
        g.validators[0].power = 0;
        assert!(
            matches!(g.validate(), Err(GenesisError::Field { field, .. }) if field == "validators[0].power")
        );
        let mut g = dev::genesis();
        g.manufacturers[0].name = "x".repeat(65);
        assert!(
            matches!(g.validate(), Err(GenesisError::Field { field, .. }) if field == "manufacturers[0]")
        );
        let mut g = dev::genesis();
        let k = g.auditors[0].keys[0];
        g.auditors[0].keys.push(k);
        assert!(
            matches!(g.validate(), Err(GenesisError::Field { field, .. }) if field == "auditors[0]")
        );
        let mut g = dev::genesis();
        let mut twin = g.validators[0].clone();
        g.validators[0].bridge_address = [7; 20];
        twin.consensus_key = dev::key("alice").account();
        twin.bridge_address = [7; 20];
        g.validators.push(twin);
        assert!(
            matches!(g.validate(), Err(GenesisError::Field { field, .. }) if field == "validators[1].bridge_address")
        );
        let mut g = dev::genesis();
        g.version = 2;
        assert!(
            matches!(g.validate(), Err(GenesisError::Field { field, .. }) if field == "version")
        );
    }

    #[test]
    fn rejects_unknown_fields_and_garbage() {
        let mut v: serde_json::Value = serde_json::from_str(&dev::genesis().to_json()).unwrap();
        v["surprise"] = serde_json::json!(1);
        assert!(matches!(
            Genesis::from_json(v.to_string().as_bytes()),
            Err(GenesisError::Parse(_))
        ));
        assert!(matches!(
            Genesis::from_json(b"\xff\xfe"),
            Err(GenesisError::Parse(_))
        ));
        assert!(matches!(
            Genesis::from_json(&vec![b' '; MAX_GENESIS_BYTES + 1]),
            Err(GenesisError::TooLarge(_))
        ));
    }
}
