//! The JSON-RPC interface, declared once: each namespace below is a jsonrpsee trait
//! (`AtonomiApiServer` for the node to implement, `AtonomiApiClient` for clients; each
//! subscription a trait of its own, `AtonomiBlocks`, `AtonomiEvents`), a row of
//! [`METHODS`] per method, and the parameter check [`check_params`]. A test in this
//! crate holds `docs/openrpc.json` to the same declaration.
//!
//! Parameters are positional (or by name, as an object); those after `;` are optional.

use super::declare::declare_rpc;
// Results appear only in the traits (left out without the `jsonrpsee` feature).
use super::params::{
    BlockId, DiscoverParams, EventFilter, ListDevices, ListPage, ListProposals,
    ReputationHistoryQuery, ValidateParams,
};
#[cfg_attr(not(feature = "jsonrpsee"), allow(unused_imports))]
use super::views::*;
#[cfg_attr(not(feature = "jsonrpsee"), allow(unused_imports))]
use atonomi_primitives::gov::{Governance, Proposal};
#[cfg_attr(not(feature = "jsonrpsee"), allow(unused_imports))]
use atonomi_primitives::state::{
    Auditor, Device, Manufacturer, ReputationAggregate, StateKey, Subject, TokenInfo,
};
#[cfg_attr(not(feature = "jsonrpsee"), allow(unused_imports))]
use atonomi_primitives::{AccountId, DeviceId, Hash, Params};

declare_rpc! {
    /// The ledger: transactions, records, proofs and events.
    trait AtonomiApi in "atonomi" "_" {
        /// Chain id, head, state root, validators, consensus position, pool and peers.
        fn status = "status"() -> Status;
        /// Admits one signed transaction (hex of its borsh bytes) and gossips it.
        fn send_transaction = "sendTransaction"(tx: String) -> Submitted;
        /// Admits up to 10,000 transactions; one answer per transaction, in order.
        fn send_transaction_batch = "sendTransactionBatch"(txs: Vec<String>) -> Vec<BatchAnswer>;
        /// Final (with its receipt), pending, or dropped (with the reason).
        fn get_transaction = "getTransaction"(hash: Hash) -> TxLookup;
        /// A block by height or hash, with its commit certificate.
        fn get_block = "getBlock"(id: BlockId) -> BlockView;
        /// An account's balance and nonces (a never-seen account is empty).
        fn get_account = "getAccount"(account: AccountId) -> AccountView;
        /// The token's name, symbol, decimals and total supply.
        fn get_token = "getToken"() -> TokenInfo;
        /// What `spender` may still spend of `owner`'s tokens.
        fn get_allowance = "getAllowance"(owner: AccountId, spender: AccountId) -> Allowance;
        /// The network parameters in force.
        fn get_params = "getParams"() -> Params;
        /// Admins, approval threshold and the next proposal id.
        fn get_governance = "getGovernance"() -> Governance;
        /// One governance proposal with its approvals and status.
        fn get_proposal = "getProposal"(id: u64) -> Proposal;
        /// Proposals by id, optionally by status, a page at a time.
        fn list_proposals = "listProposals"(filter: ListProposals) -> ProposalPage;
        /// An upgrade plan by name, or the scheduled one, with its status; the protocol
        /// version; the upgrades this node implements.
        fn get_upgrade = "getUpgrade"(; name: String) -> UpgradeView;
        /// The validator set in force and the pending one.
        fn get_validators = "getValidators"(; height: u64) -> Validators;
        /// Manufacturers by id, a page at a time.
        fn list_manufacturers = "listManufacturers"(page: ListPage) -> Page<Manufacturer>;
        /// Auditors by id, a page at a time.
        fn list_auditors = "listAuditors"(page: ListPage) -> Page<Auditor>;
        /// One manufacturer.
        fn get_manufacturer = "getManufacturer"(id: u32) -> Manufacturer;
        /// One auditor.
        fn get_auditor = "getAuditor"(id: u32) -> Auditor;
        /// One device.
        fn get_device = "getDevice"(device: DeviceId) -> Device;
        /// A manufacturer's devices by id, a page at a time.
        fn list_devices = "listDevices"(query: ListDevices) -> DevicePage;
        /// A subject's reputation aggregate for one reputation type.
        fn get_reputation = "getReputation"(subject: Subject, rep_type: String) -> ReputationAggregate;
        /// A subject's reputation writes, oldest first, a page at a time.
        fn get_reputation_history = "getReputationHistory"(query: ReputationHistoryQuery) -> ReputationHistory;
        /// May a device trade with this peer? (Counted in the lookup log.)
        fn validate_device = "validateDevice"(query: ValidateParams) -> ValidationAt;
        /// A state value (or its absence) with a proof against a height's state root.
        fn get_proof = "getProof"(key: StateKey; height: u64) -> ProofView;
        /// Live service offers of a type, optionally in an area, above a reputation.
        fn discover = "discover"(query: DiscoverParams) -> Discovered;
        /// Double signs recorded from a height on (100 heights at most).
        fn get_evidence = "getEvidence"(; from: u64) -> Vec<EvidenceView>;
        /// Validate-device calls per device since this node started (the auditor's input).
        fn get_lookup_counts = "getLookupCounts"(; limit: usize) -> LookupCounts;
        /// The events of one committed block, and the calls that failed in it.
        fn get_events = "getEvents"(height: u64) -> BlockEvents;
        /// The checkpoint bridge as this node sees it.
        fn get_bridge_status = "getBridgeStatus"() -> BridgeStatus;
        /// A checkpoint epoch's height and the validators' signatures.
        fn get_checkpoint = "getCheckpoint"(epoch: u64) -> Checkpoint;

        subscriptions {
            /// Each committed block (WebSocket).
            sub AtonomiBlocks = "subscribeBlocks" => "block", "unsubscribeBlocks"() -> BlockNotice;
            /// Events of committed blocks and this node's dropped transactions, filtered
            /// (WebSocket).
            sub AtonomiEvents = "subscribeEvents" => "event", "unsubscribeEvents"(; filter: EventFilter) -> EventNotice;
        }
    }

    /// The OpenRPC document of this interface.
    trait DiscoverApi in "rpc" "." {
        /// `docs/openrpc.json`, as served.
        fn discover = "discover"() -> serde_json::Value;
        subscriptions {}
    }

    /// Test-only fault injection, served when `[admin] enabled = true`.
    trait AdminApi in "admin" "_" {
        /// Drops all traffic to and from these peers (libp2p peer ids).
        fn set_blocked_peers = "setBlockedPeers"(peers: Vec<String>) -> Blocked;
        subscriptions {}
    }
}
