//! The network's reference auditor (`atonomi auditor`), an ordinary client of a node.
//!
//! It reads every committed height's events (`atonomi_getEvents`: registrations,
//! payments, interaction reports, ownership transfers, refused calls) and the node's
//! lookup log (`atonomi_getLookupCounts`: validate-device calls per device), keeps its
//! model in its own state file, and at the end of every epoch (`--epoch-blocks`
//! heights) writes the scores that changed in one `WriteReputation` transaction.
//!
//! **Scoring rule** (integers, deterministic for the same inputs). A device starts at
//! its manufacturer's default score. At the end of each epoch these anomalies are
//! checked; each one found divides the score by 4:
//! - *lookup flood*: more validate-device calls as requester in the epoch than
//!   `max(100, 10 × the median of its manufacturer's devices)`;
//! - *failure reports*: failed interactions reported by at least 3 distinct peers
//!   within the window (`--window-blocks`);
//! - *refused payments*: at least 3 of its `Pay` calls failed within the window;
//! - *transfer burst*: at least 3 ownership transfers within the window.
//!
//! Reports that triggered an anomaly are consumed (counted once). A device with no
//! anomaly and ordinary activity in the epoch (a payment made or received, a
//! successful interaction) gains 250, up to 10,000. Direction follows the change.
//! Below the network's `min_reputation` a device can no longer pay (the runtime
//! enforces it).
//!
//! **Restart safety**: the state file (written atomically: temporary file, fsync,
//! rename) holds the next height to read and, before a write is broadcast, the exact
//! signed transaction. After a restart a pending write is looked up by hash and only
//! re-sent (the same bytes, so the same hash and nonce) if it is not on chain: it is
//! never written twice. Memory is bounded: at most 100,000 devices are modelled; the
//! least recently active are dropped first.

