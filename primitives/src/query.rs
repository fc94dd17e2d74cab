//! Answers of the read-only queries (computed by `atonomi_runtime::query`, served by
//! the node's RPC, read by clients).

use crate::state::DeviceStatus;
use crate::{DeviceId, Score};
use serde::{Deserialize, Serialize};

/// The answer to "may I trade with this peer?".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validation {
    pub device: DeviceId,
    pub registered: bool,
    pub status: Option<DeviceStatus>,
    pub active: bool,
    /// Reputation of the payment type (aggregate, or the manufacturer default).
    pub reputation: Option<Score>,
    /// The threshold applied: the larger of the network minimum, the caller's and the
    /// requester's counterparty minimum.
    pub threshold: Score,
    pub meets_threshold: bool,
    /// The requester's data-exchange policy allows this peer (true without requester).
    pub policy_allows: bool,
    pub manufacturer_active: bool,
    /// `registered && active && meets_threshold && policy_allows && manufacturer_active`.
    pub ok: bool,
    /// Why not, in words, when not ok.
    pub reasons: Vec<String>,
}
