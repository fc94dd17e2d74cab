//! What the methods answer: one type per result, serialized exactly as the node sends
//! it and deserialized by clients. Records of the state (accounts, devices, …) are the
//! primitives' own types; these add what a method puts around them.

use atonomi_consensus::{CommitCertificate, VoteType};
use atonomi_primitives::block::BlockHeader;
use atonomi_primitives::event::ReputationRecord;
use atonomi_primitives::gov::Proposal;
use atonomi_primitives::state::{
    Account, CheckpointSignature, Device, PendingValidatorSet, ServiceOffer, ValidatorSet,
};
use atonomi_primitives::{
    AccountId, Amount, Call, CallError, ChainId, DeviceId, Event, Hash, Height, Receipt, Score,
    Timestamp,
};
use serde::{Deserialize, Serialize};

/// `atonomi_status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub chain_id: ChainId,
    pub height: Height,
    pub latest_block_hash: Hash,
    pub latest_block_time: Timestamp,
    pub state_root: Hash,
    /// This node's consensus key, when it is a validator.
    pub validator: Option<AccountId>,
    /// The validator set of the next height.
    pub validators: Vec<ValidatorPower>,
    /// Where consensus is, when this node takes part.
    pub round: Option<RoundPosition>,
    /// Transactions in this node's pool.
    pub mempool: usize,
    pub peers: i64,
    pub banned_peers: i64,
    pub peer_penalties: u64,
    /// The lowest height whose block this node has (a node restored from a snapshot
    /// has blocks from the snapshot's height on; absent before the first block).
    pub lowest_block_height: Option<Height>,
    /// The lowest height whose state this node can still prove (`[storage]
    /// state_retention` moves it up).
    pub lowest_state_height: Option<Height>,
}

/// A validator's key and voting power (a decimal string).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorPower {
    pub key: AccountId,
    pub power: String,
}

/// A consensus position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundPosition {
    pub height: Height,
    pub round: u32,
}

/// `atonomi_sendTransaction`: the transaction's hash (it is in the pool).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submitted {
    pub hash: Hash,
}

/// One answer of `atonomi_sendTransactionBatch`, in the order of the batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BatchAnswer {
    Admitted { hash: Hash },
    Refused { error: ErrorBody },
}

/// A JSON-RPC error object, as an element of a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: i32,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

/// `atonomi_getTransaction`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TxLookup {
    /// In a committed block.
    Final { receipt: Receipt },
    /// In this node's pool.
    Pending,
    /// Admitted, then dropped: why, so that a client need not wait for a timeout.
    Dropped {
        #[serde(flatten)]
        dropped: Dropped,
        message: String,
    },
}

/// Why an admitted transaction left the pool without being committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum DropReason {
    /// Another transaction with the same sender and nonce took its place.
    Replaced { by: Hash },
    /// A committed block used its nonce for another transaction (typically: the client
    /// read a nonce from a node that had not applied the previous block yet).
    NonceUsed { nonce: u64, next_nonce: u64 },
    /// The pool was full and the sender held more transactions than others.
    Evicted,
    /// An earlier nonce of the sender never reached the pool (a full pool refused it,
    /// or the pool filled while this one waited for it), so this one could not run.
    Gapped { missing: u64 },
}

impl DropReason {
    /// One line for people.
    pub fn explain(&self) -> String {
        match self {
            DropReason::Replaced { by } => format!("replaced by transaction {by} with the same sender and nonce"),
            DropReason::NonceUsed { nonce, next_nonce } => format!(
                "nonce {nonce} was used by another transaction (the account's next nonce is {next_nonce}); sign again with a fresh nonce"
            ),
            DropReason::Evicted => "evicted from a full mempool; submit it again later".into(),
            DropReason::Gapped { missing } => format!(
                "nonce {missing} before it never reached the full mempool, so it could not run; resubmit from nonce {missing}"
            ),
        }
    }
}