use atonomi_api::file::FileError;
use atonomi_client::views::{TxEvent, TxLookup};
use atonomi_client::{Answered, AtonomiApiClient, Node};
use atonomi_primitives::state::Subject;
use atonomi_primitives::tx::{Call, Outcome, ReputationWrite};
use atonomi_primitives::{
    AuditorId, ChainId, DeviceId, Event, Hash, Keypair, Score, Transaction, TxStatus,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why the auditor stopped, or why one of its steps failed (it retries those).
#[derive(Debug, thiserror::Error)]
pub enum AuditorError {
    #[error(transparent)]
    Node(#[from] atonomi_client::Error),
    #[error(transparent)]
    Key(#[from] atonomi_api::keyfile::KeyFileError),
    #[error("{} is not an auditor state file: {error}", path.display())]
    StateFile {
        path: PathBuf,
        error: serde_json::Error,
    },
    #[error(transparent)]
    File(#[from] atonomi_api::file::FileError),
    #[error("reputation write {0} not final after 60 s")]
    NotFinal(atonomi_primitives::Hash),
    #[error("--epoch-blocks and --window-blocks must be at least 1")]
    Windows,
    #[error("auditor {id} is not registered on this chain: {error}")]
    NotRegistered {
        id: AuditorId,
        error: atonomi_client::Error,
    },
    #[error("{key} is not a key of auditor {id}")]
    NotItsKey {
        key: atonomi_primitives::AccountId,
        id: AuditorId,
    },
}

type Result<T, E = AuditorError> = std::result::Result<T, E>;

const MAX_MODEL: usize = 100_000;
const FLOOD_FLOOR: u64 = 100;
const FLOOD_FACTOR: u64 = 10;
const REPORTS_FOR_ANOMALY: usize = 3;
const UPGRADE: u32 = 250;
const MAX_SCORE: u32 = 10_000;
/// Entries per `WriteReputation` transaction (the chain's `max_batch` is larger).
const MAX_WRITES_PER_TX: usize = 1_000;
/// Recent events kept per device (older ones leave the window anyway).
const MAX_RECENT: usize = 32;

#[derive(Debug, Clone)]
pub struct AuditorConfig {
    pub rpc: String,
    pub key: PathBuf,
    pub auditor: AuditorId,
    pub state: PathBuf,
    pub epoch_blocks: u64,
    pub window_blocks: u64,
    pub rep_type: String,
    pub poll: Duration,
}

/// What the auditor knows of one device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Model {
    pub manufacturer: u32,
    /// The auditor's current opinion: its last write, or the manufacturer's default.
    pub score: u32,
    pub last_seen: u64,
    pub epoch_lookups: u64,
    pub epoch_active: bool,
    /// (reporter, height) of failed-interaction reports about this device.
    pub failure_reports: Vec<(DeviceId, u64)>,
    /// Heights of this device's refused payments.
    pub refused: Vec<u64>,
    /// Heights of its ownership transfers.
    pub transfers: Vec<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    tx_hash: Hash,
    tx_hex: String,
    scores: Vec<(DeviceId, u32)>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    next_height: u64,
    lookup_run: String,
    lookups_seen: BTreeMap<DeviceId, u64>,
    devices: BTreeMap<DeviceId, Model>,
    pending: Option<Pending>,
    writes: u64,
}

/// The anomalies of `m` at the end of an epoch at `height`, given the flood threshold
/// of its peer group.
pub fn anomalies(m: &Model, height: u64, window: u64, flood_threshold: u64) -> Vec<&'static str> {
    let recent = |h: &u64| h.saturating_add(window) > height;
    let mut out = Vec::new();
    if m.epoch_lookups > flood_threshold {
        out.push("lookup_flood");
    }
    let reporters: BTreeSet<DeviceId> = m
        .failure_reports
        .iter()
        .filter(|(_, h)| recent(h))
        .map(|(d, _)| *d)
        .collect();
    if reporters.len() >= REPORTS_FOR_ANOMALY {
        out.push("failure_reports");
    }
    if m.refused.iter().filter(|h| recent(h)).count() >= REPORTS_FOR_ANOMALY {
        out.push("refused_payments");
    }
    if m.transfers.iter().filter(|h| recent(h)).count() >= REPORTS_FOR_ANOMALY {
        out.push("transfer_burst");
    }
    out
}

/// The new score after an epoch: each anomaly divides by 4; otherwise ordinary activity
/// earns [`UPGRADE`] up to [`MAX_SCORE`].
pub fn rescore(m: &Model, anomalies: &[&str]) -> u32 {
    if !anomalies.is_empty() {
        let shift = 2 * anomalies.len() as u32;
        return m.score.checked_shr(shift).unwrap_or(0);
    }
    if m.epoch_active {
        return m.score.saturating_add(UPGRADE).min(MAX_SCORE.max(m.score));
    }
    m.score
}

/// `max(FLOOD_FLOOR, FLOOD_FACTOR × median)` of the epoch's lookups in a group.
pub fn flood_threshold(mut lookups: Vec<u64>) -> u64 {
    lookups.sort_unstable();
    let median = lookups.get(lookups.len() / 2).copied().unwrap_or(0);
    FLOOD_FLOOR.max(median.saturating_mul(FLOOD_FACTOR))
}

fn push_bounded<T>(v: &mut Vec<T>, x: T) {
    if v.len() >= MAX_RECENT {
        v.remove(0);
    }
    v.push(x);
}

struct Auditor {
    cfg: AuditorConfig,
    key: Keypair,
    node: Node,
    chain_id: ChainId,
    state: State,
    defaults: BTreeMap<u32, u32>,
}

fn load_state(path: &Path) -> Result<State> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| AuditorError::StateFile {
            path: path.to_path_buf(),
            error,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State {
            next_height: 1,
            ..State::default()
        }),
        Err(e) => Err(FileError::at("reading", path)(e).into()),
    }
}

/// Writes `state` atomically: a crash leaves the old file or the new one.
fn save_state(path: &Path, state: &State) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let json = serde_json::to_vec(state).map_err(|error| AuditorError::StateFile {
        path: path.to_path_buf(),
        error,
    })?;
    std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(&json).and_then(|()| f.sync_all()))
        .map_err(FileError::at("writing", &tmp))?;
    std::fs::rename(&tmp, path).map_err(FileError::at("replacing", path))?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

impl Auditor {
    async fn model(&mut self, device: DeviceId, height: u64) -> Result<&mut Model> {
        if !self.state.devices.contains_key(&device) {
            let model = self.new_model(device).await?;
            if self.state.devices.len() >= MAX_MODEL {
                let oldest = self
                    .state
                    .devices
                    .iter()
                    .min_by_key(|(_, m)| m.last_seen)
                    .map(|(d, _)| *d);
                if let Some(d) = oldest {
                    self.state.devices.remove(&d);
                }
            }
            self.state.devices.insert(device, model);
        }
        let m = self.state.devices.entry(device).or_default();
        m.last_seen = height;
        Ok(m)
    }

