//! `rpc.discover` (the served OpenRPC document) and the test-only admin methods.

use crate::ingress::Outbound;
use crate::rpc::{bad_params, internal};
use atonomi_api::rpc::views::*;
use atonomi_api::rpc::{AdminApiServer, DiscoverApiServer};
use jsonrpsee::core::RpcResult;
use tokio::sync::mpsc;

/// `rpc.discover`: the served OpenRPC document.
#[derive(Debug, Clone, Copy)]
pub struct Discover;

impl DiscoverApiServer for Discover {
    fn discover(&self) -> RpcResult<serde_json::Value> {
        serde_json::from_str(crate::rpc::OPENRPC).map_err(internal)
    }
}

/// Test-only fault injection (`[admin] enabled = true`).
#[derive(Debug, Clone)]
pub struct Admin {
    /// To the network.
    outbound: mpsc::UnboundedSender<Outbound>,
}

impl Admin {
    pub fn new(outbound: mpsc::UnboundedSender<Outbound>) -> Self {
        Admin { outbound }
    }
}

impl AdminApiServer for Admin {
    fn set_blocked_peers(&self, peers: Vec<String>) -> RpcResult<Blocked> {
        let ids = peers
            .iter()
            .map(|p| {
                p.parse::<libp2p::PeerId>()
                    .map_err(|e| bad_params(format!("peers: {p}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let blocked = ids.len();
        self.outbound
            .send(Outbound::SetBlocked(ids))
            .map_err(internal)?;
        Ok(Blocked { blocked })
    }
}
