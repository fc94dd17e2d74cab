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

/// The labels of a JSON-RPC request count.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcCall {
    pub method: &'static str,
    pub outcome: &'static str,
}

/// The label of a JSON-RPC latency histogram.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcMethod {
    pub method: &'static str,
}

/// The label of a per-column-family gauge.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Column {
    pub cf: &'static str,
}

/// The label of the peer count by kind.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerKind {
    /// `validator` (in the set of the next height) or `full_node`.
    pub kind: &'static str,
}

/// Why a transaction left the pool uncommitted: every reason
/// `atonomi_mempool_drops_total` counts (each exported from the start, at 0).
pub const DROP_REASONS: [&str; 4] = ["replaced", "nonce_used", "evicted", "gapped"];

/// Reads what is sampled when the metrics are rendered (storage sizes).
pub type Sampler = Box<dyn Fn(&Metrics) + Send + Sync>;

fn rpc_latency() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 4.0, 10))
}

pub struct Metrics {
    registry: Registry,
    pub height: Gauge,
    pub round: Gauge,
    pub peers: Gauge,
    /// Connected peers by kind (see [`PeerKind`]).
    pub peers_by_kind: Family<PeerKind, Gauge>,
    /// Heights this node is behind the best height a peer reported (set when rendered).
    pub sync_lag: Gauge,
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
    /// The chain's latest checkpoint epoch as the relayer last read it (the lag to
    /// Ethereum is this minus `bridge_eth_epoch`).
    pub bridge_chain_epoch: Gauge,
    /// Relayer rounds that failed (each is retried a second later).
    pub bridge_relay_failures: Counter,
    /// Seconds since the oldest checkpoint not yet on Ethereum was ready on this chain
    /// (0 when Ethereum has every checkpoint), as the relayer last saw it.
    pub bridge_lag_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// This process: CPU seconds, resident memory, open file descriptors, threads
    /// (read from /proc when the metrics are rendered; 0 where there is none).
    pub process_cpu_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
    pub process_resident_memory_bytes: Gauge,
    pub process_open_fds: Gauge,
    pub process_threads: Gauge,
    /// Seconds from the start of a height to its commit.
    pub commit_seconds: Histogram,
    /// JSON-RPC requests by method and outcome (`ok`, `error`).
    pub rpc_requests: Family<RpcCall, Counter>,
    /// JSON-RPC request latency by method.
    pub rpc_request_seconds: Family<RpcMethod, Histogram, fn() -> Histogram>,
    /// Approximate bytes on disk by RocksDB column family (sampled when rendered).
    pub storage_bytes: Family<Column, Gauge>,
    /// The oldest height whose state is kept (pruning moves it up).
    pub state_oldest_height: Gauge,
    /// The newest snapshot's height and when it was written (Unix seconds); 0 until
    /// one is (`[storage] snapshot_interval`).
    pub snapshot_height: Gauge,
    pub snapshot_timestamp_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// Bytes free for this node on the data directory's filesystem, and its size.
    pub disk_free_bytes: Gauge,
    pub disk_size_bytes: Gauge,
    samplers: std::sync::Mutex<Vec<Sampler>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("atonomi");
        let m = Metrics {
            height: Gauge::default(),
            round: Gauge::default(),
            peers: Gauge::default(),
            peers_by_kind: Family::default(),
            sync_lag: Gauge::default(),
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
            bridge_chain_epoch: Gauge::default(),
            bridge_relay_failures: Counter::default(),
            bridge_lag_seconds: Gauge::default(),
            process_cpu_seconds: Counter::default(),
            process_resident_memory_bytes: Gauge::default(),
            process_open_fds: Gauge::default(),
            process_threads: Gauge::default(),
            commit_seconds: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            rpc_requests: Family::default(),
            rpc_request_seconds: Family::new_with_constructor(rpc_latency),
            storage_bytes: Family::default(),
            state_oldest_height: Gauge::default(),
            snapshot_height: Gauge::default(),
            snapshot_timestamp_seconds: Gauge::default(),
            disk_free_bytes: Gauge::default(),
            disk_size_bytes: Gauge::default(),
            samplers: std::sync::Mutex::default(),
            registry: Registry::default(),
        };
        registry.register(
            "storage_bytes",
            "Approximate bytes on disk by RocksDB column family (live SST files and memtables)",
            m.storage_bytes.clone(),
        );
        registry.register(
            "state_oldest_height",
            "Oldest height whose state is kept (state pruning moves it up)",
            m.state_oldest_height.clone(),
        );
        registry.register(
            "snapshot_height",
            "Height of the newest snapshot taken ([storage] snapshot_interval; 0: none)",
            m.snapshot_height.clone(),
        );
        registry.register(
            "snapshot_timestamp_seconds",
            "When the newest snapshot was written, in Unix seconds (0: none)",
            m.snapshot_timestamp_seconds.clone(),
        );
        registry.register(
            "disk_free_bytes",
            "Bytes free for this node on the data directory's filesystem",
            m.disk_free_bytes.clone(),
        );
        registry.register(
            "disk_size_bytes",
            "Size of the data directory's filesystem",
            m.disk_size_bytes.clone(),
        );
        registry.register(
            "rpc_requests",
            "JSON-RPC requests by method and outcome (ok, error); a batch counts once as batch",
            m.rpc_requests.clone(),
        );
        registry.register(
            "rpc_request_seconds",
            "JSON-RPC request latency by method",
            m.rpc_request_seconds.clone(),
        );
        registry.register("height", "Last committed height", m.height.clone());
        registry.register("round", "Consensus round in progress", m.round.clone());
        registry.register("peers", "Connected peers", m.peers.clone());
        registry.register(
            "peers_by_kind",
            "Connected peers by kind (validator of the next height, or full_node)",
            m.peers_by_kind.clone(),
        );
        for kind in ["validator", "full_node"] {
            m.peers_by_kind.get_or_create(&PeerKind { kind }).set(0);
        }
        registry.register(
            "sync_lag_heights",
            "Heights this node is behind the best height a connected peer reported",
            m.sync_lag.clone(),
        );
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
        for reason in DROP_REASONS {
            m.mempool_drops.get_or_create(&Reason { reason }).inc_by(0);
        }
        m.admissions
            .get_or_create(&Outcome {
                outcome: "admitted",
            })
            .inc_by(0);
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
            "bridge_chain_epoch",
            "Latest checkpoint epoch on this chain (relayer)",
            m.bridge_chain_epoch.clone(),
        );
        registry.register(
            "bridge_relay_failures",
            "Relayer rounds that failed",
            m.bridge_relay_failures.clone(),
        );
        registry.register(
            "bridge_lag_seconds",
            "Seconds since the oldest checkpoint not yet on Ethereum was ready on this chain (relayer)",
            m.bridge_lag_seconds.clone(),
        );
        registry.register(
            "process_cpu_seconds",
            "CPU time this process used (user and system)",
            m.process_cpu_seconds.clone(),
        );
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory of this process",
            m.process_resident_memory_bytes.clone(),
        );
        registry.register(
            "process_open_fds",
            "Open file descriptors of this process",
            m.process_open_fds.clone(),
        );
        registry.register(
            "process_threads",
            "Threads of this process",
            m.process_threads.clone(),
        );
        registry.register(
            "commit_seconds",
            "Time from starting a height to committing it",
            m.commit_seconds.clone(),
        );
        Metrics { registry, ..m }
    }
}

