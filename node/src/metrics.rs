//! Prometheus metrics, served as text on `GET /metrics`.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub height: Gauge,
    pub round: Gauge,
    pub peers: Gauge,
    pub mempool_txs: Gauge,
    pub blocks: Counter,
    pub txs: Counter,
    pub sign_refused: Counter,
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
            mempool_txs: Gauge::default(),
            blocks: Counter::default(),
            txs: Counter::default(),
            sign_refused: Counter::default(),
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
            "mempool_txs",
            "Transactions in the mempool",
            m.mempool_txs.clone(),
        );
        registry.register("blocks_committed", "Blocks committed", m.blocks.clone());
        registry.register("txs_committed", "Transactions committed", m.txs.clone());
        registry.register(
            "sign_refused",
            "Signatures the double-sign guard refused",
            m.sign_refused.clone(),
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

/// Serves `GET /metrics` (anything else: 404) until the task is dropped.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                continue;
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                // Read the request head (it may arrive in several segments), bounded.
                let mut buf = Vec::with_capacity(1024);
                let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 8192 {
                    let mut chunk = [0u8; 1024];
                    match tokio::time::timeout_at(deadline, sock.read(&mut chunk)).await {
                        Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                        Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let req = String::from_utf8_lossy(&buf);
                let (status, body) = if req.starts_with("GET /metrics") {
                    ("200 OK", metrics.render())
                } else {
                    ("404 Not Found", "not found\n".to_string())
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    Ok(bound)
}