    /// A device seen for the first time starts at its manufacturer's default score.
    async fn new_model(&mut self, device: DeviceId) -> Result<Model> {
        let node = &self.node;
        let d = node.rpc().get_device(device).await.or_node(node)?;
        let manufacturer = d.manufacturer.get();
        let score = match self.defaults.get(&manufacturer) {
            Some(s) => *s,
            None => {
                let m = node
                    .rpc()
                    .get_manufacturer(manufacturer)
                    .await
                    .or_node(node)?;
                let s = m.default_score.get();
                self.defaults.insert(manufacturer, s);
                s
            }
        };
        Ok(Model {
            manufacturer,
            score,
            ..Model::default()
        })
    }

    async fn on_event(&mut self, height: u64, e: &TxEvent) -> Result<()> {
        let event = match e {
            TxEvent::Failed { failed, .. } => {
                if let Call::Pay { from_device, .. } = &failed.call {
                    push_bounded(&mut self.model(*from_device, height).await?.refused, height);
                }
                return Ok(());
            }
            TxEvent::Event { event, .. } => event,
        };
        match event {
            Event::DeviceRegistered { device, .. } => {
                self.model(*device, height).await?;
            }
            Event::Paid {
                from_device,
                to_device,
                ..
            } => {
                for d in [from_device, to_device] {
                    self.model(*d, height).await?.epoch_active = true;
                }
            }
            Event::InteractionReported {
                device,
                peer,
                outcome,
                ..
            } => {
                if *outcome == Outcome::Failure {
                    push_bounded(
                        &mut self.model(*peer, height).await?.failure_reports,
                        (*device, height),
                    );
                } else {
                    self.model(*peer, height).await?.epoch_active = true;
                    self.model(*device, height).await?.epoch_active = true;
                }
            }
            Event::DeviceTransferred { device, .. } => {
                push_bounded(&mut self.model(*device, height).await?.transfers, height);
            }
            _ => {}
        }
        Ok(())
    }

    /// Adds the lookups made since the last poll to the epoch's counts.
    async fn poll_lookups(&mut self, height: u64) -> Result<()> {
        let v = self
            .node
            .rpc()
            .get_lookup_counts(Some(10_000))
            .await
            .or_node(&self.node)?;
        if v.run != self.state.lookup_run {
            self.state.lookup_run = v.run;
            self.state.lookups_seen.clear();
        }
        for c in v.counts {
            let (d, n) = (c.device, c.as_requester);
            let seen = self.state.lookups_seen.insert(d, n).unwrap_or(0);
            let delta = n.saturating_sub(seen);
            if delta > 0 && self.state.devices.contains_key(&d) {
                self.model(d, height).await?.epoch_lookups += delta;
            }
        }
        Ok(())
    }

    /// Closes the epoch ending at `height`: scores, one write, a clean slate.
    async fn close_epoch(&mut self, height: u64) -> Result<()> {
        self.poll_lookups(height).await?;
        let mut groups: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
        for m in self.state.devices.values() {
            groups
                .entry(m.manufacturer)
                .or_default()
                .push(m.epoch_lookups);
        }
        let thresholds: BTreeMap<u32, u64> = groups
            .into_iter()
            .map(|(k, v)| (k, flood_threshold(v)))
            .collect();
        let mut scores = Vec::new();
        for (d, m) in self.state.devices.iter_mut() {
            let found = anomalies(
                m,
                height,
                self.cfg.window_blocks,
                thresholds
                    .get(&m.manufacturer)
                    .copied()
                    .unwrap_or(FLOOD_FLOOR),
            );
            let new = rescore(m, &found);
            if !found.is_empty() {
                tracing::info!(device = %d, ?found, from = m.score, to = new, "anomalous device downgraded");
                // Counted once: the reports behind each anomaly found are consumed.
                if found.contains(&"failure_reports") {
                    m.failure_reports.clear();
                }
                if found.contains(&"refused_payments") {
                    m.refused.clear();
                }
                if found.contains(&"transfer_burst") {
                    m.transfers.clear();
                }
            }
            if new != m.score {
                scores.push((*d, new));
            }
            m.epoch_lookups = 0;
            m.epoch_active = false;
        }
        for chunk in scores.chunks(MAX_WRITES_PER_TX) {
            self.write(chunk.to_vec()).await?;
        }
        Ok(())
    }

