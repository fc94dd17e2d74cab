//! What the node's tasks share: the chain (written only by the consensus host), the way
//! to the mempool actor, the event bus, the way to the network and the metrics. State
//! that one task owns is not here: the mempool actor owns the pool, the host publishes
//! its round and the relayer its view on watch channels, and the RPC server keeps the
//! lookup log (see [`crate::rpc::RpcContext`]). The mempool's entry point is
//! [`crate::admit`].

use crate::chain::ChainReader;
use crate::ingress::{NodeEvent, Outbound};
use crate::mempool::Mailbox;
use atonomi_primitives::state::{Account, StateKey};
use atonomi_primitives::{codec, AccountId};
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc};

/// State shared between the consensus host, the RPC server and the network.
pub struct Shared {
    /// The chain, read-only: the consensus host owns the one [`crate::chain::Chain`] that writes.
    pub chain: ChainReader,
    /// The mempool actor (see [`crate::mempool`]).
    pub mempool: Mailbox,
    pub events: broadcast::Sender<NodeEvent>,
    /// To the peer-to-peer layer (nobody listens on a network-less dev node).
    pub outbound: mpsc::UnboundedSender<Outbound>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Who may put transactions into the pool (`[admission]`).
    pub admission: crate::admission::Policy,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

pub fn read_chain(shared: &Shared) -> &ChainReader {
    &shared.chain
}

/// The sender's next nonce in the committed state.
pub fn next_nonce(chain: &ChainReader, account: &AccountId) -> u64 {
    match chain.db().get(&StateKey::Account(*account).to_bytes()) {
        Ok(Some(b)) => codec::decode::<Account>(&b, 1 << 16).map_or(0, |a| a.nonce),
        _ => 0,
    }
}

/// A dev chain in `dir` with an empty pool and nobody listening, for unit tests: what
/// the tasks share, and the chain's writer.
#[cfg(test)]
pub(crate) fn for_tests(dir: &std::path::Path) -> (Arc<Shared>, crate::chain::Chain) {
    let genesis = atonomi_genesis::dev::genesis();
    let chain = crate::chain::Chain::open(
        &dir.join("data"),
        &genesis,
        &atonomi_storage::RocksConfig::default(),
        atonomi_storage::LogConfig::default(),
    )
    .unwrap();
    let (events, _) = broadcast::channel(64);
    let (outbound, _) = mpsc::unbounded_channel();
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let mempool = crate::mempool::spawn(
        crate::mempool::MempoolConfig::default(),
        chain.height(),
        events.clone(),
        metrics.clone(),
    )
    .unwrap();
    let shared = Arc::new(Shared {
        chain: chain.reader(),
        mempool,
        events,
        outbound,
        metrics,
        admission: crate::admission::Policy::default(),
    });
    (shared, chain)
}
