//! The running node: the consensus host that drives the sans-I/O [`Engine`] — making
//! each step durable before acting on it, building and executing blocks, committing
//! decisions — next to the mempool and the JSON-RPC server that share its chain.

use crate::chain::{Chain, ChainError, Executed};
use crate::clock::now_ms;
use crate::ingress::{Inbound, NodeEvent, Outbound};
use crate::shared::{read_chain, Shared};
use atonomi_api::file::FileError;
use atonomi_consensus::context::ValidatorSet as ConsensusSet;
use atonomi_consensus::engine::{
    timeout_key, Action, ConsensusTimeout, Engine, EngineConfig, Step,
};
use atonomi_consensus::message::{ConsensusMessage, ProposedBlock, WireProposal};
use atonomi_consensus::validate::{check_proposed_block, Expected};
use atonomi_consensus::CommitCertificate;
use atonomi_primitives::block::Block;
use atonomi_primitives::state::StateKey;
use atonomi_primitives::{codec, Hash, Height, Keypair, Timestamp};
use atonomi_runtime::SigCheck;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How far ahead of the local clock a proposed block's timestamp may be.
const MAX_CLOCK_DRIFT_MS: u64 = 10_000;

#[derive(Debug, Clone)]
pub struct HostConfig {
    pub engine: EngineConfig,
    /// Start a height without transactions only after this long (no empty-block spin).
    pub heartbeat: Duration,
    /// Fault modes for the fault tests (see [`crate::faults`]).
    pub faults: crate::faults::Faults,
    /// On a network: a validator whose guard is empty but whose key has signed before
    /// (its data directory was wiped) waits up to `FRESH_WAIT` to hear the network's
    /// height, then refuses every height it may have signed at before.
    pub wait_for_peers: bool,
    /// A file beside the validator key, written (and synced) before the key's first
    /// signature. It tells a wiped validator (guard empty, marker present: it may have
    /// signed anything up to the network's height) from a new one (no marker: it never
    /// signed, so it may join the current height at once). Without it (dev mode) an
    /// empty guard is taken as possibly wiped.
    pub signed_marker: Option<std::path::PathBuf>,
}

/// Why the consensus host stopped. Each is fatal: the node must not go on deciding
/// with state it cannot read or write.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Storage(#[from] atonomi_storage::StorageError),
    #[error(transparent)]
    File(#[from] atonomi_api::file::FileError),
    #[error("the validator set of height {0} is empty")]
    EmptySet(Height),
    #[error("decided block {0}, whose body is unknown")]
    UnknownBody(Hash),
    #[error("the network parameters in the state are corrupt: {0}")]
    Params(atonomi_primitives::codec::CodecError),
    #[error(transparent)]
    Mempool(#[from] crate::mempool::Stopped),
}

type Result<T, E = HostError> = std::result::Result<T, E>;

/// Why a proposed block is refused (the engine is told it is invalid).
#[derive(Debug, thiserror::Error)]
enum Rejected {
    #[error(transparent)]
    Proposal(#[from] atonomi_consensus::validate::ProposalError),
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error("the validator set of height {0} is empty")]
    EmptySet(Height),
}

/// Writes the marker that the validator key has signed, durably, if it is missing.
fn mark_signed(marker: &std::path::Path) -> Result<()> {
    if marker.exists() {
        return Ok(());
    }
    let f = std::fs::File::create(marker).map_err(FileError::at("writing", marker))?;
    std::io::Write::write_all(&mut &f, b"this validator key has signed consensus messages: an empty guard beside it means lost data\n")
        .and_then(|()| f.sync_all())
        .map_err(FileError::at("writing", marker))?;
    if let Some(dir) = marker.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(FileError::at("syncing", dir))?;
    }
    Ok(())
}

const FRESH_WAIT: Duration = Duration::from_secs(6);

