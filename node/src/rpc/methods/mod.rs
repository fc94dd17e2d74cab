//! The node's side of the interface declared in `atonomi_api::rpc`: each method reads
//! the chain (or admits into the pool) and answers its declared result type. Parameters
//! arrive decoded and checked (see [`super::envelope`]); rules beyond their types are
//! checked here, with -32602 naming the parameter.
//!
//! - `api.rs`: the ledger's methods (`atonomi_*` calls);
//! - `events.rs`: blocks and the event subscriptions;
//! - `admin.rs`: `rpc.discover` and the test-only admin methods.

mod admin;
mod api;
mod events;

pub use admin::{Admin, Discover};

use super::{bad_params, err, internal};
use crate::admit::Admission;
use crate::chain::ChainReader;
use crate::ingress::NodeEvent;
use crate::lookups::LookupLog;
use crate::mempool::AdmitError;
use crate::mempool::Mailbox;
use crate::metrics::Metrics;
use atonomi_api::rpc::views::*;
use atonomi_api::rpc::{code, page_limit, DiscoverParams};
use atonomi_primitives::codec;
use atonomi_primitives::state::{GeoArea, ServiceOffer, StateKey};
use atonomi_primitives::Height;
use jsonrpsee::core::RpcResult;
use jsonrpsee::types::ErrorObjectOwned;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// The RPC methods' view of the node.
#[derive(Debug, Clone)]
pub struct Rpc {
    chain: ChainReader,
    admission: Admission,
    mempool: Mailbox,
    events: broadcast::Sender<NodeEvent>,
    metrics: Arc<Metrics>,
    context: Arc<super::RpcContext>,
    /// validate-device calls per device (the auditor's input); this server's own.
    lookups: Arc<Mutex<LookupLog>>,
}

impl Rpc {
    pub fn new(links: super::Links, context: super::RpcContext) -> Self {
        Rpc {
            chain: links.chain,
            admission: links.admission,
            mempool: links.mempool,
            events: links.events,
            metrics: links.metrics,
            lookups: Arc::new(Mutex::new(LookupLog::new(context.run_id))),
            context: Arc::new(context),
        }
    }

    /// Up to `limit` live offers matching `query` in the latest state, which is
    /// `height`'s (see [`crate::chain::ChainReader::at_one_height`]).
    fn offers(
        &self,
        query: &DiscoverParams,
        limit: usize,
        height: Height,
    ) -> RpcResult<Vec<OfferView>> {
        let chain = &self.chain;
        let prefix = StateKey::service_prefix(&query.service_type);
        let reader = |k: &[u8]| chain.db().get(k);
        let mut offers = Vec::new();
        let mut start = Vec::new();
        'scan: loop {
            let page = chain.db().scan(&prefix, &start, 256).map_err(internal)?;
            let last = page.last().map(|(k, _)| k.clone());
            for (_, v) in &page {
                let offer: ServiceOffer = codec::decode(v, 1 << 16).map_err(internal)?;
                if offer.expiry <= height {
                    continue;
                }
                if let (Some(want), Some(have)) = (&query.area, &offer.area) {
                    if !overlaps(want, have) {
                        continue;
                    }
                }
                let v = atonomi_runtime::query::validate_device(
                    &reader,
                    offer.device,
                    None,
                    query.min_reputation,
                )
                .map_err(internal)?;
                if !v.ok {
                    continue;
                }
                offers.push(OfferView {
                    offer,
                    reputation: v.reputation,
                });
                if offers.len() >= limit {
                    break 'scan;
                }
            }
            match last {
                Some(mut k) if page.len() == 256 => {
                    k.push(0);
                    start = k;
                }
                _ => break,
            }
        }
        Ok(offers)
    }

    /// A state record, decoded.
    fn state<T: borsh::BorshDeserialize>(&self, key: &StateKey) -> RpcResult<Option<T>> {
        let chain = &self.chain;
        match chain.db().get(&key.to_bytes()).map_err(internal)? {
            Some(b) => codec::decode(&b, 16 << 20).map(Some).map_err(internal),
            None => Ok(None),
        }
    }

    /// A state record that must exist: 4040 naming `what` when it does not.
    fn found<T: borsh::BorshDeserialize>(&self, what: &str, key: &StateKey) -> RpcResult<T> {
        self.state(key)?
            .ok_or_else(|| err(code::NOT_FOUND, format!("{what} not found")))
    }

    /// Up to `limit` (at most 100, default 20) records under `prefix` from `start`,
    /// with the id to ask for next when there are more.
    fn page<T: borsh::BorshDeserialize>(
        &self,
        prefix: &[u8],
        start: &[u8],
        limit: Option<usize>,
        id: impl Fn(&T) -> u64,
    ) -> RpcResult<Page<T>> {
        let limit = page_limit(limit);
        let chain = &self.chain;
        let rows = chain
            .db()
            .scan(prefix, start, limit + 1)
            .map_err(internal)?;
        let mut items = Vec::new();
        for (_, v) in rows.iter().take(limit) {
            items.push(codec::decode::<T>(v, 16 << 20).map_err(internal)?);
        }
        let next = match rows.get(limit) {
            Some((_, v)) => Some(id(&codec::decode::<T>(v, 16 << 20).map_err(internal)?)),
            None => None,
        };
        Ok(Page { items, next })
    }
}

