//! State records and the keys they live under. Every record is borsh-encoded under a
//! [`StateKey`]; the authenticated tree hashes the key bytes, so a light client that
//! knows a key can check a proof for it.
//!
//! Key layout: one tag byte, then fixed-width fields, integers big-endian, so keys of
//! one kind sort numerically and share a prefix for scans (service discovery).

use crate::codec::bounded;
use crate::hash::Hash;
use crate::ids::{
    AccountId, Amount, AuditorId, DeviceId, Height, ManufacturerId, ProposalId, Score, Timestamp,
};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// Size bounds shared by transactions and state records.
pub mod limits {
    pub const NAME: usize = 64;
    pub const METADATA: usize = 1024;
    pub const KEYS: usize = 16;
    pub const PROTOCOLS: usize = 8;
    pub const PROTOCOL: usize = 32;
    pub const TYPE_NAME: usize = 32;
    pub const UNIT: usize = 16;
    pub const MEMO: usize = 256;
    pub const PARTIES: usize = 16;
    pub const ALLOWLIST: usize = 64;
    pub const PEER_ID: usize = 64;
    pub const ADMINS: usize = 64;
    pub const VALIDATORS: usize = 256;
    /// Changes in one `UpdateParams` (one per network parameter).
    pub const PARAM_CHANGES: usize = 16;
    /// Hard ceiling on batch sizes (the `max_batch` parameter is the working limit).
    pub const BATCH: usize = 10_000;
}

/// An account: its nonce (number of transactions it signed that were included) and
/// its ATMI balance.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct Account {
    pub nonce: u64,
    pub balance: Amount,
}

/// Token metadata and supply (ERC-20 view).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct TokenInfo {
    pub name: String,
    pub symbol: String,
    pub decimals: u8,
    /// Fixed at genesis; only burns lower it.
    pub total_supply: Amount,
}

/// Lifecycle of a manufacturer or auditor: Suspended is reversible, Removed is final.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum MemberStatus {
    Active,
    Suspended,
    Removed,
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Manufacturer {
    pub id: ManufacturerId,
    #[borsh(deserialize_with = "bounded::string::<_, { limits::NAME }>")]
    pub name: String,
    /// Keys allowed to act for the manufacturer.
    #[borsh(deserialize_with = "bounded::vec::<_, AccountId, { limits::KEYS }>")]
    pub keys: Vec<AccountId>,
    pub status: MemberStatus,
    /// Per-device registration fee; `None` uses the network parameter.
    pub registration_fee: Option<Amount>,
    /// The score a device of this manufacturer has until an auditor writes one.
    pub default_score: Score,
    /// Receives the manufacturer's share of reputation rewards and the pool on removal.
    pub reward_wallet: AccountId,
    /// Registration and activation fees flow in; reputation rewards are paid out.
    pub pool: Amount,
    pub devices_registered: u64,
    #[borsh(deserialize_with = "bounded::bytes::<_, { limits::METADATA }>")]
    pub metadata: Vec<u8>,
}

/// The rule for a manufacturer's or auditor's identity, shared by governance and
/// genesis so that every stored record decodes within its bounds: a name of
/// 1..=`NAME` bytes, 1..=`KEYS` distinct keys, metadata of at most `METADATA` bytes.
pub fn valid_member(name: &str, keys: &[AccountId], metadata: &[u8]) -> bool {
    let unique: std::collections::BTreeSet<_> = keys.iter().collect();
    !name.is_empty()
        && name.len() <= limits::NAME
        && !keys.is_empty()
        && keys.len() <= limits::KEYS
        && unique.len() == keys.len()
        && metadata.len() <= limits::METADATA
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Auditor {
    pub id: AuditorId,
    #[borsh(deserialize_with = "bounded::string::<_, { limits::NAME }>")]
    pub name: String,
    #[borsh(deserialize_with = "bounded::vec::<_, AccountId, { limits::KEYS }>")]
    pub keys: Vec<AccountId>,
    pub status: MemberStatus,
    /// Receives the auditor's reputation rewards.
    pub reward_account: AccountId,
    #[borsh(deserialize_with = "bounded::bytes::<_, { limits::METADATA }>")]
    pub metadata: Vec<u8>,
}

/// A consensus participant.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Validator {
    /// ed25519 consensus key.
    pub consensus_key: AccountId,
    /// libp2p peer id bytes (multihash of the node's network key).
    #[borsh(deserialize_with = "bounded::bytes::<_, { limits::PEER_ID }>")]
    #[serde(with = "hex_bytes")]
    pub peer_id: Vec<u8>,
    /// Ethereum address of the validator's secp256k1 bridge key.
    #[serde(with = "hex_bytes20")]
    pub bridge_address: [u8; 20],
    pub power: u64,
    /// The manufacturer (consensus partner) operating this validator.
    pub operator: ManufacturerId,
}

