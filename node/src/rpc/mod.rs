//! JSON-RPC over HTTP and WebSocket (jsonrpsee). Methods are namespaced `atonomi_*`;
//! every error carries a stable code (listed in `docs/openrpc.json`). Requests, batches
//! and connections are bounded by the listener in [`server`], which also checks the
//! JSON-RPC 2.0 envelope ([`envelope`]) before jsonrpsee sees a message.

mod envelope;
mod server;

use crate::ingress::{NodeEvent, Outbound};
use crate::mempool::AdmitError;
use crate::shared::{next_nonce, Shared};
use atonomi_primitives::block::Block;
use atonomi_primitives::codec;
use atonomi_primitives::gov::{Governance, Proposal, ProposalStatus};
use atonomi_primitives::params::Params as NetParams;
use atonomi_primitives::state::{
    tag, Account, Auditor, Device, Manufacturer, PendingValidatorSet, ReputationAggregate,
    StateKey, Subject, TokenInfo, ValidatorSet,
};
use atonomi_primitives::{
    AccountId, Amount, AuditorId, DeviceId, Hash, Height, ManufacturerId, ProposalId,
};
use jsonrpsee::server::{RpcModule, ServerHandle};
use jsonrpsee::types::{ErrorObjectOwned, Params};
use jsonrpsee::{PendingSubscriptionSink, SubscriptionMessage};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;

pub use atonomi_api::rpc::code;
use atonomi_api::rpc::{BlockId, DiscoverParams, EventFilter, ValidateParams, MAX_TX_BATCH};

/// Limits applied by the server.
pub const MAX_REQUEST_BYTES: u32 = 2 << 20;
pub const MAX_RESPONSE_BYTES: u32 = 16 << 20;
pub const MAX_BATCH: u32 = 100;

fn err(code: i32, msg: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, msg.into(), None::<()>)
}

fn bad_params(e: impl std::fmt::Display) -> ErrorObjectOwned {
    err(code::INVALID_PARAMS, e.to_string())
}

fn internal(e: impl std::fmt::Display) -> ErrorObjectOwned {
    err(code::INTERNAL, e.to_string())
}

type RpcResult = Result<Value, ErrorObjectOwned>;

/// A method's positional parameters, strictly: an array (or none at all) of at most
/// `max` values; anything else fails with -32602 naming the method's shape.
fn positional(p: &Params, max: usize, shape: &str) -> Result<Vec<Value>, ErrorObjectOwned> {
    let args = match p.as_str() {
        None => Vec::new(),
        Some(_) => match p.parse::<Value>()? {
            Value::Array(a) => a,
            _ => return Err(bad_params(format!("parameters are positional: {shape}"))),
        },
    };
    if args.len() > max {
        return Err(bad_params(format!(
            "at most {max} parameter(s) ({shape}); got {}",
            args.len()
        )));
    }
    Ok(args)
}

/// Parameter `i` (named `name` in errors), absent or null for `None`.
fn optional<T: serde::de::DeserializeOwned>(
    args: &[Value],
    i: usize,
    name: &str,
) -> Result<Option<T>, ErrorObjectOwned> {
    match args.get(i) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|e| bad_params(format!("{name}: {e}"))),
    }
}

/// Parameter `i`, required.
fn required<T: serde::de::DeserializeOwned>(
    args: &[Value],
    i: usize,
    name: &str,
) -> Result<T, ErrorObjectOwned> {
    optional(args, i, name)?.ok_or_else(|| bad_params(format!("{name} is required")))
}

fn admit_error(e: AdmitError) -> ErrorObjectOwned {
    let c = match e {
        AdmitError::Invalid(_) | AdmitError::WrongChain { .. } | AdmitError::BadSignature => {
            code::INVALID_TX
        }
        AdmitError::State(_) => code::INTERNAL,
        AdmitError::Duplicate => code::DUPLICATE_TX,
        // Overload: the answer says where the client's stream must start again.
        AdmitError::Full { resubmit_from, .. } => {
            return ErrorObjectOwned::owned(
                code::MEMPOOL_FULL,
                e.to_string(),
                Some(json!({ "resubmit_from_nonce": resubmit_from })),
            )
        }
        AdmitError::NonceGap { .. } => code::NONCE_GAP,
        AdmitError::NotAdmitted(_) | AdmitError::TooManyPending(_) => code::NOT_ADMITTED,
    };
    err(c, e.to_string())
}