/// A storage error as the client sees it: a pruned height is 4041 with the kept range.
fn storage_error(e: atonomi_storage::StorageError) -> ErrorObjectOwned {
    match e {
        atonomi_storage::StorageError::Pruned {
            requested,
            oldest,
            latest,
        } => ErrorObjectOwned::owned(
            code::PRUNED,
            format!(
                "height {requested} is pruned: this node keeps the state of heights {oldest} to {latest}"
            ),
            Some(serde_json::json!({ "oldest": oldest, "latest": latest })),
        ),
        e => internal(e),
    }
}

/// An admission refusal as the client sees it: the code says what to do next.
pub(super) fn admit_error(e: AdmitError) -> ErrorObjectOwned {
    let c = match e {
        AdmitError::Invalid(_) | AdmitError::WrongChain { .. } | AdmitError::BadSignature => {
            code::INVALID_TX
        }
        AdmitError::State(_) | AdmitError::Stopped => code::INTERNAL,
        AdmitError::Busy { .. } => code::SERVER_BUSY,
        AdmitError::Duplicate => code::DUPLICATE_TX,
        // Overload: the answer says where the client's stream must start again.
        AdmitError::Full { resubmit_from, .. } => {
            return ErrorObjectOwned::owned(
                code::MEMPOOL_FULL,
                e.to_string(),
                Some(serde_json::json!({ "resubmit_from_nonce": resubmit_from })),
            )
        }
        AdmitError::NonceGap { .. } => code::NONCE_GAP,
        AdmitError::NotAdmitted(_) | AdmitError::TooManyPending(_) => code::NOT_ADMITTED,
    };
    err(c, e.to_string())
}

fn error_body(e: ErrorObjectOwned) -> ErrorBody {
    ErrorBody {
        code: e.code(),
        message: e.message().to_string(),
        data: e.data().and_then(|d| serde_json::from_str(d.get()).ok()),
    }
}

fn hex_bytes(name: &str, s: &str) -> RpcResult<Vec<u8>> {
    atonomi_api::rpc::tx_bytes(s).map_err(|e| bad_params(format!("{name}: {e}")))
}

fn overlaps(a: &GeoArea, b: &GeoArea) -> bool {
    a.min.lat_e6 <= b.max.lat_e6
        && b.min.lat_e6 <= a.max.lat_e6
        && a.min.lon_e6 <= b.max.lon_e6
        && b.min.lon_e6 <= a.max.lon_e6
}