/// The validator set, sorted by consensus key.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct ValidatorSet {
    #[borsh(deserialize_with = "bounded::vec::<_, Validator, { limits::VALIDATORS }>")]
    pub validators: Vec<Validator>,
}

impl ValidatorSet {
    pub fn total_power(&self) -> u128 {
        self.validators.iter().map(|v| u128::from(v.power)).sum()
    }

    pub fn hash(&self) -> Hash {
        Hash::with_domain(
            crate::hash::domain::VALIDATOR_SET,
            &crate::codec::encode(self),
        )
    }

    pub fn get(&self, key: &AccountId) -> Option<&Validator> {
        self.validators.iter().find(|v| &v.consensus_key == key)
    }
}

/// A validator-set change decided at some height, in force from `effective_height`.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct PendingValidatorSet {
    pub effective_height: Height,
    pub set: ValidatorSet,
}

/// A validator that a set change removed, kept so that it can still sign the bridge
/// checkpoints of the heights its set voted on: the set that signs a checkpoint is the
/// one that voted on its height, so the checkpoint where the set rotates — which the
/// contract must accept before any later one — is the old set's to sign, after the old
/// set has left. Without this, removing a third of the power stalled the bridge for good.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct RetiredValidator {
    pub validator: Validator,
    /// The last height whose voting set held it (the height before which the change
    /// took effect).
    pub last_height: Height,
}

/// How many heights after `last_height` a retired validator may still record checkpoint
/// signatures (and its node stays an allowed peer, to follow the chain meanwhile).
pub const RETIRED_SIGNING_WINDOW: u64 = 1_000;

/// A key rotation's proof names a height at most this far below the including block.
pub const ROTATION_PROOF_WINDOW: u64 = 1_000;

/// Validator-set changes decided in block `h` take effect at `h + VALIDATOR_SET_DELAY`,
/// so that the set voting on any block is fixed before that block is proposed.
pub const VALIDATOR_SET_DELAY: u64 = 2;

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum DeviceStatus {
    Registered,
    Active,
    Suspended,
    Revoked,
}

/// A point in micro-degrees.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct GeoPoint {
    pub lat_e6: i32,
    pub lon_e6: i32,
}

/// A latitude/longitude box in micro-degrees (inclusive bounds).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct GeoArea {
    pub min: GeoPoint,
    pub max: GeoPoint,
}

impl GeoArea {
    pub fn contains(&self, p: &GeoPoint) -> bool {
        p.lat_e6 >= self.min.lat_e6
            && p.lat_e6 <= self.max.lat_e6
            && p.lon_e6 >= self.min.lon_e6
            && p.lon_e6 <= self.max.lon_e6
    }
}

#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum DataPolicy {
    /// Exchange data only with registered (non-revoked) devices.
    #[default]
    RegisteredOnly,
    Any,
    /// Only with devices whose declared location is inside `geo_area`.
    InsideArea,
}

/// A spending limit per time window.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct WindowLimit {
    pub amount: Amount,
    pub window_ms: u64,
}

/// Owner-set policy checked on every payment and data exchange.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(deny_unknown_fields, default)]
pub struct Attributes {
    pub per_tx_limit: Option<Amount>,
    pub window_limit: Option<WindowLimit>,
    /// Payees (and data peers under `InsideArea`) must have declared a location here.
    pub geo_area: Option<GeoArea>,
    /// Where this device declares it is.
    pub location: Option<GeoPoint>,
    /// Counterparties need at least this reputation (on top of the network minimum).
    pub counterparty_min_reputation: Option<Score>,
    pub data_policy: DataPolicy,
    #[borsh(deserialize_with = "bounded::opt_vec::<_, DeviceId, { limits::ALLOWLIST }>")]
    pub payee_allowlist: Option<Vec<DeviceId>>,
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Device {
    pub id: DeviceId,
    pub manufacturer: ManufacturerId,
    /// ed25519 key held by the device: signs its activation, payments and logs.
    pub public_key: AccountId,
    #[borsh(deserialize_with = "bounded::vec::<_, String, { limits::PROTOCOLS }>")]
    pub protocols: Vec<String>,
    #[borsh(deserialize_with = "bounded::bytes::<_, { limits::METADATA }>")]
    pub metadata: Vec<u8>,
    pub status: DeviceStatus,
    pub owner: Option<AccountId>,
    /// Account that pays for this device's `Pay` calls; `None` means the device's own
    /// account (its public key).
    pub wallet: Option<AccountId>,
    pub attributes: Attributes,
    pub registered_at: Height,
    pub activated_at: Option<Height>,
    /// Spending in the current window (for `Attributes::window_limit`).
    pub window_start: Timestamp,
    pub window_spent: Amount,
}

/// Whose reputation an entry describes.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    Device(DeviceId),
    Manufacturer(ManufacturerId),
    Account(AccountId),
}