/// Drops the samplers of a [`Metrics`] (and the chain readers they hold) when it
/// goes: the mempool's thread and the metrics port hold the metrics for as long as the
/// process lives, and a store still open there when the process exits aborts in
/// RocksDB ("pthread lock: Invalid argument").
#[derive(Debug)]
pub struct SamplersGuard(pub std::sync::Arc<Metrics>);

impl Drop for SamplersGuard {
    fn drop(&mut self) {
        self.0.clear_samplers();
    }
}

impl Metrics {
    /// Runs `sampler` each time the metrics are rendered.
    pub fn add_sampler(&self, sampler: Sampler) {
        if let Ok(mut s) = self.samplers.lock() {
            s.push(sampler);
        }
    }

    /// Drops every sampler (and what it holds), at shutdown.
    pub fn clear_samplers(&self) {
        if let Ok(mut s) = self.samplers.lock() {
            s.clear();
        }
    }

    pub fn render(&self) -> String {
        self.sample_process();
        self.sync_lag
            .set((self.best_peer_height.get() - self.height.get()).max(0));
        if let Ok(samplers) = self.samplers.lock() {
            for sample in samplers.iter() {
                sample(self);
            }
        }
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Reads this process's resources from /proc (Linux); elsewhere they stay 0.
    fn sample_process(&self) {
        let Ok(process) = process_sample() else {
            return;
        };
        // A counter: moved up by what /proc adds (it never goes back).
        let more = process.cpu_seconds - self.process_cpu_seconds.get();
        if more > 0.0 {
            self.process_cpu_seconds.inc_by(more);
        }
        self.process_resident_memory_bytes
            .set(process.resident_bytes as i64);
        self.process_open_fds.set(process.open_fds as i64);
        self.process_threads.set(process.threads as i64);
    }
}

/// What /proc says about this process.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ProcessSample {
    cpu_seconds: f64,
    resident_bytes: u64,
    open_fds: u64,
    threads: u64,
}

