//! JSON-RPC over HTTP and WebSocket (jsonrpsee). The interface is declared once in
//! `atonomi_api::rpc` (methods, parameter and result types, error codes — every code is
//! listed in `docs/openrpc.json`); [`methods`] implements it on the chain and the pool.
//! Requests, batches and connections are bounded by the listener in [`server`], which
//! also checks the JSON-RPC 2.0 envelope and every declared method's parameters
//! ([`envelope`]) before jsonrpsee sees a message.

mod envelope;
mod methods;
mod server;

use crate::admit::Admission;
use crate::chain::ChainReader;
use crate::ingress::{NodeEvent, Outbound};
use crate::mempool::Mailbox;
use crate::metrics::Metrics;
use atonomi_api::rpc::{
    AdminApiServer, AtonomiApiServer, AtonomiBlocksServer, AtonomiEventsServer, DiscoverApiServer,
};
use jsonrpsee::server::{RpcModule, ServerHandle};
use jsonrpsee::types::ErrorObjectOwned;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc};

pub use atonomi_api::rpc::code;

/// Limits applied by the server.
pub const MAX_REQUEST_BYTES: u32 = 2 << 20;
pub const MAX_RESPONSE_BYTES: u32 = 16 << 20;
pub const MAX_BATCH: u32 = 100;

/// The OpenRPC document `rpc.discover` serves.
pub const OPENRPC: &str = include_str!("../../../docs/openrpc.json");

fn err(code: i32, msg: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, msg.into(), None::<()>)
}

fn bad_params(e: impl std::fmt::Display) -> ErrorObjectOwned {
    err(code::INVALID_PARAMS, e.to_string())
}

fn internal(e: impl std::fmt::Display) -> ErrorObjectOwned {
    err(code::INTERNAL, e.to_string())
}

/// Why the JSON-RPC server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("binding {addr}: {error}")]
    Bind {
        addr: SocketAddr,
        error: std::io::Error,
    },
    /// Two methods with one name: a programming error, caught by the tests.
    #[error("the method table: {0}")]
    Methods(#[from] jsonrpsee::core::RegisterMethodError),
}

/// What the RPC server reads besides the chain and the pool: this node's settings,
/// and the state other tasks own and publish.
#[derive(Debug)]
pub struct RpcContext {
    /// This node's validator account, if it has a validator key.
    pub validator: Option<atonomi_primitives::AccountId>,
    /// The public half of the node's bridge settings.
    pub bridge: Option<crate::bridge::BridgeInfo>,
    /// Published by the consensus host: the height and round in progress.
    pub round: tokio::sync::watch::Receiver<Option<(atonomi_primitives::Height, u32)>>,
    /// Published by the bridge relayer: its latest view.
    pub relayer: tokio::sync::watch::Receiver<Option<atonomi_api::rpc::views::RelayerView>>,
    /// Names this process start in the lookup log (its counts restart with it).
    pub run_id: u64,
}

impl RpcContext {
    /// A context with nothing published yet (unit tests).
    #[cfg(test)]
    pub(crate) fn for_tests() -> RpcContext {
        RpcContext {
            validator: None,
            bridge: None,
            round: tokio::sync::watch::channel(None).1,
            relayer: tokio::sync::watch::channel(None).1,
            run_id: 1,
        }
    }
}

/// What the RPC server reads, asks and sends.
#[derive(Debug, Clone)]
pub struct Links {
    pub chain: ChainReader,
    /// The way into the mempool for submitted transactions.
    pub admission: Admission,
    /// Pool lookups (`getTransaction`, `status`).
    pub mempool: Mailbox,
    /// Commits and drops, for the subscriptions.
    pub events: broadcast::Sender<NodeEvent>,
    pub metrics: Arc<Metrics>,
    /// To the network: the admin methods only.
    pub outbound: mpsc::UnboundedSender<Outbound>,
}

/// The method table: the ledger's methods, `rpc.discover`, and the admin methods when
/// `with_admin`.
pub fn module(
    links: Links,
    context: RpcContext,
    with_admin: bool,
) -> Result<RpcModule<()>, jsonrpsee::core::RegisterMethodError> {
    let mut m = RpcModule::new(());
    let outbound = links.outbound.clone();
    let rpc = methods::Rpc::new(links, context);
    m.merge(AtonomiApiServer::into_rpc(rpc.clone()))?;
    m.merge(AtonomiBlocksServer::into_rpc(rpc.clone()))?;
    m.merge(AtonomiEventsServer::into_rpc(rpc))?;
    m.merge(methods::Discover.into_rpc())?;
    if with_admin {
        m.merge(methods::Admin::new(outbound).into_rpc())?;
    }
    Ok(m)
}

/// Starts the server on `addr`; returns the bound address and the handle that stops it.
pub async fn serve(
    addr: SocketAddr,
    links: Links,
    context: RpcContext,
    with_admin: bool,
    limits: &atonomi_api::config::RpcConfig,
) -> Result<(SocketAddr, ServerHandle), ServeError> {
    let bind = |error| ServeError::Bind { addr, error };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(bind)?;
    let bound = listener.local_addr().map_err(bind)?;
    let (stop, handle) = jsonrpsee::server::stop_channel();
    let metrics = links.metrics.clone();
    let methods = module(links, context, with_admin)?;
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
        metrics,
    );
    Ok((bound, handle))
}

#[cfg(test)]
mod tests {
    use super::code;
    use std::collections::BTreeSet;

    fn documented_methods() -> BTreeSet<String> {
        let doc: serde_json::Value = serde_json::from_str(super::OPENRPC).unwrap();
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
        let node = crate::testing::node(dir.path());
        let served = |admin: bool| -> BTreeSet<String> {
            super::module(node.rpc_links(), super::RpcContext::for_tests(), admin)
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
        let doc: serde_json::Value = serde_json::from_str(super::OPENRPC).unwrap();
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
