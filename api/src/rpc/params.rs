//! The parameter types of the JSON-RPC methods, their size rules (`check`), the
//! error codes and the limits.

use atonomi_primitives::gov::ProposalStatus;
use atonomi_primitives::state::{GeoArea, Subject};
use atonomi_primitives::{DeviceId, Hash, Score};
use serde::{Deserialize, Serialize};

/// Stable error codes (besides JSON-RPC's own -32700..-32600).
pub mod code {
    pub const INVALID_PARAMS: i32 = -32602;
    pub const INTERNAL: i32 = -32603;
    pub const INVALID_TX: i32 = 4001;
    pub const DUPLICATE_TX: i32 = 4002;
    pub const MEMPOOL_FULL: i32 = 4003;
    pub const NONCE_GAP: i32 = 4004;
    pub const NOT_FOUND: i32 = 4040;
    /// The height asked for is older than this node keeps (`[storage] state_retention`);
    /// the error's data holds `oldest` and `latest`.
    pub const PRUNED: i32 = 4041;
    /// Refused by this node's admission policy (`[admission]`: no balance and no role,
    /// or too many pending transactions from the account).
    pub const NOT_ADMITTED: i32 = 4005;
    /// A subscription method called over HTTP.
    pub const NEEDS_WEBSOCKET: i32 = -32004;
    /// Subscriptions per WebSocket connection exceeded (jsonrpsee's code).
    pub const TOO_MANY_SUBSCRIPTIONS: i32 = -32006;
    /// The request body is over the limit (HTTP 413).
    pub const OVERSIZED_REQUEST: i32 = -32007;
    /// The response would be over the limit.
    pub const OVERSIZED_RESPONSE: i32 = -32008;
    /// Too many connections from this address (HTTP 429), or too many calls in flight
    /// on one WebSocket.
    pub const SERVER_BUSY: i32 = -32009;
    pub const TOO_MANY_CONNECTIONS: i32 = SERVER_BUSY;
    /// A batch over the call limit.
    pub const TOO_BIG_BATCH: i32 = -32010;
}

/// Largest hex-encoded transaction accepted by `atonomi_sendTransaction`.
pub const MAX_TX_HEX: usize = 2 * 1024 * 1024;
/// Transactions per `atonomi_sendTransactionBatch`.
pub const MAX_TX_BATCH: usize = 10_000;
/// Longest reputation type or service type.
pub const MAX_TYPE_BYTES: usize = 64;
/// Most results of `atonomi_discover`.
pub const MAX_DISCOVER: usize = 1_000;

/// `atonomi_getBlock`: a height or a block hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BlockId {
    Height(u64),
    Hash(Hash),
}

/// `atonomi_discover`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoverParams {
    pub service_type: String,
    #[serde(default)]
    pub area: Option<GeoArea>,
    #[serde(default)]
    pub min_reputation: Option<Score>,
    #[serde(default)]
    pub limit: Option<usize>,
}

impl DiscoverParams {
    pub fn check(&self) -> Result<(), super::declare::ParamError> {
        if self.service_type.is_empty() || self.service_type.len() > MAX_TYPE_BYTES {
            return Err(super::declare::ParamError::Invalid {
                param: "service_type".into(),
                reason: format!("1..={MAX_TYPE_BYTES} bytes"),
            });
        }
        Ok(())
    }

    /// The result limit actually applied.
    pub fn limit(&self) -> usize {
        self.limit.unwrap_or(100).min(MAX_DISCOVER)
    }
}

/// `atonomi_validateDevice`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateParams {
    pub device: DeviceId,
    /// The device asking (it may be refused by the target's policy; the call is counted
    /// in the lookup log of the asked-about device either way).
    #[serde(default)]
    pub requester: Option<DeviceId>,
    #[serde(default)]
    pub min_reputation: Option<Score>,
}

/// `atonomi_subscribeEvents`: which events a subscriber wants, by event name
/// (`"device_activated"`, …) and/or naming a device or account anywhere in the event.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventFilter {
    #[serde(default)]
    pub events: Vec<String>,
    #[serde(default)]
    pub involving: Option<String>,
}

/// `atonomi_listManufacturers`, `atonomi_listAuditors`: `{ "from": ID, "limit": N }`,
/// both optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListPage {
    #[serde(default)]
    pub from: Option<u32>,
    #[serde(default)]
    pub limit: Option<usize>,
}

/// `atonomi_listDevices`: `{ "manufacturer": ID, "from": DEVICE, "limit": N }`, the
/// manufacturer required.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListDevices {
    pub manufacturer: u32,
    #[serde(default)]
    pub from: Option<DeviceId>,
    #[serde(default)]
    pub limit: Option<usize>,
}

/// `atonomi_getReputationHistory`: `{ "subject": SUBJECT, "from": POSITION, "limit": N }`,
/// the subject required; `from` is the `next` of the page before.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReputationHistoryQuery {
    pub subject: Subject,
    #[serde(default)]
    pub from: Option<HistoryPosition>,
    #[serde(default)]
    pub limit: Option<usize>,
}

/// Where a record sits in a subject's reputation history: block height, transaction
/// and event position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryPosition {
    pub height: u64,
    pub tx: u32,
    pub event: u32,
}

/// `atonomi_listProposals`: `{ "status": "pending"|"executed"|"failed", "from": ID,
/// "limit": N }`, all optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListProposals {
    #[serde(default)]
    pub status: Option<StatusFilter>,
    #[serde(default)]
    pub from: Option<u64>,
    #[serde(default)]
    pub limit: Option<usize>,
}

/// Which proposals `atonomi_listProposals` lists (a failed one whatever its code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusFilter {
    Pending,
    Executed,
    Failed,
}

impl StatusFilter {
    pub fn matches(self, status: &ProposalStatus) -> bool {
        matches!(
            (self, status),
            (StatusFilter::Pending, ProposalStatus::Pending)
                | (StatusFilter::Executed, ProposalStatus::Executed)
                | (StatusFilter::Failed, ProposalStatus::Failed(_))
        )
    }
}

/// A page's size: `limit` clamped to 1..=100, 20 when not given.
pub fn page_limit(limit: Option<usize>) -> usize {
    limit.unwrap_or(20).clamp(1, 100)
}

/// Decodes a hex transaction parameter with its size bound.
pub fn tx_bytes(hex_str: &str) -> Result<Vec<u8>, String> {
    if hex_str.len() > MAX_TX_HEX {
        return Err("transaction too large".into());
    }
    let s = hex_str.strip_prefix("0x").unwrap_or(hex_str);
    hex::decode(s).map_err(|e| format!("not hex: {e}"))
}