impl Subject {
    /// The subject as key bytes: a tag, then its id (fixed length for each tag, so no
    /// encoding is a prefix of another).
    pub fn key_bytes(&self, out: &mut Vec<u8>) {
        match self {
            Subject::Device(d) => {
                out.push(0);
                out.extend_from_slice(&d.0);
            }
            Subject::Manufacturer(m) => {
                out.push(1);
                out.extend_from_slice(&m.0.to_be_bytes());
            }
            Subject::Account(a) => {
                out.push(2);
                out.extend_from_slice(&a.0);
            }
        }
    }
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Up,
    Down,
    Steady,
}

/// One auditor's current score for (subject, type).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ReputationEntry {
    pub subject: Subject,
    pub auditor: AuditorId,
    #[borsh(deserialize_with = "bounded::string::<_, { limits::TYPE_NAME }>")]
    pub rep_type: String,
    pub score: Score,
    pub direction: Direction,
    pub height: Height,
    pub timestamp: Timestamp,
    /// How many times this auditor wrote this (subject, type): the history length.
    pub writes: u64,
}

/// All auditors' scores for (subject, type) and their aggregate.
///
/// Aggregate rule: the median of the auditors' current scores; with an even count, the
/// lower of the two middle scores (integer, deterministic, and one outlying auditor
/// cannot move it far).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ReputationAggregate {
    pub subject: Subject,
    #[borsh(deserialize_with = "bounded::string::<_, { limits::TYPE_NAME }>")]
    pub rep_type: String,
    /// Sorted by auditor id.
    pub scores: Vec<(AuditorId, Score)>,
    pub median: Score,
}

impl ReputationAggregate {
    /// Median with the lower-middle rule; `None` for no scores.
    pub fn median_of(scores: &[(AuditorId, Score)]) -> Option<Score> {
        let mut v: Vec<Score> = scores.iter().map(|(_, s)| *s).collect();
        v.sort_unstable();
        if v.is_empty() {
            return None;
        }
        v.get((v.len() - 1) / 2).copied()
    }
}

/// A service a device offers, discoverable by type.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ServiceOffer {
    pub device: DeviceId,
    #[borsh(deserialize_with = "bounded::string::<_, { limits::TYPE_NAME }>")]
    pub service_type: String,
    pub price: Amount,
    #[borsh(deserialize_with = "bounded::string::<_, { limits::UNIT }>")]
    pub unit: String,
    pub area: Option<GeoArea>,
    #[borsh(deserialize_with = "bounded::bytes::<_, { limits::METADATA }>")]
    pub metadata: Vec<u8>,
    /// The offer is not discoverable from this height on.
    pub expiry: Height,
}

/// Chain-wide facts fixed at genesis.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ChainInfo {
    pub chain_id: crate::ids::ChainId,
    pub genesis_time: Timestamp,
}

/// Where a record lives. See the module docs for the byte layout.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateKey {
    ChainInfo,
    Token,
    Params,
    Governance,
    ValidatorSet,
    PendingValidatorSet,
    Account(AccountId),
    Allowance {
        owner: AccountId,
        spender: AccountId,
    },
    Manufacturer(ManufacturerId),
    Auditor(AuditorId),
    Device(DeviceId),
    Reputation {
        subject: Subject,
        rep_type: String,
        auditor: AuditorId,
    },
    ReputationAggregate {
        subject: Subject,
        rep_type: String,
    },
    /// Timestamp of the last rewarded write by `auditor` about `subject` (reward decay).
    ReputationLastWrite {
        auditor: AuditorId,
        subject: Subject,
    },
    Service {
        service_type: String,
        device: DeviceId,
    },
    Proposal(ProposalId),
    /// A registered full-node peer allowed to connect to validators.
    NodePeer(Vec<u8>),
    /// A validator's signature of the Ethereum checkpoint of `epoch` (bridge).
    CheckpointSignature {
        epoch: u64,
        validator: AccountId,
    },
    /// A validator removed from the set (see [`RetiredValidator`]).
    RetiredValidator(AccountId),
    /// The upgrade plan waiting for its height (at most one).
    ScheduledUpgrade,
    /// Every upgrade plan ever scheduled, by name ([`crate::gov::UpgradeRecord`]).
    Upgrade(String),
    /// The protocol version the upgrades applied so far made (absent: 1).
    ProtocolVersion,
}