/// Transaction bytes in a block we propose: a gossip message with room to spare for the
/// header and the encoding's length prefixes.
const MAX_PROPOSED_TX_BYTES: usize = atonomi_consensus::net::MAX_GOSSIP_BYTES - (256 << 10);

/// The consensus host: one task, the only writer of the chain.
/// Where the host publishes the height and round in progress (for `atonomi_status`).
pub type RoundSender = tokio::sync::watch::Sender<Option<(Height, u32)>>;

pub struct Host {
    shared: Arc<Shared>,
    /// Where the host publishes its height and round.
    round: RoundSender,
    engine: Engine,
    key: Option<Keypair>,
    config: HostConfig,
    timers: BTreeMap<(i64, u8, u128), (Instant, ConsensusTimeout)>,
    /// Blocks executed at the height in progress, by hash.
    executed: BTreeMap<Hash, Executed>,
    /// Block bodies known at the height in progress (stored before use).
    bodies: BTreeMap<Hash, Block>,
    /// Proposals seen at the height in progress: (round, pol_round, proposer, block).
    proposals: Vec<WireProposal>,
    fed: Vec<(u32, Hash)>,
    /// The next height and since when it waits for transactions or the heartbeat.
    waiting: Option<(Height, Instant)>,
    /// When the height in progress started.
    height_started: Instant,
    booted: Instant,
    /// Whether a peer told us its height (see `HostConfig::wait_for_peers`).
    heard_peers: bool,
    /// Whether the validator key may have signed before (see `HostConfig::signed_marker`).
    key_has_signed: bool,
    /// Our proposal at the height in progress and when it was last sent: sent again
    /// while peers are still at this height (a restarted proposer's first send may
    /// reach nobody).
    own_proposal: Option<(WireProposal, Instant)>,
    /// Times the body of `own_proposal` was re-sent for peers (see `resend_for_peer_at`).
    own_body_resends: u8,
    /// When our messages of the round in progress were last sent again for a peer.
    resent_at: Option<Instant>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

fn consensus_set(chain: &Chain) -> Result<ConsensusSet> {
    let set = chain.next_validator_set()?;
    ConsensusSet::from_state(&set).ok_or(HostError::EmptySet(chain.height().next()))
}

impl Host {
    /// Restores the height in progress from disk: guard, block bodies and WAL replay.
    pub fn start(
        shared: Arc<Shared>,
        key: Option<Keypair>,
        config: HostConfig,
        round: RoundSender,
    ) -> Result<(Host, Step)> {
        let (height, set, guard, wal, bodies) = {
            let chain = read_chain(&shared);
            (
                chain.height().next(),
                consensus_set(&chain)?,
                chain.guard()?,
                chain.wal()?,
                chain.bodies()?,
            )
        };
        let signer = key.as_ref().map(|k| Keypair::from_seed(k.to_seed()));
        // A guard that has signed implies the marker (nodes from before the marker
        // existed get it on their first start with their data intact).
        if let (Some(m), false) = (&config.signed_marker, guard.is_fresh()) {
            mark_signed(m)?;
        }
        let key_has_signed = config.signed_marker.as_ref().is_none_or(|m| m.exists());
        let mut engine = Engine::new(config.engine.clone(), signer, guard, height, set.clone());
        // A height in progress (WAL records exist) resumes at once; otherwise the height
        // waits for transactions like any other.
        let restart = !wal.is_empty();
        let (step, waiting) = if restart {
            tracing::info!(%height, records = wal.len(), "replaying the consensus WAL");
            let mut step = engine.start_height(height, set, true);
            step.merge(engine.replay(&wal));
            (step, None)
        } else {
            (Step::default(), Some((height, Instant::now())))
        };
        let host = Host {
            shared,
            round,
            engine,
            key,
            config,
            timers: BTreeMap::new(),
            executed: BTreeMap::new(),
            bodies,
            proposals: Vec::new(),
            fed: Vec::new(),
            waiting,
            height_started: Instant::now(),
            booted: Instant::now(),
            heard_peers: false,
            key_has_signed,
            own_proposal: None,
            own_body_resends: 0,
            resent_at: None,
        };
        Ok((host, step))
    }