    async fn write(&mut self, scores: Vec<(DeviceId, u32)>) -> Result<()> {
        let entries: Vec<ReputationWrite> = scores
            .iter()
            .filter_map(|(d, s)| {
                let old = self.state.devices.get(d).map_or(*s, |m| m.score);
                let direction = match s.cmp(&old) {
                    std::cmp::Ordering::Greater => atonomi_primitives::state::Direction::Up,
                    std::cmp::Ordering::Less => atonomi_primitives::state::Direction::Down,
                    std::cmp::Ordering::Equal => atonomi_primitives::state::Direction::Steady,
                };
                Some(ReputationWrite {
                    subject: Subject::Device(*d),
                    rep_type: self.cfg.rep_type.clone(),
                    score: Score::new(*s)?,
                    direction,
                })
            })
            .collect();
        let nonce = self.node.next_nonce(self.key.account()).await?;
        let tx = Transaction {
            chain_id: self.chain_id.clone(),
            signer: self.key.account(),
            nonce,
            max_fee: None,
            call: Call::WriteReputation {
                auditor: self.cfg.auditor,
                entries,
            },
        }
        .sign(&self.key);
        // Durable before it leaves: after a crash the same bytes are found or re-sent.
        self.state.pending = Some(Pending {
            tx_hash: tx.hash(),
            tx_hex: hex::encode(tx.to_bytes()),
            scores,
        });
        save_state(&self.cfg.state, &self.state)?;
        self.settle_pending().await
    }