/// Clock ticks per second in /proc/*/stat (USER_HZ, fixed at 100 on Linux).
const USER_HZ: f64 = 100.0;

fn process_sample() -> std::io::Result<ProcessSample> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let status = std::fs::read_to_string("/proc/self/status")?;
    let open_fds = std::fs::read_dir("/proc/self/fd")?.count() as u64;
    Ok(parse_process(&stat, &status, open_fds))
}

/// utime and stime are fields 14 and 15 of `stat`, counted after the command name
/// (which may hold spaces, so from its closing parenthesis); VmRSS (kB) and Threads
/// come from `status`.
fn parse_process(stat: &str, status: &str, open_fds: u64) -> ProcessSample {
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name, field 3 (state) is index 0: utime (14) is index 11.
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    ProcessSample {
        cpu_seconds: (tick(11) + tick(12)) as f64 / USER_HZ,
        resident_bytes: field("VmRSS:") * 1024,
        open_fds,
        threads: field("Threads:"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A command name with spaces and parentheses does not shift the fields.
    #[test]
    fn process_figures_are_read_from_proc_text() {
        let stat =
            "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 12345 0 0";
        let status = "Name:\tatonomi\nVmRSS:\t   2048 kB\nThreads:\t9\n";
        let p = parse_process(stat, status, 17);
        assert_eq!(
            p,
            ProcessSample {
                cpu_seconds: 3.0,
                resident_bytes: 2048 * 1024,
                open_fds: 17,
                threads: 9,
            }
        );
    }

    /// Families with labels are exported from the start (a dashboard's query finds a
    /// series before the first drop), and the lag is derived when rendered.
    #[test]
    fn labelled_families_start_at_zero_and_the_lag_is_derived() {
        let m = Metrics::default();
        m.height.set(5);
        m.best_peer_height.set(9);
        let text = m.render();
        for line in [
            "atonomi_sync_lag_heights 4",
            "atonomi_mempool_drops_total{reason=\"evicted\"} 0",
            "atonomi_mempool_admissions_total{outcome=\"admitted\"} 0",
            "atonomi_peers_by_kind{kind=\"validator\"} 0",
            "atonomi_peers_by_kind{kind=\"full_node\"} 0",
            "# TYPE atonomi_process_cpu_seconds counter",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in {text}");
        }
        // Ahead of every peer is no lag.
        m.best_peer_height.set(2);
        assert!(m
            .render()
            .lines()
            .any(|l| l == "atonomi_sync_lag_heights 0"));
    }

    /// On this machine the figures are there and plausible.
    #[test]
    fn this_process_is_sampled() {
        let m = Metrics::default();
        let text = m.render();
        let value = |name: &str| -> f64 {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                .unwrap_or_else(|| panic!("{name} in {text}"))
                .parse()
                .unwrap()
        };
        assert!(
            value("atonomi_process_resident_memory_bytes") > 1e6,
            "{text}"
        );
        assert!(value("atonomi_process_open_fds") >= 3.0, "{text}");
        assert!(value("atonomi_process_threads") >= 1.0, "{text}");
    }
}