    /// Runs until `shutdown` resolves.
    pub async fn run(
        mut self,
        first: Step,
        mut inbound: mpsc::Receiver<Inbound>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<()> {
        self.perform(first)?;
        tokio::pin!(shutdown);
        loop {
            let next_timer = self.timers.values().map(|(at, _)| *at).min();
            let heartbeat_at = self.waiting.map(|(_, t)| {
                let at = t + self.config.heartbeat;
                if self.gated() {
                    at.max(self.booted + FRESH_WAIT)
                } else {
                    at
                }
            });
            let wake = match (next_timer, heartbeat_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let sleep = tokio::time::sleep_until(
                wake.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600)),
            );
            tokio::select! {
                _ = &mut shutdown => {
                    tracing::info!("consensus host stopping");
                    return Ok(());
                }
                msg = inbound.recv() => match msg {
                    Some(Inbound::Consensus(m)) => self.on_consensus(m)?,
                    Some(Inbound::Block(b)) => self.on_block(b)?,
                    Some(Inbound::Synced { peer, blocks }) => self.on_synced(&peer, blocks)?,
                    Some(Inbound::PeerHeight(h)) => self.on_peer_height(h)?,
                    None => return Ok(()),
                },
                _ = self.shared.mempool.arrived(), if self.waiting.is_some() => {
                    self.maybe_start_height(false)?;
                }
                _ = sleep => self.on_wake()?,
            }
        }
    }

    fn on_wake(&mut self) -> Result<()> {
        let now = Instant::now();
        let due: Vec<_> = self
            .timers
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(k, (_, t))| (*k, *t))
            .collect();
        for (k, t) in due {
            self.timers.remove(&k);
            let step = self.engine.timeout_elapsed(t);
            self.perform(step)?;
        }
        if let Some((_, since)) = self.waiting {
            if now >= since + self.config.heartbeat {
                self.maybe_start_height(true)?;
            }
        }
        Ok(())
    }

    /// Starts the next height when there is something to do: transactions in the
    /// pool, the heartbeat, or peers already at it.
    /// Whether signing must wait to hear the network's height first.
    fn gated(&self) -> bool {
        self.config.wait_for_peers
            && self.key_has_signed
            && !self.heard_peers
            && self.engine.guard().is_fresh()
            && self.booted.elapsed() < FRESH_WAIT
    }

    fn on_peer_height(&mut self, committed: Height) -> Result<()> {
        self.heard_peers = true;
        self.resend_for_peer_at(committed.next())?;
        if self.key.is_none() || !self.key_has_signed {
            return Ok(());
        }
        if let Some(g) = self.engine.adopt_network_height(committed) {
            tracing::warn!(%committed, "this validator's guard has never signed while the network is past genesis: refusing to sign up to the next height (a wiped data directory may have signed there)");
            read_chain(&self.shared).persist_consensus(&[], Some(&g), &[])?;
        }
        self.maybe_start_height(false)
    }

    fn maybe_start_height(&mut self, force: bool) -> Result<()> {
        let Some((height, _)) = self.waiting else {
            return Ok(());
        };
        if self.gated() {
            return Ok(());
        }
        if !force && !self.shared.mempool.has_executable()? {
            return Ok(());
        }
        self.waiting = None;
        self.height_started = Instant::now();
        let set = consensus_set(&read_chain(&self.shared))?;
        let step = self.engine.start_height(height, set, false);
        self.perform(step)?;
        self.feed_values()
    }

    /// The height this node decides next: the one in progress, or the one waiting to
    /// start after a decision (the engine stays at the decided height until then).
    fn undecided(&self) -> Height {
        self.waiting.map_or(self.engine.height(), |(h, _)| h)
    }