/// A transaction that was admitted and then dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dropped {
    pub hash: Hash,
    pub signer: AccountId,
    pub nonce: u64,
    #[serde(flatten)]
    pub reason: DropReason,
}

/// `atonomi_getBlock`: the header, the transactions by hash and the commit certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockView {
    pub hash: Hash,
    pub header: BlockHeader,
    pub txs: Vec<Hash>,
    pub commit: Option<CommitCertificate>,
}

/// `atonomi_getAccount`: the account record, its id and the nonce to sign with next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    #[serde(flatten)]
    pub record: Account,
    pub account: AccountId,
    pub next_nonce: u64,
}

/// `atonomi_getAllowance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allowance {
    pub owner: AccountId,
    pub spender: AccountId,
    pub amount: Amount,
}

/// `atonomi_getUpgrade`: an upgrade plan with its status, the protocol version in
/// state and the upgrades this node's binary implements, read at one height.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpgradeView {
    /// The plan asked for by name, or else the scheduled one (`null`: none is).
    pub upgrade: Option<atonomi_primitives::gov::UpgradeRecord>,
    /// Whether this node's binary implements that upgrade: `false` means this node
    /// stops at its height (`null` when there is no plan).
    pub known: Option<bool>,
    /// The protocol version the upgrades applied so far recorded (1: none yet).
    pub protocol_version: u32,
    /// The upgrades this node's binary implements, oldest first.
    pub implemented: Vec<String>,
    /// The height the answer was read at.
    pub height: Height,
}

/// `atonomi_listProposals`: a page, the id to ask for next, and the approvals needed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalPage {
    pub proposals: Vec<Proposal>,
    pub next: Option<u64>,
    pub threshold: u32,
}

/// `atonomi_listManufacturers`, `atonomi_listAuditors`: a page of records and the id
/// to ask for next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<u64>,
}

/// `atonomi_listDevices`: a page of a manufacturer's devices (full records) and the
/// device id to ask for next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevicePage {
    pub devices: Vec<Device>,
    pub next: Option<DeviceId>,
}

/// `atonomi_getReputationHistory`: a subject's reputation writes, oldest first, where
/// to ask for next, and the first height this node's history holds (0 unless its home
/// was imported from a snapshot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReputationHistory {
    pub records: Vec<ReputationRecord>,
    pub next: Option<super::params::HistoryPosition>,
    pub since: Height,
}

/// `atonomi_getValidators`: the set in force and the one waiting for its height.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validators {
    pub current: Option<ValidatorSet>,
    pub pending: Option<PendingValidatorSet>,
}

/// `atonomi_validateDevice`: the answer and the height it was read at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationAt {
    #[serde(flatten)]
    pub validation: atonomi_primitives::query::Validation,
    pub height: Height,
}

/// `atonomi_discover`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovered {
    pub height: Height,
    pub offers: Vec<OfferView>,
}

/// A live service offer and its device's reputation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferView {
    pub offer: ServiceOffer,
    pub reputation: Option<Score>,
}

/// `atonomi_getProof`: a value (or its absence) at a height, the proof against that
/// height's state root, and the header and commit that make the root checkable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofView {
    pub height: u64,
    /// The state key's bytes, hex.
    pub key: String,
    /// The value's bytes (borsh), hex; `None` when the key is absent.
    pub value: Option<String>,
    /// The proof's bytes, hex.
    pub proof: String,
    pub state_root: Hash,
    /// The header's borsh bytes, hex (what the commit's signatures cover).
    pub header_bytes: Option<String>,
    pub header_hash: Option<Hash>,
    pub header: Option<BlockHeader>,
    pub commit: Option<CommitCertificate>,
}

/// `atonomi_getEvidence`: the double signs recorded at one height.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceView {
    pub height: Height,
    pub double_votes: Vec<DoubleVote>,
    pub double_proposals: Vec<DoubleProposal>,
}