/// Key tags, one byte each.
pub mod tag {
    pub const CHAIN_INFO: u8 = 0x00;
    pub const TOKEN: u8 = 0x01;
    pub const PARAMS: u8 = 0x02;
    pub const GOVERNANCE: u8 = 0x03;
    pub const VALIDATOR_SET: u8 = 0x04;
    pub const PENDING_VALIDATOR_SET: u8 = 0x05;
    pub const SCHEDULED_UPGRADE: u8 = 0x06;
    pub const PROTOCOL_VERSION: u8 = 0x07;
    pub const ACCOUNT: u8 = 0x10;
    pub const ALLOWANCE: u8 = 0x11;
    pub const MANUFACTURER: u8 = 0x20;
    pub const AUDITOR: u8 = 0x21;
    pub const DEVICE: u8 = 0x30;
    pub const REPUTATION: u8 = 0x40;
    pub const REPUTATION_AGGREGATE: u8 = 0x41;
    pub const REPUTATION_LAST_WRITE: u8 = 0x42;
    pub const SERVICE: u8 = 0x50;
    pub const PROPOSAL: u8 = 0x60;
    pub const UPGRADE: u8 = 0x61;
    pub const NODE_PEER: u8 = 0x70;
    pub const CHECKPOINT_SIGNATURE: u8 = 0x80;
    pub const RETIRED_VALIDATOR: u8 = 0x81;
}

/// Type names (reputation, service) enter keys as their blake3 hash: fixed width, so
/// scans by prefix work and no name can collide with the next field.
pub fn type_hash(name: &str) -> Hash {
    Hash::with_domain("atonomi 2026 type name v1", name.as_bytes())
}

impl StateKey {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(72);
        match self {
            StateKey::ChainInfo => out.push(tag::CHAIN_INFO),
            StateKey::Token => out.push(tag::TOKEN),
            StateKey::Params => out.push(tag::PARAMS),
            StateKey::Governance => out.push(tag::GOVERNANCE),
            StateKey::ValidatorSet => out.push(tag::VALIDATOR_SET),
            StateKey::PendingValidatorSet => out.push(tag::PENDING_VALIDATOR_SET),
            StateKey::Account(a) => {
                out.push(tag::ACCOUNT);
                out.extend_from_slice(&a.0);
            }
            StateKey::Allowance { owner, spender } => {
                out.push(tag::ALLOWANCE);
                out.extend_from_slice(&owner.0);
                out.extend_from_slice(&spender.0);
            }
            StateKey::Manufacturer(m) => {
                out.push(tag::MANUFACTURER);
                out.extend_from_slice(&m.0.to_be_bytes());
            }
            StateKey::Auditor(a) => {
                out.push(tag::AUDITOR);
                out.extend_from_slice(&a.0.to_be_bytes());
            }
            StateKey::Device(d) => {
                out.push(tag::DEVICE);
                out.extend_from_slice(&d.0);
            }
            StateKey::Reputation {
                subject,
                rep_type,
                auditor,
            } => {
                out.push(tag::REPUTATION);
                subject.key_bytes(&mut out);
                out.extend_from_slice(&type_hash(rep_type).0);
                out.extend_from_slice(&auditor.0.to_be_bytes());
            }
            StateKey::ReputationAggregate { subject, rep_type } => {
                out.push(tag::REPUTATION_AGGREGATE);
                subject.key_bytes(&mut out);
                out.extend_from_slice(&type_hash(rep_type).0);
            }
            StateKey::ReputationLastWrite { auditor, subject } => {
                out.push(tag::REPUTATION_LAST_WRITE);
                out.extend_from_slice(&auditor.0.to_be_bytes());
                subject.key_bytes(&mut out);
            }
            StateKey::Service {
                service_type,
                device,
            } => {
                out.push(tag::SERVICE);
                out.extend_from_slice(&type_hash(service_type).0);
                out.extend_from_slice(&device.0);
            }
            StateKey::Proposal(p) => {
                out.push(tag::PROPOSAL);
                out.extend_from_slice(&p.0.to_be_bytes());
            }
            StateKey::NodePeer(p) => {
                out.push(tag::NODE_PEER);
                out.extend_from_slice(p);
            }
            StateKey::CheckpointSignature { epoch, validator } => {
                out.extend_from_slice(&Self::checkpoint_prefix(*epoch));
                out.extend_from_slice(&validator.0);
            }
            StateKey::RetiredValidator(a) => {
                out.push(tag::RETIRED_VALIDATOR);
                out.extend_from_slice(&a.0);
            }
            StateKey::ScheduledUpgrade => out.push(tag::SCHEDULED_UPGRADE),
            StateKey::Upgrade(name) => {
                out.push(tag::UPGRADE);
                out.extend_from_slice(&type_hash(name).0);
            }
            StateKey::ProtocolVersion => out.push(tag::PROTOCOL_VERSION),
        }
        out
    }

    /// The key prefix of every validator's signature for one checkpoint epoch.
    pub fn checkpoint_prefix(epoch: u64) -> Vec<u8> {
        let mut out = vec![tag::CHECKPOINT_SIGNATURE];
        out.extend_from_slice(&epoch.to_be_bytes());
        out
    }

    /// The key prefix under which all offers of one service type sort together.
    pub fn service_prefix(service_type: &str) -> Vec<u8> {
        let mut out = vec![tag::SERVICE];
        out.extend_from_slice(&type_hash(service_type).0);
        out
    }
}