    fn on_consensus(&mut self, msg: ConsensusMessage) -> Result<()> {
        if matches!(self.waiting, Some((h, _)) if msg.height() >= h) {
            // Peers moved on: follow without waiting for the heartbeat.
            self.maybe_start_height(true)?;
        }
        if let ConsensusMessage::Proposal(p) = &msg {
            // A decided height's proposals are dropped, never judged again (against the
            // next height they would be "invalid" after having been valid).
            if p.height >= self.undecided() && self.proposals.len() < 256 {
                self.proposals.push(p.clone());
            }
        }
        let step = self.engine.on_message(msg);
        self.perform(step)?;
        self.feed_values()
    }

    fn on_block(&mut self, block: Block) -> Result<()> {
        if block.header.height >= self.undecided() && self.bodies.len() < 64 {
            self.bodies.insert(block.hash(), block);
        }
        self.feed_values()
    }

    /// Blocks decided elsewhere: each certificate goes through the engine (verified
    /// against the validator set of its height), the block is executed, and the engine
    /// decides it like any other.
    fn on_synced(&mut self, peer: &[u8], blocks: Vec<(Block, CommitCertificate)>) -> Result<()> {
        let Ok(peer) = atonomi_consensus::engine::PeerId::from_bytes(peer) else {
            return Ok(());
        };
        for (block, cert) in blocks {
            self.maybe_start_height(true)?;
            if cert.height != self.engine.height() || block.header.height != cert.height {
                continue;
            }
            let bytes = codec::encode(&block);
            let step = self.engine.sync_response(peer, bytes, &cert);
            self.perform(step)?;
        }
        Ok(())
    }

    /// Validates bodies that match proposals of the current height and tells the engine.
    fn feed_values(&mut self) -> Result<()> {
        let height = self.engine.height();
        if self.waiting.is_some() {
            // The engine's height is decided: nothing of it is judged any more.
            return Ok(());
        }
        let candidates: Vec<WireProposal> = self
            .proposals
            .iter()
            .filter(|p| p.height == height)
            .cloned()
            .collect();
        let me = self.key.as_ref().map(Keypair::account);
        for p in candidates {
            // Our own proposal's value is already known to the engine.
            if Some(p.proposer) == me || self.fed.contains(&(p.round, p.block)) {
                continue;
            }
            let Some(block) = self.bodies.get(&p.block).cloned() else {
                continue;
            };
            self.fed.push((p.round, p.block));
            let valid = self.validate(&p, block.clone());
            if let Err(e) = &valid {
                self.shared.metrics.invalid_proposals.inc();
                tracing::warn!(%height, round = p.round, block = %p.block, "invalid proposed block: {e}");
            }
            read_chain(&self.shared).persist_consensus(&[], None, &[block])?;
            let value = ProposedBlock {
                height,
                round: p.round,
                pol_round: p.pol_round,
                proposer: p.proposer,
                block: p.block,
                valid: valid.is_ok(),
            };
            let step = self.engine.proposed_value(value, false);
            self.perform(step)?;
        }
        Ok(())
    }

    fn validate(&mut self, p: &WireProposal, block: Block) -> Result<(), Rejected> {
        if self.executed.contains_key(&p.block) {
            return Ok(());
        }
        let executed = {
            let chain = read_chain(&self.shared);
            let set = chain.next_validator_set()?;
            let cset =
                ConsensusSet::from_state(&set).ok_or(Rejected::EmptySet(chain.height().next()))?;
            let expected = Expected {
                chain_id: &chain.chain_id,
                height: chain.height().next(),
                parent_hash: chain.head_hash(),
                parent_timestamp: chain.head_timestamp(),
                validator_set_hash: set.hash(),
                set: &cset,
                latest_timestamp: Timestamp::new(now_ms() + MAX_CLOCK_DRIFT_MS),
            };
            check_proposed_block(p, &block, &expected)?;
            let preverified = self.shared.preverified(&block.txs);
            chain.execute(block, &preverified)?
        };
        self.executed.insert(p.block, executed);
        Ok(())
    }