    /// Brings a pending write to an end: found on chain (applied if it succeeded), or
    /// re-sent and awaited.
    async fn settle_pending(&mut self) -> Result<()> {
        let Some(p) = self.state.pending.clone() else {
            return Ok(());
        };
        let mut sent = false;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(TxLookup::Final { receipt }) =
                self.node.rpc().get_transaction(p.tx_hash).await
            {
                if receipt.status == TxStatus::Success {
                    for (d, s) in &p.scores {
                        if let Some(m) = self.state.devices.get_mut(d) {
                            m.score = *s;
                        }
                    }
                    self.state.writes += 1;
                    tracing::info!(tx = %p.tx_hash, entries = p.scores.len(), "reputation written");
                } else {
                    tracing::warn!(tx = %p.tx_hash, status = %receipt.status, "reputation write failed on chain");
                }
                self.state.pending = None;
                return save_state(&self.cfg.state, &self.state);
            }
            if !sent {
                if let Err(e) = self
                    .node
                    .rpc()
                    .send_transaction(p.tx_hex.clone())
                    .await
                    .or_node(&self.node)
                {
                    // "duplicate" (already in the mempool) is fine; a used nonce means another
                    // transaction of ours took it: the write is lost, the next epoch redoes it.
                    let msg = e.to_string();
                    if msg.contains("nonce") && msg.contains("used") {
                        tracing::warn!(tx = %p.tx_hash, "pending write superseded: {msg}");
                        self.state.pending = None;
                        return save_state(&self.cfg.state, &self.state);
                    }
                    tracing::debug!("send: {msg}");
                }
                sent = true;
            }
            if tokio::time::Instant::now() > deadline {
                return Err(AuditorError::NotFinal(p.tx_hash));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn step(&mut self) -> Result<bool> {
        let head = self
            .node
            .rpc()
            .status()
            .await
            .or_node(&self.node)?
            .height
            .get();
        if self.state.next_height > head {
            return Ok(false);
        }
        while self.state.next_height <= head {
            let h = self.state.next_height;
            let v = self.node.rpc().get_events(h).await.or_node(&self.node)?;
            for e in &v.events {
                self.on_event(h, e).await?;
            }
            if h.is_multiple_of(self.cfg.epoch_blocks) {
                self.close_epoch(h).await?;
            }
            self.state.next_height = h + 1;
        }
        save_state(&self.cfg.state, &self.state)?;
        Ok(true)
    }
}

/// Runs the auditor until `shutdown` completes (the command passes SIGINT/SIGTERM).
pub async fn run(
    cfg: AuditorConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    if cfg.epoch_blocks == 0 || cfg.window_blocks == 0 {
        return Err(AuditorError::Windows);
    }
    let key = atonomi_api::keyfile::read(&cfg.key)?;
    let node = Node::connect(&cfg.rpc)?;
    let chain_id: ChainId = node.chain_id().await?;
    let auditor = node
        .rpc()
        .get_auditor(cfg.auditor.get())
        .await
        .or_node(&node)
        .map_err(|error| AuditorError::NotRegistered {
            id: cfg.auditor,
            error,
        })?;
    if !auditor.keys.contains(&key.account()) {
        return Err(AuditorError::NotItsKey {
            key: key.account(),
            id: cfg.auditor,
        });
    }
    let state = load_state(&cfg.state)?;
    tracing::info!(auditor = %cfg.auditor, from = state.next_height, devices = state.devices.len(), "auditor starting");
    let mut a = Auditor {
        cfg,
        key,
        node,
        chain_id,
        state,
        defaults: BTreeMap::new(),
    };
    a.settle_pending().await?;
    tokio::pin!(shutdown);
    loop {
        match a.step().await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => tracing::warn!("auditor step: {e} (retrying)"),
        }
        tokio::select! {
            _ = &mut shutdown => {
                save_state(&a.cfg.state, &a.state)?;
                tracing::info!(writes = a.state.writes, "auditor stopped");
                return Ok(());
            }
            _ = tokio::time::sleep(a.cfg.poll) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(score: u32) -> Model {
        Model {
            manufacturer: 1,
            score,
            ..Model::default()
        }
    }

    #[test]
    fn each_anomaly_divides_by_four_and_activity_upgrades() {
        let mut m = model(5_000);
        m.epoch_lookups = 500;
        for i in 0..3u8 {
            m.failure_reports.push((DeviceId::new([i; 32]), 10));
        }
        let found = anomalies(&m, 12, 100, flood_threshold(vec![0, 2, 3, 500]));
        assert_eq!(found, vec!["lookup_flood", "failure_reports"]);
        assert_eq!(rescore(&m, &found), 312);

        let mut calm = model(5_000);
        calm.epoch_active = true;
        assert!(anomalies(&calm, 12, 100, 100).is_empty());
        assert_eq!(rescore(&calm, &[]), 5_250);
        calm.score = 9_900;
        assert_eq!(rescore(&calm, &[]), 10_000);
        calm.epoch_active = false;
        assert_eq!(rescore(&calm, &[]), 9_900, "no activity, no change");
    }

    #[test]
    fn reports_count_per_distinct_peer_within_the_window() {
        let mut m = model(5_000);
        let a = DeviceId::new([1; 32]);
        for _ in 0..5 {
            m.failure_reports.push((a, 10));
        }
        assert!(
            anomalies(&m, 12, 100, 100).is_empty(),
            "one peer reporting five times is not three peers"
        );
        m.failure_reports.push((DeviceId::new([2; 32]), 10));
        m.failure_reports.push((DeviceId::new([3; 32]), 10));
        assert_eq!(anomalies(&m, 12, 100, 100), vec!["failure_reports"]);
        assert!(
            anomalies(&m, 200, 100, 100).is_empty(),
            "old reports leave the window"
        );
        m.transfers = vec![50, 51, 52];
        m.refused = vec![50, 51, 52];
        assert_eq!(
            anomalies(&m, 60, 100, 100),
            vec!["failure_reports", "refused_payments", "transfer_burst"]
        );
    }

    #[test]
    fn the_flood_threshold_follows_the_peer_group() {
        assert_eq!(flood_threshold(vec![]), FLOOD_FLOOR);
        assert_eq!(flood_threshold(vec![1, 2, 3]), FLOOD_FLOOR);
        assert_eq!(flood_threshold(vec![40, 50, 60, 10_000]), 600);
    }

    #[test]
    fn state_files_are_replaced_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("auditor.json");
        let mut s = State {
            next_height: 7,
            ..State::default()
        };
        s.devices.insert(DeviceId::new([1; 32]), model(42));
        save_state(&p, &s).unwrap();
        let back = load_state(&p).unwrap();
        assert_eq!(back.next_height, 7);
        assert_eq!(back.devices[&DeviceId::new([1; 32])].score, 42);
        assert!(!p.with_extension("tmp").exists());
        std::fs::write(&p, b"{not json").unwrap();
        assert!(load_state(&p).is_err());
    }
}
