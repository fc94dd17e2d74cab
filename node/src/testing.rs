//! A node's parts on the dev chain in a temporary directory, for unit tests: the
//! chain's writer, a reader, a running mempool actor and each task's links, with
//! nobody listening on the network side.

use crate::admit::Admission;
use crate::chain::{Chain, ChainReader};
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc};

pub(crate) struct TestNode {
    pub chain: Chain,
    pub reader: ChainReader,
    pub admission: Admission,
    pub links: crate::host::Links,
}

impl TestNode {
    pub fn rpc_links(&self) -> crate::rpc::Links {
        crate::rpc::Links {
            chain: self.reader.clone(),
            admission: self.admission.clone(),
            mempool: self.links.mempool.clone(),
            events: self.links.events.clone(),
            metrics: self.links.metrics.clone(),
            outbound: self.links.outbound.clone(),
        }
    }
}

pub(crate) fn node(dir: &std::path::Path) -> TestNode {
    let genesis = atonomi_genesis::dev::genesis();
    let chain = Chain::open(
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
    let reader = chain.reader();
    let admission = Admission::new(
        reader.clone(),
        mempool.clone(),
        crate::admission::Policy::default(),
        outbound.clone(),
        metrics.clone(),
    );
    TestNode {
        chain,
        reader,
        admission,
        links: crate::host::Links {
            mempool,
            events,
            outbound,
            metrics,
        },
    }
}