    /// Makes the step durable, then performs its actions (and those of the steps they
    /// lead to), in order.
    fn perform(&mut self, step: Step) -> Result<()> {
        let mut queue = VecDeque::from([step]);
        while let Some(step) = queue.pop_front() {
            if let Some(e) = &step.error {
                tracing::debug!("consensus: {e}");
            }
            if step.needs_sync() {
                if step.guard.is_some() && !self.key_has_signed {
                    // Before the first signature leaves, the key is marked as having signed.
                    if let Some(m) = &self.config.signed_marker {
                        mark_signed(m)?;
                    }
                    self.key_has_signed = true;
                }
                read_chain(&self.shared).persist_consensus(&step.wal, step.guard.as_ref(), &[])?;
            }
            for action in step.actions {
                if let Some(next) = self.act(action)? {
                    queue.push_back(next);
                }
            }
        }
        if self.waiting.is_some() {
            self.maybe_start_height(false)?;
            self.feed_values()?;
        }
        Ok(())
    }

    fn act(&mut self, action: Action) -> Result<Option<Step>> {
        match action {
            Action::Broadcast(msg) => {
                #[cfg(any(debug_assertions, feature = "fault-injection"))]
                if self.config.faults.equivocate {
                    self.equivocate(&msg)?;
                }
                let me = self.key.as_ref().map(Keypair::account);
                if let ConsensusMessage::Proposal(p) = &msg {
                    if Some(p.proposer) == me {
                        #[cfg(any(debug_assertions, feature = "fault-injection"))]
                        if self.config.faults.crash_after_signing_proposal {
                            tracing::error!(height = %p.height, round = p.round, block = %p.block, "fault test: aborting after signing our proposal, before sending it");
                            std::process::abort();
                        }
                        tracing::info!(height = %p.height, round = p.round, block = %p.block, "sending our proposal");
                        self.own_proposal = Some((p.clone(), Instant::now()));
                        self.own_body_resends = 0;
                    }
                }
                if let ConsensusMessage::Proposal(p) = &msg {
                    if self.proposals.len() < 256 {
                        self.proposals.push(p.clone());
                    }
                }
                if let ConsensusMessage::Proposal(p) = &msg {
                    if let Some(b) = self.bodies.get(&p.block) {
                        let _ = self.shared.outbound.send(Outbound::Block(b.clone()));
                    }
                }
                let _ = self.shared.outbound.send(Outbound::Consensus(msg));
                Ok(None)
            }
            Action::ScheduleTimeout { timeout, after } => {
                self.timers
                    .insert(timeout_key(&timeout), (Instant::now() + after, timeout));
                Ok(None)
            }
            Action::CancelTimeout(t) => {
                self.timers.remove(&timeout_key(&t));
                Ok(None)
            }
            Action::CancelAllTimeouts => {
                self.timers.clear();
                Ok(None)
            }
            Action::GetValue { height, round, .. } => self.build(height, round),
            Action::RestreamProposal { block, .. } => {
                if let Some(b) = self.bodies.get(&block) {
                    let _ = self.shared.outbound.send(Outbound::Block(b.clone()));
                }
                Ok(None)
            }
            Action::SyncValue {
                height,
                round,
                proposer,
                block,
                block_bytes,
            } => {
                let valid = match Block::from_bytes(&block_bytes, crate::chain::MAX_BLOCK_BYTES) {
                    Ok(b) if b.hash() == block => {
                        let preverified = self.shared.preverified(&b.txs);
                        let result = read_chain(&self.shared).execute(b.clone(), &preverified);
                        match result {
                            Ok(executed) => {
                                read_chain(&self.shared).persist_consensus(
                                    &[],
                                    None,
                                    std::slice::from_ref(&b),
                                )?;
                                self.bodies.insert(block, b);
                                self.executed.insert(block, executed);
                                true
                            }
                            Err(e) => {
                                tracing::warn!(%height, "synced block does not execute: {e}");
                                false
                            }
                        }
                    }
                    _ => false,
                };
                let value = ProposedBlock {
                    height,
                    round,
                    pol_round: None,
                    proposer,
                    block,
                    valid,
                };
                Ok(Some(self.engine.proposed_value(value, true)))
            }
            Action::SyncRejected {
                peer,
                height,
                reason,
            } => {
                tracing::warn!(%peer, %height, "rejected a synced block: {reason}");
                Ok(None)
            }
            Action::RoundStarted {
                height,
                round,
                proposer,
            } => {
                tracing::debug!(%height, round, %proposer, "round started");
                self.round.send_replace(Some((height, round)));
                self.shared.metrics.round.set(i64::from(round));
                Ok(None)
            }
            Action::SignRefused(e) => {
                tracing::warn!("refused to sign: {e}");
                self.shared.metrics.sign_refused.inc();
                Ok(None)
            }
            Action::Decided {
                certificate,
                evidence,
            } => {
                if !evidence.is_empty() {
                    read_chain(&self.shared).record_evidence(certificate.height, &evidence)?;
                    self.shared.metrics.equivocations.inc_by(
                        (evidence.double_votes.len() + evidence.double_proposals.len()) as u64,
                    );
                    tracing::warn!(height = %certificate.height, double_votes = evidence.double_votes.len(), double_proposals = evidence.double_proposals.len(), "equivocation evidence");
                }
                self.commit(certificate)?;
                Ok(None)
            }
        }
    }