/// A validator's signature of an Ethereum checkpoint, recorded on chain so that any
/// relayer can rebuild the Ethereum transaction (nothing depends on one node's memory).
/// The runtime does not check the secp256k1 signature (relayers and the contract do);
/// a validator can only fill its own slot, once per epoch.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct CheckpointSignature {
    pub height: Height,
    pub block_hash: Hash,
    pub state_root: Hash,
    /// keccak256 of the next validator set's bridge addresses and powers.
    pub next_set_hash: Hash,
    pub signature: EthSignature,
}

/// A 65-byte secp256k1 signature `(r, s, v)`, hex in JSON.
#[derive(Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct EthSignature(pub [u8; 65]);

impl std::fmt::Debug for EthSignature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EthSignature({})", hex::encode(self.0))
    }
}

impl Serialize for EthSignature {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for EthSignature {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as Deserialize>::deserialize(d)?;
        let bytes =
            hex::decode(s.strip_prefix("0x").unwrap_or(&s)).map_err(serde::de::Error::custom)?;
        let arr: [u8; 65] = bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom("an Ethereum signature is 65 bytes"))?;
        Ok(EthSignature(arr))
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <String as Deserialize>::deserialize(d)?;
        hex::decode(s.strip_prefix("0x").unwrap_or(&s)).map_err(serde::de::Error::custom)
    }
}

mod hex_bytes20 {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[u8; 20], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(v)))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 20], D::Error> {
        let s = <String as Deserialize>::deserialize(d)?;
        let mut out = [0u8; 20];
        hex::decode_to_slice(s.strip_prefix("0x").unwrap_or(&s), &mut out)
            .map_err(|_| serde::de::Error::custom("expected a 20-byte hex Ethereum address"))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: u32) -> Score {
        Score::new(v).unwrap()
    }

    #[test]
    fn median_uses_lower_middle() {
        let a = |i| AuditorId::new(i);
        assert_eq!(ReputationAggregate::median_of(&[]), None);
        assert_eq!(ReputationAggregate::median_of(&[(a(1), s(5))]), Some(s(5)));
        assert_eq!(
            ReputationAggregate::median_of(&[(a(1), s(9)), (a(2), s(1))]),
            Some(s(1))
        );
        assert_eq!(
            ReputationAggregate::median_of(&[(a(1), s(9)), (a(2), s(1)), (a(3), s(100))]),
            Some(s(9))
        );
    }

    #[test]
    fn keys_are_distinct_and_prefix_scannable() {
        let d = DeviceId::new([7; 32]);
        let k = StateKey::Service {
            service_type: "energy".into(),
            device: d,
        }
        .to_bytes();
        assert!(k.starts_with(&StateKey::service_prefix("energy")));
        assert!(!k.starts_with(&StateKey::service_prefix("data")));
        let m1 = StateKey::Manufacturer(ManufacturerId::new(1)).to_bytes();
        let m256 = StateKey::Manufacturer(ManufacturerId::new(256)).to_bytes();
        assert!(m1 < m256, "big-endian keys sort numerically");
        assert_ne!(
            StateKey::Device(d).to_bytes(),
            StateKey::Account(AccountId::new(d.0)).to_bytes()
        );
    }
}