fn hex_bytes(s: &str) -> Result<Vec<u8>, ErrorObjectOwned> {
    atonomi_api::rpc::tx_bytes(s).map_err(bad_params)
}

fn state<T: borsh::BorshDeserialize>(
    shared: &Shared,
    key: &StateKey,
) -> Result<Option<T>, ErrorObjectOwned> {
    let chain = shared.chain.read().unwrap_or_else(|e| e.into_inner());
    match chain.db().get(&key.to_bytes()).map_err(internal)? {
        Some(b) => codec::decode(&b, 16 << 20).map(Some).map_err(internal),
        None => Ok(None),
    }
}

/// `{ "from": N, "limit": N }`, both optional: a page of records by id.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ListPage {
    from: Option<u32>,
    limit: Option<usize>,
}

/// `{ "status": "pending"|"executed"|"failed", "from": ID, "limit": N }`, all optional.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ListProposals {
    status: Option<StatusFilter>,
    from: Option<u64>,
    limit: Option<usize>,
}

/// Which proposals `atonomi_listProposals` lists (a failed one whatever its code).
#[derive(serde::Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum StatusFilter {
    Pending,
    Executed,
    Failed,
}

impl StatusFilter {
    fn matches(self, status: &ProposalStatus) -> bool {
        matches!(
            (self, status),
            (StatusFilter::Pending, ProposalStatus::Pending)
                | (StatusFilter::Executed, ProposalStatus::Executed)
                | (StatusFilter::Failed, ProposalStatus::Failed(_))
        )
    }
}

/// A page's size: `limit` clamped to 1..=100, 20 when not given.
fn page_limit(limit: Option<usize>) -> usize {
    limit.unwrap_or(20).clamp(1, 100)
}

/// Up to `limit` (at most 100, default 20) records under `prefix` from `start`, with
/// the id to ask for next when there are more.
fn page<T: borsh::BorshDeserialize + serde::Serialize>(
    shared: &Shared,
    prefix: &[u8],
    start: &[u8],
    limit: Option<usize>,
    id: impl Fn(&T) -> u64,
) -> RpcResult {
    let limit = page_limit(limit);
    let chain = shared.chain.read().unwrap_or_else(|e| e.into_inner());
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
    Ok(json!({ "items": items, "next": next }))
}

fn found<T: serde::Serialize>(what: &str, v: Option<T>) -> RpcResult {
    match v {
        Some(v) => serde_json::to_value(v).map_err(internal),
        None => Err(err(code::NOT_FOUND, format!("{what} not found"))),
    }
}

fn block_json(b: &Block, cert: Option<atonomi_consensus::CommitCertificate>) -> Value {
    let txs: Vec<Hash> = b
        .txs
        .iter()
        .map(|t| atonomi_primitives::SignedTransaction::hash_of(t))
        .collect();
    json!({ "hash": b.hash(), "header": b.header, "txs": txs, "commit": cert })
}

fn overlaps(
    a: &atonomi_primitives::state::GeoArea,
    b: &atonomi_primitives::state::GeoArea,
) -> bool {
    a.min.lat_e6 <= b.max.lat_e6
        && b.min.lat_e6 <= a.max.lat_e6
        && a.min.lon_e6 <= b.max.lon_e6
        && b.min.lon_e6 <= a.max.lon_e6
}