    /// Byzantine test mode: sends a conflicting twin of each of our messages.
    #[cfg(any(debug_assertions, feature = "fault-injection"))]
    fn equivocate(&mut self, msg: &ConsensusMessage) -> Result<()> {
        let Some(key) = &self.key else { return Ok(()) };
        let shared = &self.shared;
        let twins =
            crate::faults::conflicting_twin(msg, key, &self.config.engine.chain_id, || {
                let block = read_chain(shared)
                    .build(
                        vec![],
                        key.account(),
                        Timestamp::new(now_ms() + 1),
                        SigCheck::Trusted,
                    )?
                    .block;
                Ok::<_, HostError>(block)
            })?;
        for m in twins {
            let _ = shared.outbound.send(m);
        }
        Ok(())
    }

    /// The proposal this validator signed at (height, round) before it restarted, from
    /// the WAL (the engine records it in the step that sends it).
    fn signed_before(&self, height: Height, round: u32) -> Result<Option<WireProposal>> {
        let Some(me) = self.key.as_ref().map(Keypair::account) else {
            return Ok(None);
        };
        let wal = read_chain(&self.shared).wal()?;
        Ok(wal.into_iter().find_map(|r| match r.entry {
            atonomi_consensus::message::WalEntry::Proposal(p)
                if r.height == height
                    && p.height == height
                    && p.round == round
                    && p.proposer == me =>
            {
                Some(p)
            }
            _ => None,
        }))
    }