/// Two votes of one validator for different blocks in one (height, round, type).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoubleVote {
    pub validator: AccountId,
    pub height: Height,
    pub round: u32,
    pub vote_type: VoteType,
    pub first: Option<Hash>,
    pub second: Option<Hash>,
}

/// Two proposals of one proposer in one (height, round).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoubleProposal {
    pub proposer: AccountId,
    pub height: Height,
    pub round: u32,
    pub first: Hash,
    pub second: Hash,
}

/// `atonomi_getLookupCounts`: validate-device calls per device since the node started
/// (`run` tells one run from the next).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupCounts {
    pub run: String,
    pub counts: Vec<LookupCount>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupCount {
    pub device: DeviceId,
    pub as_requester: u64,
    pub as_target: u64,
}

/// `atonomi_getEvents`: the events of one committed block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockEvents {
    pub height: u64,
    pub events: Vec<TxEvent>,
}

/// An event of a transaction, or — for a call that failed and so has no events — what
/// failed and who sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TxEvent {
    Event { tx_hash: Hash, event: Event },
    Failed { tx_hash: Hash, failed: FailedCall },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedCall {
    pub call: Call,
    pub signer: AccountId,
    pub error: CallError,
}

/// `atonomi_getBridgeStatus`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeStatus {
    /// The last epoch checkpointed on this chain.
    pub chain_epoch: u64,
    pub contract: Option<String>,
    pub eth_chain_id: Option<u64>,
    /// This node's bridge signer (Ethereum address), when it signs checkpoints.
    pub signer: Option<String>,
    /// The relayer's latest view, when this node relays.
    pub relayer: Option<RelayerView>,
    /// The latest submissions, newest first.
    pub submissions: Vec<SubmissionView>,
}

/// What the relayer saw in its latest round, or why the round failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RelayerView {
    Running {
        contract: String,
        eth_epoch: u64,
        eth_finalized_epoch: u64,
        chain_epoch: u64,
        relayer: String,
    },
    Failed {
        error: String,
    },
}

/// Where a relayed submission is: sent → confirmed (mined with enough confirmations)
/// → final (its epoch is finalized on the contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelayStatus {
    Submitted,
    Confirmed,
    Final,
}

impl RelayStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RelayStatus::Submitted => "submitted",
            RelayStatus::Confirmed => "confirmed",
            RelayStatus::Final => "final",
        }
    }
}

/// A checkpoint transaction sent to Ethereum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmissionView {
    pub epoch: u64,
    pub nonce: u64,
    /// The Ethereum transaction hash, 0x-hex.
    pub tx_hash: String,
    /// Wei, a decimal string.
    pub max_fee_per_gas: String,
    pub status: RelayStatus,
    /// Earlier transactions of this submission replaced at higher fees.
    pub replaced: Vec<String>,
}

/// `atonomi_getCheckpoint`: an epoch's checkpoint height and the validators' signatures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub epoch: u64,
    pub height: Height,
    pub signatures: Vec<CheckpointSigned>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointSigned {
    /// The validator's consensus key, hex.
    pub validator: String,
    pub record: CheckpointSignature,
}

/// A committed block, as `atonomi_subscribeBlocks` sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockNotice {
    pub height: Height,
    pub hash: Hash,
    /// Transactions in the block.
    pub txs: usize,
}

/// An event as `atonomi_subscribeEvents` sends it: one of a committed block, or a
/// transaction this node dropped (node-local: in no block).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EventNotice {
    Committed {
        height: Height,
        tx_hash: Hash,
        event: Event,
    },
    Dropped {
        tx_hash: Hash,
        event: DroppedNotice,
    },
}

/// A dropped transaction as an event: `"event": "transaction_dropped"`, the record and
/// the reason in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DroppedNotice {
    #[serde(flatten)]
    pub dropped: Dropped,
    pub event: DroppedTag,
    pub message: String,
}

/// The name a dropped transaction's event carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DroppedTag {
    TransactionDropped,
}

/// `admin_setBlockedPeers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blocked {
    pub blocked: usize,
}
