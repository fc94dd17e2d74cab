//! Events emitted by executed calls, and per-transaction receipts.

use crate::codec::bounded;
use crate::error::{CallError, InvalidTx};
use crate::gov::GovAction;
use crate::hash::Hash;
use crate::ids::{
    AccountId, Amount, AuditorId, DeviceId, Height, ManufacturerId, ProposalId, Score, Timestamp,
};
use crate::state::{limits, DeviceStatus, Direction, MemberStatus, Subject};
use crate::tx::Outcome;
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// One reputation write as a node's history index keeps it
/// (`atonomi_getReputationHistory`): a `reputation_written` event with the block and
/// transaction it came from.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ReputationRecord {
    pub height: Height,
    pub timestamp: Timestamp,
    /// The transaction's position in its block.
    pub tx_index: u32,
    pub auditor: AuditorId,
    #[borsh(deserialize_with = "bounded::string::<_, { limits::TYPE_NAME }>")]
    pub rep_type: String,
    pub score: Score,
    pub direction: Direction,
    /// The subject's aggregate for this type after the write.
    pub aggregate: Score,
}

/// What an executed call did. Auditors and RPC subscriptions consume these.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum Event {
    Transferred {
        from: AccountId,
        to: AccountId,
        amount: Amount,
    },
    Approved {
        owner: AccountId,
        spender: AccountId,
        amount: Amount,
    },
    Burned {
        from: AccountId,
        amount: Amount,
    },
    FeeCharged {
        payer: AccountId,
        amount: Amount,
    },
    PoolDeposited {
        manufacturer: ManufacturerId,
        from: AccountId,
        amount: Amount,
    },
    ProposalCreated {
        id: ProposalId,
        proposer: AccountId,
        action: GovAction,
    },
    ProposalApproved {
        id: ProposalId,
        admin: AccountId,
        approvals: u32,
    },
    ProposalExecuted {
        id: ProposalId,
    },
    ProposalFailed {
        id: ProposalId,
        error: CallError,
    },
    ManufacturerAdded {
        id: ManufacturerId,
    },
    ManufacturerStatusChanged {
        id: ManufacturerId,
        status: MemberStatus,
    },
    /// A removed manufacturer's pool was paid out to its reward wallet.
    PoolSettled {
        manufacturer: ManufacturerId,
        to: AccountId,
        amount: Amount,
    },
    AuditorAdded {
        id: AuditorId,
    },
    AuditorStatusChanged {
        id: AuditorId,
        status: MemberStatus,
    },
    ValidatorSetChanged {
        effective_height: Height,
        validator_set_hash: Hash,
    },
    ParamsChanged,
    AdminsChanged {
        threshold: u32,
    },
    NodePeerChanged {
        peer_id: Vec<u8>,
        allowed: bool,
    },
    TreasuryPaid {
        from: AccountId,
        to: AccountId,
        amount: Amount,
    },
    DeviceRegistered {
        device: DeviceId,
        manufacturer: ManufacturerId,
    },
    DeviceActivated {
        device: DeviceId,
        owner: AccountId,
    },
    DeviceStatusChanged {
        device: DeviceId,
        status: DeviceStatus,
    },
    DeviceTransferred {
        device: DeviceId,
        from: AccountId,
        to: AccountId,
        with_wallet: bool,
    },
    AttributesSet {
        device: DeviceId,
    },
    WalletSet {
        device: DeviceId,
        wallet: Option<AccountId>,
    },
    ServiceRegistered {
        device: DeviceId,
        service_type: String,
    },
    ServiceWithdrawn {
        device: DeviceId,
        service_type: String,
    },
    ReputationWritten {
        subject: Subject,
        auditor: AuditorId,
        rep_type: String,
        score: Score,
        direction: Direction,
        aggregate: Score,
        reward: Amount,
    },
    RewardPaid {
        to: AccountId,
        amount: Amount,
        manufacturer: ManufacturerId,
    },
    Paid {
        from_device: DeviceId,
        to_device: DeviceId,
        payer: AccountId,
        amount: Amount,
        fee: Amount,
    },
    LogAnchored {
        device: DeviceId,
        hash: Hash,
        kind: String,
        parties: Vec<DeviceId>,
    },
    InteractionReported {
        device: DeviceId,
        peer: DeviceId,
        outcome: Outcome,
        receipt: Hash,
    },
    CheckpointSigned {
        epoch: u64,
        validator: AccountId,
        height: Height,
    },
    UpgradeScheduled {
        name: String,
        height: Height,
    },
    UpgradeCancelled {
        name: String,
    },
    ConsensusKeyRotated {
        validator: AccountId,
        new_key: AccountId,
        effective_height: Height,
    },
}

/// How a transaction in a block ended.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "error")]
pub enum TxStatus {
    /// Executed; its events are in the receipt.
    Success,
    /// Executed and failed: the nonce and fee were consumed, nothing else changed.
    Failed(CallError),
    /// Not executable (bad signature, chain id or nonce, undecodable, oversized): it
    /// changed nothing, not even the nonce. Honest proposers never include these.
    Invalid(InvalidTx),
}

/// For people: `success`, or why not, with the code name of a failed call.
impl std::fmt::Display for TxStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TxStatus::Success => f.write_str("success"),
            TxStatus::Failed(e) => write!(f, "failed: {e} ({}, code {})", e.name(), e.code()),
            TxStatus::Invalid(r) => write!(f, "not executable: {r}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Receipt {
    pub tx_hash: Hash,
    pub height: Height,
    pub index: u32,
    pub status: TxStatus,
    pub events: Vec<Event>,
}