    /// A peer announced it is still deciding `height`, ours in progress: it may have
    /// missed what we sent while it was down or not yet connected (gossip reaches only
    /// connected peers, and Malachite re-sends votes only every few seconds). Our
    /// proposal and our votes of the current round go out again, at most once a second.
    fn resend_for_peer_at(&mut self, height: Height) -> Result<()> {
        let current = *self.round.borrow();
        let Some((h, round)) = current else {
            return Ok(());
        };
        if self.waiting.is_some()
            || h != height
            || self.engine.height() != height
            || self
                .resent_at
                .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return Ok(());
        }
        let Some(me) = self.key.as_ref().map(Keypair::account) else {
            return Ok(());
        };
        self.resent_at = Some(Instant::now());
        if let Some((p, _)) = self.own_proposal.clone() {
            if p.height == height && p.round == round {
                // The body too, twice: a first send may have reached nobody (a restarted
                // node before its peers connected); after that gossipsub suppresses the
                // same bytes as a duplicate anyway.
                let with_body = self.own_body_resends < 2;
                self.own_body_resends = self.own_body_resends.saturating_add(1);
                self.send_own_proposal(&p, with_body);
            }
        }
        let wal = read_chain(&self.shared).wal()?;
        for r in wal {
            if let atonomi_consensus::message::WalEntry::Vote(v) = r.entry {
                if v.validator == me && v.height == height && v.round == round {
                    let _ = self
                        .shared
                        .outbound
                        .send(Outbound::Consensus(ConsensusMessage::Vote(v)));
                }
            }
        }
        tracing::debug!(%height, round, "sent our proposal and votes of this round again for a peer at this height");
        Ok(())
    }

    /// Sends our proposal of the height in progress again, with its body when
    /// `with_body` (gossip carries a body once per process: the same bytes published
    /// again are suppressed as a duplicate, so only a restarted node sends it again).
    fn send_own_proposal(&mut self, p: &WireProposal, with_body: bool) {
        if let (true, Some(b)) = (with_body, self.bodies.get(&p.block)) {
            let _ = self.shared.outbound.send(Outbound::Block(b.clone()));
        }
        let _ = self
            .shared
            .outbound
            .send(Outbound::Consensus(ConsensusMessage::Proposal(p.clone())));
        self.own_proposal = Some((p.clone(), Instant::now()));
    }

    fn build(&mut self, height: Height, round: u32) -> Result<Option<Step>> {
        if self.key.is_none() {
            return Ok(None);
        }
        // After a restart, never a second, different proposal for a (height, round) this
        // validator already signed: it sends the one it signed (the engine, replayed,
        // knows it too; the guard would refuse any other).
        if let Some(p) = self.signed_before(height, round)? {
            tracing::info!(%height, round, block = %p.block, "sending again the proposal this validator signed before it restarted");
            if self.proposals.len() < 256 {
                self.proposals.push(p.clone());
            }
            self.own_body_resends = 0;
            self.send_own_proposal(&p, true);
            return Ok(None);
        }
        let Some(key) = &self.key else {
            return Ok(None);
        };
        let executed = {
            let chain = read_chain(&self.shared);
            if chain.height().next() != height {
                return Ok(None);
            }
            let params: atonomi_primitives::Params =
                match chain.db().get(&StateKey::Params.to_bytes())? {
                    Some(b) => codec::decode(&b, 1 << 20).map_err(HostError::Params)?,
                    None => atonomi_primitives::Params::default(),
                };
            // A block must also fit one gossip message (the chain's max_block_bytes may be
            // set above it): otherwise the proposal could never reach the other validators.
            let max_bytes = (params.max_block_bytes as usize).min(MAX_PROPOSED_TX_BYTES);
            let txs = self
                .shared
                .mempool
                .select(params.max_block_txs as usize, max_bytes)?;
            chain.build(
                txs,
                key.account(),
                Timestamp::new(now_ms()),
                SigCheck::Trusted,
            )?
        };
        let hash = executed.block.hash();
        tracing::info!(%height, round, block = %hash, txs = executed.block.txs.len(), "proposing");
        read_chain(&self.shared).persist_consensus(
            &[],
            None,
            std::slice::from_ref(&executed.block),
        )?;
        self.bodies.insert(hash, executed.block.clone());
        self.executed.insert(hash, executed);
        Ok(Some(self.engine.propose(height, round, hash)))
    }

    fn commit(&mut self, certificate: CommitCertificate) -> Result<()> {
        let mut executed = match self.executed.remove(&certificate.block) {
            Some(e) => e,
            None => {
                let block = self
                    .bodies
                    .get(&certificate.block)
                    .cloned()
                    .ok_or(HostError::UnknownBody(certificate.block))?;
                let preverified = self.shared.preverified(&block.txs);
                read_chain(&self.shared).execute(block, &preverified)?
            }
        };
        let txs = executed.block.txs.len();
        let height = certificate.height;
        let hash = certificate.block;
        let in_block: std::collections::BTreeSet<Hash> = executed
            .block
            .txs
            .iter()
            .map(|t| atonomi_primitives::SignedTransaction::hash_of(t))
            .collect();
        let nonces = std::mem::take(&mut executed.nonces);
        {
            let mut chain = self.shared.chain.write().unwrap_or_else(|e| e.into_inner());
            chain.commit(executed, &certificate)?;
        }
        // After the write (see `mempool::actor` on nonces), and before anything the
        // host asks the pool about the next height.
        self.shared.mempool.committed(height, nonces, in_block)?;
        let m = &self.shared.metrics;
        m.height.set(height.get() as i64);
        m.blocks.inc();
        m.txs.inc_by(txs as u64);
        m.commit_seconds
            .observe(self.height_started.elapsed().as_secs_f64());
        tracing::info!(%height, block = %hash, txs, "committed");
        let _ = self
            .shared
            .events
            .send(NodeEvent::Committed { height, hash, txs });
        self.executed.clear();
        self.bodies.retain(|_, b| b.header.height > height);
        self.proposals.retain(|p| p.height > height);
        self.fed.clear();
        self.own_proposal = None;
        // The next height starts after the rest of this step's actions (they belong to
        // the decided height: a late CancelTimeout must not hit the new height's timers);
        // `perform` does it once its queue is empty.
        self.waiting = Some((height.next(), Instant::now()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atonomi_consensus::context::{Address, BlockValue, CHeight, ConsensusProposal};

    fn shared(dir: &std::path::Path) -> Arc<Shared> {
        crate::shared::for_tests(dir)
    }

    /// A proposal of a height this node already decided arrives late (re-streamed, or
    /// the node decided by sync): it is dropped, not judged against the next height —
    /// before, the node judged it invalid after having judged its round valid, and
    /// Malachite logged "changed its mind" at ERROR.
    #[test]
    fn proposals_of_a_decided_height_are_dropped_not_judged_again() {
        let dir = tempfile::tempdir().unwrap();
        let shared = shared(dir.path());
        let key = atonomi_genesis::dev::key("validator");
        let config = HostConfig {
            engine: EngineConfig::new(read_chain(&shared).chain_id.clone()),
            heartbeat: Duration::from_secs(3600),
            faults: Default::default(),
            wait_for_peers: false,
            signed_marker: None,
        };
        let round = tokio::sync::watch::channel(None).0;
        let (mut host, first) = Host::start(shared.clone(), Some(key), config, round).unwrap();
        host.perform(first).unwrap();
        // The single dev validator decides height 1 on its own.
        host.maybe_start_height(true).unwrap();
        assert_eq!(read_chain(&shared).height(), Height::new(1));
        let block = read_chain(&shared).block(Height::new(1)).unwrap().unwrap();
        let late = Keypair::from_label("a late proposer");
        let chain_id = read_chain(&shared).chain_id.clone();
        let proposal = ConsensusProposal {
            height: CHeight(Height::new(1)),
            round: malachitebft_core_types::Round::new(1),
            value: BlockValue(block.hash()),
            pol_round: malachitebft_core_types::Round::Nil,
            proposer: Address(late.account()),
        };
        let sig = atonomi_consensus::message::sign_proposal(&chain_id, &late, &proposal).unwrap();
        let wire =
            WireProposal::from_mc(&malachitebft_core_types::SignedMessage::new(proposal, sig))
                .unwrap();
        host.on_block(block).unwrap();
        host.on_consensus(ConsensusMessage::Proposal(wire)).unwrap();
        assert_eq!(
            shared.metrics.invalid_proposals.get(),
            0,
            "a proposal of the decided height was judged again"
        );
    }
}
