//! The node's Prometheus metrics (served by [`crate::endpoint`]).

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The label of a per-outcome or per-reason counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub outcome: &'static str,
}

/// The label of the drop counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    pub reason: &'static str,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub height: Gauge,
    pub round: Gauge,
    pub peers: Gauge,
    /// The highest committed height a connected peer reported.
    pub best_peer_height: Gauge,
    pub mempool_txs: Gauge,
    /// Bytes of the transactions in the mempool.
    pub mempool_bytes: Gauge,
    /// Transactions offered to the mempool, by outcome (`admitted` or the refusal).
    pub admissions: Family<Outcome, Counter>,
    /// Transactions that left the pool uncommitted, by reason.
    pub mempool_drops: Family<Reason, Counter>,
    /// Seconds between consecutive commits.
    pub block_interval_seconds: Histogram,
    /// Rounds a height took (1: decided in its first round).
    pub rounds_per_height: Histogram,
    pub blocks: Counter,
    pub txs: Counter,
    pub sign_refused: Counter,
    /// Proposed blocks this node judged invalid.
    pub invalid_proposals: Counter,
    pub equivocations: Counter,
    /// Invalid messages and frames from peers.
    pub peer_penalties: Counter,
    /// Peers banned for misbehaviour (total) and banned now.
    pub peer_bans: Counter,
    pub banned_peers: Gauge,
    /// The checkpoint contract's latest epoch as the relayer last read it.
    pub bridge_eth_epoch: Gauge,
    /// Checkpoint submissions broadcast by this relayer.
    pub bridge_submissions: Counter,
    /// Seconds from the start of a height to its commit.
    pub commit_seconds: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("atonomi");
        let m = Metrics {
            height: Gauge::default(),
            round: Gauge::default(),
            peers: Gauge::default(),
            best_peer_height: Gauge::default(),
            mempool_txs: Gauge::default(),
            mempool_bytes: Gauge::default(),
            admissions: Family::default(),
            mempool_drops: Family::default(),
            block_interval_seconds: Histogram::new(exponential_buckets(0.05, 2.0, 12)),
            rounds_per_height: Histogram::new([1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 16.0]),
            blocks: Counter::default(),
            txs: Counter::default(),
            sign_refused: Counter::default(),
            invalid_proposals: Counter::default(),
            equivocations: Counter::default(),
            peer_penalties: Counter::default(),
            peer_bans: Counter::default(),
            banned_peers: Gauge::default(),
            bridge_eth_epoch: Gauge::default(),
            bridge_submissions: Counter::default(),
            commit_seconds: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            registry: Registry::default(),
        };
        registry.register("height", "Last committed height", m.height.clone());
        registry.register("round", "Consensus round in progress", m.round.clone());
        registry.register("peers", "Connected peers", m.peers.clone());
        registry.register(
            "best_peer_height",
            "Highest committed height a connected peer reported",
            m.best_peer_height.clone(),
        );
        registry.register(
            "mempool_txs",
            "Transactions in the mempool",
            m.mempool_txs.clone(),
        );
        registry.register(
            "mempool_bytes",
            "Bytes of the transactions in the mempool",
            m.mempool_bytes.clone(),
        );
        registry.register(
            "mempool_admissions",
            "Transactions offered to the mempool, by outcome (admitted, or why refused)",
            m.admissions.clone(),
        );
        registry.register(
            "mempool_drops",
            "Transactions that left the mempool uncommitted, by reason",
            m.mempool_drops.clone(),
        );
        registry.register(
            "block_interval_seconds",
            "Time between consecutive commits",
            m.block_interval_seconds.clone(),
        );
        registry.register(
            "rounds_per_height",
            "Rounds a height took to decide (1: its first round)",
            m.rounds_per_height.clone(),
        );
        registry.register("blocks_committed", "Blocks committed", m.blocks.clone());
        registry.register("txs_committed", "Transactions committed", m.txs.clone());
        registry.register(
            "sign_refused",
            "Signatures the double-sign guard refused",
            m.sign_refused.clone(),
        );
        registry.register(
            "invalid_proposals",
            "Proposed blocks this node judged invalid",
            m.invalid_proposals.clone(),
        );
        registry.register(
            "equivocations",
            "Equivocation evidence seen at commit",
            m.equivocations.clone(),
        );
        registry.register(
            "peer_penalties",
            "Invalid messages or frames received from peers",
            m.peer_penalties.clone(),
        );
        registry.register(
            "peer_bans",
            "Peers banned for misbehaviour",
            m.peer_bans.clone(),
        );
        registry.register("banned_peers", "Peers banned now", m.banned_peers.clone());
        registry.register(
            "bridge_eth_epoch",
            "Latest checkpoint epoch on Ethereum (relayer)",
            m.bridge_eth_epoch.clone(),
        );
        registry.register(
            "bridge_submissions",
            "Checkpoint submissions broadcast by this relayer",
            m.bridge_submissions.clone(),
        );
        registry.register(
            "commit_seconds",
            "Time from starting a height to committing it",
            m.commit_seconds.clone(),
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