/// Admin methods, off unless `[admin] enabled = true`: fault injection for tests.
fn admin(m: &mut RpcModule<Arc<Shared>>) -> anyhow::Result<()> {
    m.register_method("admin_setBlockedPeers", |p: Params, s, _| -> RpcResult {
        let (peers,): (Vec<String>,) = p.parse()?;
        let ids = peers
            .iter()
            .map(|p| {
                p.parse::<libp2p::PeerId>()
                    .map_err(|e| bad_params(format!("{p}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let n = ids.len();
        s.outbound
            .send(Outbound::SetBlocked(ids))
            .map_err(internal)?;
        Ok(json!({ "blocked": n }))
    })?;
    Ok(())
}

/// Builds the method table.
pub fn module(shared: Arc<Shared>, with_admin: bool) -> anyhow::Result<RpcModule<Arc<Shared>>> {
    let mut m = RpcModule::new(shared);
    if with_admin {
        admin(&mut m)?;
    }

    m.register_method("atonomi_status", |p: Params, s, _| -> RpcResult {
        positional(&p, 0, "no parameters")?;
        let chain = s.chain.read().unwrap_or_else(|e| e.into_inner());
        let set = chain.next_validator_set().map_err(internal)?;
        let round = *s.round.lock().unwrap_or_else(|e| e.into_inner());
        Ok(json!({
            "chain_id": chain.chain_id,
            "height": chain.height(),
            "latest_block_hash": chain.head_hash(),
            "latest_block_time": chain.head_timestamp(),
            "state_root": chain.state_root().map_err(internal)?,
            "validator": s.validator,
            "validators": set.validators.iter().map(|v| json!({"key": v.consensus_key, "power": v.power.to_string()})).collect::<Vec<_>>(),
            "round": round.map(|(h, r)| json!({"height": h, "round": r})),
            "mempool": s.mempool.lock().unwrap_or_else(|e| e.into_inner()).len(),
            "peers": s.metrics.peers.get(),
            "banned_peers": s.metrics.banned_peers.get(),
            "peer_penalties": s.metrics.peer_penalties.get(),
        }))
    })?;

    m.register_method("atonomi_sendTransaction", |p: Params, s, _| -> RpcResult {
        let (tx,): (String,) = p.parse()?;
        let hash = s.submit_and_gossip(hex_bytes(&tx)?).map_err(admit_error)?;
        Ok(json!({ "hash": hash }))
    })?;

    m.register_method(
        "atonomi_sendTransactionBatch",
        |p: Params, s, _| -> RpcResult {
            let (txs,): (Vec<String>,) = p.parse()?;
            if txs.len() > MAX_TX_BATCH {
                return Err(bad_params(format!(
                    "at most {MAX_TX_BATCH} transactions per batch"
                )));
            }
            let decoded: Vec<Result<Vec<u8>, ErrorObjectOwned>> =
                txs.iter().map(|t| hex_bytes(t)).collect();
            let good: Vec<Vec<u8>> = decoded
                .iter()
                .filter_map(|d| d.as_ref().ok().cloned())
                .collect();
            let mut results = s.submit_batch(good).into_iter();
            let out: Vec<Value> = decoded
                .into_iter()
                .map(|d| {
                    match d.and_then(|_| {
                        results
                            .next()
                            .unwrap_or(Err(AdmitError::State(
                                "no answer for this transaction".into(),
                            )))
                            .map_err(admit_error)
                    }) {
                        Ok(h) => json!({ "hash": h }),
                        Err(e) => {
                            let mut error = json!({ "code": e.code(), "message": e.message() });
                            if let Some(data) = e.data() {
                                error["data"] =
                                    serde_json::from_str(data.get()).unwrap_or_default();
                            }
                            json!({ "error": error })
                        }
                    }
                })
                .collect();
            Ok(Value::Array(out))
        },
    )?;

    m.register_method("atonomi_getTransaction", |p: Params, s, _| -> RpcResult {
        let (hash,): (Hash,) = p.parse()?;
        let chain = s.chain.read().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = chain.receipt(&hash).map_err(internal)? {
            return Ok(json!({ "status": "final", "receipt": r }));
        }
        {
            let pool = s.mempool.lock().unwrap_or_else(|e| e.into_inner());
            if pool.contains(&hash) {
                return Ok(json!({ "status": "pending" }));
            }
            // Admitted, then dropped: say why, so a client need not wait for a timeout.
            if let Some(d) = pool.dropped(&hash) {
                let mut v = serde_json::to_value(d).map_err(internal)?;
                v["status"] = json!("dropped");
                v["message"] = json!(d.reason.explain());
                return Ok(v);
            }
        }
        Err(err(
            code::NOT_FOUND,
            format!("transaction {hash} not found"),
        ))
    })?;

    m.register_method("atonomi_getBlock", |p: Params, s, _| -> RpcResult {
        let (id,): (BlockId,) = p.parse()?;
        let chain = s.chain.read().unwrap_or_else(|e| e.into_inner());
        let block = match id {
            BlockId::Height(h) => chain.block(Height::new(h)),
            BlockId::Hash(h) => chain.block_by_hash(&h),
        }
        .map_err(internal)?;
        match block {
            Some(b) => {
                let cert = chain.certificate(b.header.height).map_err(internal)?;
                Ok(block_json(&b, cert))
            }
            None => Err(err(code::NOT_FOUND, "block not found")),
        }
    })?;

    m.register_method("atonomi_getAccount", |p: Params, s, _| -> RpcResult {
        let (account,): (AccountId,) = p.parse()?;
        let a: Account = state(s, &StateKey::Account(account))?.unwrap_or_default();
        let next = next_nonce(&s.chain.read().unwrap_or_else(|e| e.into_inner()), &account);
        let mut v = serde_json::to_value(a).map_err(internal)?;
        v["account"] = json!(account);
        v["next_nonce"] = json!(next);
        Ok(v)
    })?;

    m.register_method("atonomi_getToken", |p: Params, s, _| -> RpcResult {
        positional(&p, 0, "no parameters")?;
        found("token", state::<TokenInfo>(s, &StateKey::Token)?)
    })?;

    m.register_method("atonomi_getAllowance", |p: Params, s, _| -> RpcResult {
        let (owner, spender): (AccountId, AccountId) = p.parse()?;
        let amount: Amount =
            state(s, &StateKey::Allowance { owner, spender })?.unwrap_or(Amount::ZERO);
        Ok(json!({ "owner": owner, "spender": spender, "amount": amount }))
    })?;

    m.register_method("atonomi_getParams", |p: Params, s, _| -> RpcResult {
        positional(&p, 0, "no parameters")?;
        found(
            "network parameters",
            state::<NetParams>(s, &StateKey::Params)?,
        )
    })?;

    m.register_method("atonomi_getGovernance", |p: Params, s, _| -> RpcResult {
        positional(&p, 0, "no parameters")?;
        found("governance", state::<Governance>(s, &StateKey::Governance)?)
    })?;

    m.register_method("atonomi_getProposal", |p: Params, s, _| -> RpcResult {
        let (id,): (u64,) = p.parse()?;
        found(
            "proposal",
            state::<Proposal>(s, &StateKey::Proposal(ProposalId::new(id)))?,
        )
    })?;

    m.register_method("atonomi_listProposals", |p: Params, s, _| -> RpcResult {
        let (q,): (ListProposals,) = p.parse()?;
        let limit = page_limit(q.limit);
        let gov: Governance =
            state(s, &StateKey::Governance)?.ok_or_else(|| internal("no governance record"))?;
        let mut out = Vec::new();
        let first = q.from.unwrap_or(1).max(1);
        let mut id = first;
        // Ids are sequential; a page reads at most `limit` matches, and at most
        // 10,000 records to find them.
        while id < gov.next_proposal.get() && out.len() < limit && id - first < 10_000 {
            if let Some(prop) = state::<Proposal>(s, &StateKey::Proposal(ProposalId::new(id)))? {
                if q.status.is_none_or(|want| want.matches(&prop.status)) {
                    out.push(prop);
                }
            }
            id += 1;
        }
        let next = (id < gov.next_proposal.get()).then_some(id);
        Ok(json!({ "proposals": out, "next": next, "threshold": gov.threshold }))
    })?;

    m.register_method("atonomi_getValidators", |p: Params, s, _| -> RpcResult {
        positional(&p, 0, "no parameters")?;
        let current: Option<ValidatorSet> = state(s, &StateKey::ValidatorSet)?;
        let pending: Option<PendingValidatorSet> = state(s, &StateKey::PendingValidatorSet)?;
        Ok(json!({ "current": current, "pending": pending }))
    })?;

    m.register_method(
        "atonomi_listManufacturers",
        |p: Params, s, _| -> RpcResult {
            let (q,): (ListPage,) = p.parse()?;
            let prefix = [tag::MANUFACTURER];
            let start = StateKey::Manufacturer(ManufacturerId::new(q.from.unwrap_or(0))).to_bytes();
            page::<Manufacturer>(s, &prefix, &start, q.limit, |m| u64::from(m.id.get()))
        },
    )?;

    m.register_method("atonomi_listAuditors", |p: Params, s, _| -> RpcResult {
        let (q,): (ListPage,) = p.parse()?;
        let prefix = [tag::AUDITOR];
        let start = StateKey::Auditor(AuditorId::new(q.from.unwrap_or(0))).to_bytes();
        page::<Auditor>(s, &prefix, &start, q.limit, |a| u64::from(a.id.get()))
    })?;

    m.register_method("atonomi_getManufacturer", |p: Params, s, _| -> RpcResult {
        let (id,): (u32,) = p.parse()?;
        found(
            "manufacturer",
            state::<Manufacturer>(s, &StateKey::Manufacturer(ManufacturerId::new(id)))?,
        )
    })?;

    m.register_method("atonomi_getAuditor", |p: Params, s, _| -> RpcResult {
        let (id,): (u32,) = p.parse()?;
        found(
            "auditor",
            state::<Auditor>(s, &StateKey::Auditor(AuditorId::new(id)))?,
        )
    })?;

    m.register_method("atonomi_getDevice", |p: Params, s, _| -> RpcResult {
        let (id,): (DeviceId,) = p.parse()?;
        found("device", state::<Device>(s, &StateKey::Device(id))?)
    })?;

    m.register_method("atonomi_getReputation", |p: Params, s, _| -> RpcResult {
        let (subject, rep_type): (Subject, String) = p.parse()?;
        if rep_type.len() > 64 {
            return Err(bad_params("reputation type is at most 64 bytes"));
        }
        found(
            "reputation",
            state::<ReputationAggregate>(s, &StateKey::ReputationAggregate { subject, rep_type })?,
        )
    })?;

    m.register_method("atonomi_validateDevice", |p: Params, s, _| -> RpcResult {
        let (v,): (ValidateParams,) = p.parse()?;
        s.lookups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(v.device, v.requester);
        let chain = s.chain.read().unwrap_or_else(|e| e.into_inner());
        let reader = |k: &[u8]| chain.db().get(k).map_err(|e| e.to_string());
        let answer = atonomi_runtime::query::validate_device(
            &reader,
            v.device,
            v.requester,
            v.min_reputation,
        )
        .map_err(internal)?;
        let mut out = serde_json::to_value(answer).map_err(internal)?;
        out["height"] = json!(chain.height());
        Ok(out)
    })?;

    m.register_method("atonomi_discover", |p: Params, s, _| -> RpcResult {
        let (q,): (DiscoverParams,) = p.parse()?;
        q.check().map_err(bad_params)?;
        let limit = q.limit();
        let chain = s.chain.read().unwrap_or_else(|e| e.into_inner());
        let height = chain.height();
        let prefix = StateKey::service_prefix(&q.service_type);
        let reader = |k: &[u8]| chain.db().get(k).map_err(|e| e.to_string());
        let mut out = Vec::new();
        let mut start = Vec::new();
        'scan: loop {
            let page = chain.db().scan(&prefix, &start, 256).map_err(internal)?;
            let last = page.last().map(|(k, _)| k.clone());
            for (_, v) in &page {
                let offer: atonomi_primitives::state::ServiceOffer =
                    codec::decode(v, 1 << 16).map_err(internal)?;
                if offer.expiry <= height {
                    continue;
                }
                if let (Some(want), Some(have)) = (&q.area, &offer.area) {
                    if !overlaps(want, have) {
                        continue;
                    }
                }
                let v = atonomi_runtime::query::validate_device(
                    &reader,
                    offer.device,
                    None,
                    q.min_reputation,
                )
                .map_err(internal)?;
                if !v.ok {
                    continue;
                }
                out.push(json!({ "offer": offer, "reputation": v.reputation }));
                if out.len() >= limit {
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
        Ok(json!({ "height": height, "offers": out }))
    })?;

    m.register_method("atonomi_getProof", |p: Params, s, _| -> RpcResult {
        let args = positional(&p, 2, "[key, height?]")?;
        let key: StateKey = required(&args, 0, "key")?;
        let height: Option<u64> = optional(&args, 1, "height")?;
        let chain = s.chain.read().unwrap_or_else(|e| e.into_inner());
        let height = height.unwrap_or(chain.height().get());
        if height > chain.height().get() {
            return Err(err(
                code::NOT_FOUND,
                format!("height {height} is not committed yet"),
            ));
        }
        let (value, proof) = match chain.db().prove(&key.to_bytes(), height) {
            Ok(p) => p,
            Err(atonomi_storage::StorageError::Pruned {
                requested,
                oldest,
                latest,
            }) => {
                return Err(ErrorObjectOwned::owned(
                    code::PRUNED,
                    format!(
                        "height {requested} is pruned: this node keeps the state of heights {oldest} to {latest}"
                    ),
                    Some(serde_json::json!({ "oldest": oldest, "latest": latest })),
                ))
            }
            Err(e) => return Err(internal(e)),
        };
        let root = chain.db().root_at(height).map_err(internal)?;
        let header = if height == 0 {
            None
        } else {
            chain
                .block(Height::new(height))
                .map_err(internal)?
                .map(|b| b.header)
        };
        let commit = if height == 0 {
            None
        } else {
            chain.certificate(Height::new(height)).map_err(internal)?
        };
        Ok(json!({
            "height": height,
            "key": hex::encode(key.to_bytes()),
            "value": value.map(hex::encode),
            "proof": hex::encode(proof.to_bytes()),
            "state_root": root,
            "header_bytes": header.as_ref().map(|h| hex::encode(codec::encode(h))),
            "header_hash": header.as_ref().map(|h| h.hash()),
            "header": header,
            "commit": commit,
        }))
    })?;

    m.register_method("atonomi_getEvidence", |p: Params, s, _| -> RpcResult {
        let args = positional(&p, 1, "[from_height?]")?;
        let from: u64 = optional(&args, 0, "from_height")?.unwrap_or(0);
        let chain = s.chain.read().unwrap_or_else(|e| e.into_inner());
        let list = chain.evidence(Height::new(from), 100).map_err(internal)?;
        let out: Vec<Value> = list
            .into_iter()
            .map(|(h, e)| {
                let votes: Vec<Value> = e
                    .double_votes
                    .iter()
                    .map(|(a, b)| json!({ "validator": a.validator, "height": a.height, "round": a.round, "vote_type": vote_type_name(a.vote_type), "first": a.block, "second": b.block }))
                    .collect();
                let proposals: Vec<Value> = e
                    .double_proposals
                    .iter()
                    .map(|(a, b)| json!({ "proposer": a.proposer, "height": a.height, "round": a.round, "first": a.block, "second": b.block }))
                    .collect();
                json!({ "height": h, "double_votes": votes, "double_proposals": proposals })
            })
            .collect();
        Ok(Value::Array(out))
    })?;

    m.register_method("atonomi_getLookupCounts", |p: Params, s, _| -> RpcResult {
        let args = positional(&p, 1, "[limit?]")?;
        let limit: usize = optional(&args, 0, "limit")?.unwrap_or(1000);
        if !(1..=10_000).contains(&limit) {
            return Err(bad_params(format!("limit is 1..=10000, not {limit}")));
        }
        let log = s.lookups.lock().unwrap_or_else(|e| e.into_inner());
        let counts: Vec<Value> = log.top(limit).into_iter().map(|(d, c)| json!({ "device": d, "as_requester": c.as_requester, "as_target": c.as_target })).collect();
        Ok(json!({ "run": log.run.to_string(), "counts": counts }))
    })?;

    m.register_method("atonomi_getEvents", |p: Params, s, _| -> RpcResult {
        let (height,): (u64,) = p.parse()?;
        let chain = s.chain.read().unwrap_or_else(|e| e.into_inner());
        if height == 0 || height > chain.height().get() {
            return Err(err(code::NOT_FOUND, format!("height {height} is not committed")));
        }
        let h = Height::new(height);
        let receipts = chain.receipts(h).map_err(internal)?;
        let block = chain.block(h).map_err(internal)?;
        drop(chain);
        let mut events = Vec::new();
        for (i, r) in receipts.iter().enumerate() {
            for e in &r.events {
                events.push(json!({ "tx_hash": r.tx_hash, "event": e }));
            }
            // A failed call has no events; say what failed, with who sent it, so that an
            // auditor sees refused payments.
            if let atonomi_primitives::event::TxStatus::Failed(error) = &r.status {
                let tx = block.as_ref().and_then(|b| b.txs.get(i)).and_then(|t| atonomi_primitives::tx::SignedTransaction::from_bytes(t).ok());
                if let Some(tx) = tx {
                    events.push(json!({ "tx_hash": r.tx_hash, "failed": { "call": tx.tx.call, "signer": tx.tx.signer, "error": error } }));
                }
            }
        }
        Ok(json!({ "height": height, "events": events }))
    })?;

    m.register_method("atonomi_getBridgeStatus", |p: Params, s, _| -> RpcResult {
        positional(&p, 0, "no parameters")?;
        let chain = s.chain.read().unwrap_or_else(|e| e.into_inner());
        let cfg = s.bridge.as_ref();
        Ok(json!({
            "chain_epoch": chain.last_checkpoint_epoch().map_err(internal)?,
            "contract": cfg.map(|c| c.contract.clone()),
            "eth_chain_id": cfg.map(|c| c.eth_chain_id),
            "signer": cfg.and_then(|c| c.signer.clone()),
            "relayer": s.bridge_status.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            "submissions": crate::bridge::recent_records(&chain, 10).iter().map(|r| json!({ "epoch": r.epoch, "nonce": r.nonce, "tx_hash": r.tx_hash, "max_fee_per_gas": r.max_fee_per_gas.to_string(), "status": r.status, "replaced": r.replaced })).collect::<Vec<_>>(),
        }))
    })?;

    m.register_method("atonomi_getCheckpoint", |p: Params, s, _| -> RpcResult {
        let (epoch,): (u64,) = p.parse()?;
        let chain = s.chain.read().unwrap_or_else(|e| e.into_inner());
        let Some(height) = chain.checkpoint_height(epoch).map_err(internal)? else {
            return Err(err(
                code::NOT_FOUND,
                format!("no checkpoint epoch {epoch} yet"),
            ));
        };
        let prefix = StateKey::checkpoint_prefix(epoch);
        let signatures: Vec<Value> = chain
            .db()
            .scan(&prefix, &[], 256)
            .map_err(internal)?
            .into_iter()
            .filter_map(|(k, v)| {
                let rec: atonomi_primitives::state::CheckpointSignature =
                    codec::decode(&v, 1024).ok()?;
                Some(json!({ "validator": hex::encode(k.get(prefix.len()..)?), "record": rec }))
            })
            .collect();
        Ok(json!({ "epoch": epoch, "height": height, "signatures": signatures }))
    })?;

    m.register_method("rpc.discover", |p: Params, _, _| -> RpcResult {
        positional(&p, 0, "no parameters")?;
        serde_json::from_str(include_str!("../../../docs/openrpc.json")).map_err(internal)
    })?;

    m.register_subscription(
        "atonomi_subscribeBlocks",
        "atonomi_block",
        "atonomi_unsubscribeBlocks",
        |p, pending: PendingSubscriptionSink, s, _| async move {
            if let Err(e) = positional(&p, 0, "no parameters") {
                pending.reject(e).await;
                return Ok(());
            }
            let mut rx = s.events.subscribe();
            let sink = pending.accept().await?;
            loop {
                match rx.recv().await {
                    Ok(NodeEvent::Committed { height, hash, txs }) => {
                        let msg = SubscriptionMessage::from(serde_json::value::to_raw_value(
                            &json!({ "height": height, "hash": hash, "txs": txs }),
                        )?);
                        if sink.send(msg).await.is_err() {
                            return Ok(());
                        }
                    }
                    Ok(NodeEvent::Dropped(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return Ok(()),
                }
            }
        },
    )?;
    m.register_subscription(
        "atonomi_subscribeEvents",
        "atonomi_event",
        "atonomi_unsubscribeEvents",
        |p, pending: PendingSubscriptionSink, s, _| async move {
            // A malformed filter is refused, never widened to every event.
            let filter = match positional(&p, 1, "[filter?]")
                .and_then(|a| optional::<EventFilter>(&a, 0, "filter"))
            {
                Ok(f) => f.unwrap_or_default(),
                Err(e) => {
                    pending.reject(e).await;
                    return Ok(());
                }
            };
            let mut rx = s.events.subscribe();
            let sink = pending.accept().await?;
            loop {
                match rx.recv().await {
                    Ok(NodeEvent::Committed { height, .. }) => {
                        for ev in matching_events(&s, height, &filter) {
                            let msg =
                                SubscriptionMessage::from(serde_json::value::to_raw_value(&ev)?);
                            if sink.send(msg).await.is_err() {
                                return Ok(());
                            }
                        }
                    }
                    Ok(NodeEvent::Dropped(d)) => {
                        if let Some(ev) = dropped_event(&d, &filter) {
                            let msg =
                                SubscriptionMessage::from(serde_json::value::to_raw_value(&ev)?);
                            if sink.send(msg).await.is_err() {
                                return Ok(());
                            }
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return Ok(()),
                }
            }
        },
    )?;
    Ok(m)
}

/// The vote type as evidence reports it.
fn vote_type_name(t: atonomi_consensus::VoteType) -> &'static str {
    match t {
        atonomi_consensus::VoteType::Prevote => "Prevote",
        atonomi_consensus::VoteType::Precommit => "Precommit",
    }
}

fn mentions(v: &Value, needle: &str) -> bool {
    match v {
        Value::String(s) => s == needle,
        Value::Array(a) => a.iter().any(|x| mentions(x, needle)),
        Value::Object(o) => o.values().any(|x| mentions(x, needle)),
        _ => false,
    }
}

/// A dropped transaction as a subscription event (`"transaction_dropped"`, node-local:
/// not in any block), if the filter wants it.
fn dropped_event(d: &crate::mempool::Dropped, f: &EventFilter) -> Option<Value> {
    let mut v = serde_json::to_value(d).ok()?;
    v["event"] = json!("transaction_dropped");
    v["message"] = json!(d.reason.explain());
    let name_ok = f.events.is_empty() || f.events.iter().any(|w| w == "transaction_dropped");
    let who_ok = f.involving.as_deref().is_none_or(|w| mentions(&v, w));
    (name_ok && who_ok).then(|| json!({ "tx_hash": d.hash, "event": v }))
}

fn matching_events(s: &Shared, height: Height, f: &EventFilter) -> Vec<Value> {
    let receipts = s
        .chain
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .receipts(height)
        .unwrap_or_default();
    let mut out = Vec::new();
    for r in receipts {
        for e in &r.events {
            let Ok(v) = serde_json::to_value(e) else {
                continue;
            };
            let name_ok = f.events.is_empty()
                || v["event"]
                    .as_str()
                    .is_some_and(|n| f.events.iter().any(|w| w == n));
            let who_ok = f.involving.as_deref().is_none_or(|w| mentions(&v, w));
            if name_ok && who_ok {
                out.push(json!({ "height": height, "tx_hash": r.tx_hash, "event": v }));
            }
        }
    }
    out
}

/// Starts the server on `addr`; returns the bound address and the handle that stops it.
pub async fn serve(
    addr: SocketAddr,
    shared: Arc<Shared>,
    with_admin: bool,
    limits: &atonomi_api::config::RpcConfig,
) -> anyhow::Result<(SocketAddr, ServerHandle)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let (stop, handle) = jsonrpsee::server::stop_channel();
    let methods = module(shared, with_admin)?;
    server::spawn(
        listener,
        methods.into(),
        server::Limits {
            max_request_bytes: MAX_REQUEST_BYTES,
            max_response_bytes: MAX_RESPONSE_BYTES,
            max_batch: MAX_BATCH,
            max_http: limits.max_http_connections,
            max_http_per_ip: limits.max_http_connections_per_ip,
            max_ws: limits.max_ws_connections,
            max_ws_per_ip: limits.max_ws_connections_per_ip,
            idle: std::time::Duration::from_secs(limits.idle_timeout_secs),
        },
        stop,
    );
    Ok((bound, handle))
}

#[cfg(test)]
mod tests {
    use super::code;
    use std::collections::BTreeSet;

    fn documented_methods() -> BTreeSet<String> {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../../docs/openrpc.json")).unwrap();
        doc["methods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// The served document cannot drift from the server: every method registered
    /// (subscriptions and their unsubscribe methods too) is documented and every
    /// documented one is served; the admin switch adds only `admin_` methods.
    #[test]
    fn the_served_methods_are_exactly_the_documented_ones() {
        let dir = tempfile::tempdir().unwrap();
        let shared = crate::shared::for_tests(dir.path());
        let served = |admin: bool| -> BTreeSet<String> {
            super::module(shared.clone(), admin)
                .unwrap()
                .method_names()
                .map(str::to_string)
                .collect()
        };
        let public = served(false);
        let documented = documented_methods();
        let undocumented: Vec<_> = public.difference(&documented).collect();
        let unserved: Vec<_> = documented.difference(&public).collect();
        assert!(
            undocumented.is_empty() && unserved.is_empty(),
            "served but not in docs/openrpc.json: {undocumented:?}; documented but not served: {unserved:?}"
        );
        let admin: Vec<_> = served(true).difference(&public).cloned().collect();
        assert!(!admin.is_empty());
        assert!(admin.iter().all(|m| m.starts_with("admin_")), "{admin:?}");
    }

    /// Every code the node can return is listed in the served OpenRPC document.
    #[test]
    fn every_error_code_is_documented() {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../../docs/openrpc.json")).unwrap();
        let listed: Vec<i64> = doc["components"]["errors"]
            .as_object()
            .unwrap()
            .values()
            .map(|e| e["code"].as_i64().unwrap())
            .collect();
        for c in [
            super::envelope::PARSE_ERROR,
            super::envelope::INVALID_REQUEST,
            -32601,
            code::INVALID_PARAMS,
            code::INTERNAL,
            code::NEEDS_WEBSOCKET,
            code::TOO_MANY_SUBSCRIPTIONS,
            code::OVERSIZED_REQUEST,
            code::OVERSIZED_RESPONSE,
            code::SERVER_BUSY,
            code::TOO_BIG_BATCH,
            code::INVALID_TX,
            code::DUPLICATE_TX,
            code::MEMPOOL_FULL,
            code::NONCE_GAP,
            code::NOT_ADMITTED,
            code::NOT_FOUND,
        ] {
            assert!(
                listed.contains(&i64::from(c)),
                "code {c} is not in docs/openrpc.json"
            );
        }
    }
}
