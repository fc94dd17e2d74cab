//! The host's run loop: inputs from the network, the mempool's wake-up and timers
//! go to the engine; each step it returns is made durable, then acted on.

use super::{consensus_set, mark_signed, Host, HostError, Result, FRESH_WAIT};
use crate::clock::now_ms;
use crate::ingress::{Inbound, Outbound};
use atonomi_consensus::context::ValidatorSet as ConsensusSet;
use atonomi_consensus::engine::{timeout_key, Action, Engine, Step};
use atonomi_consensus::message::{ConsensusMessage, ProposedBlock};
use atonomi_consensus::CommitCertificate;
use atonomi_primitives::block::Block;
use atonomi_primitives::{codec, Height, Keypair, Timestamp};
use atonomi_runtime::SigCheck;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

impl Host {
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
                _ = self.mempool.arrived(), if self.waiting.is_some() => {
                    self.maybe_start_height(false)?;
                }
                _ = sleep => self.on_wake()?,
            }
        }
    }

    pub(super) fn on_wake(&mut self) -> Result<()> {
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

    /// Whether signing must wait to hear the network's height first.
    pub(super) fn gated(&self) -> bool {
        self.config.wait_for_peers
            && self.key_has_signed
            && !self.heard_peers
            && self.engine.guard().is_fresh()
            && self.booted.elapsed() < FRESH_WAIT
    }

    pub(super) fn on_peer_height(&mut self, committed: Height) -> Result<()> {
        self.heard_peers = true;
        self.resend_for_peer_at(committed.next())?;
        if self.key.is_none() || !self.key_has_signed {
            return Ok(());
        }
        if let Some(g) = self.engine.adopt_network_height(committed) {
            tracing::warn!(%committed, "this validator's guard has never signed while the network is past genesis: refusing to sign up to the next height (a wiped data directory may have signed there)");
            self.chain.persist_consensus(&[], Some(&g), &[])?;
        }
        self.maybe_start_height(false)
    }

    /// Starts the next height when there is something to do: transactions in the
    /// pool, the heartbeat, or peers already at it.
    pub(super) fn maybe_start_height(&mut self, force: bool) -> Result<()> {
        let Some((height, _)) = self.waiting else {
            return Ok(());
        };
        if self.gated() {
            return Ok(());
        }
        if !force && !self.mempool.has_executable()? {
            return Ok(());
        }
        self.waiting = None;
        self.height_started = Instant::now();
        let set = consensus_set(&self.chain)?;
        self.follow_key_rotation(height, &set)?;
        let step = self.engine.start_height(height, set, false);
        self.perform(step)?;
        self.feed_values()
    }

    /// When this validator's key left the set of `height` and another of its keys (a
    /// rotation) is in it, the engine signs with that one from this height on. The
    /// guard moves with it: the new key never signs a (height, round, step) at or
    /// below one the old key signed.
    fn follow_key_rotation(&mut self, height: Height, set: &ConsensusSet) -> Result<()> {
        let Some(keys) = &mut self.keys else {
            return Ok(());
        };
        let state_set = self.chain.next_validator_set()?;
        let member = |a: &atonomi_primitives::AccountId| state_set.get(a).is_some();
        if self.key.as_ref().is_some_and(|k| member(&k.account())) {
            return Ok(());
        }
        let Some(new) = keys.find(member) else {
            return Ok(());
        };
        tracing::info!(%height, old = ?self.key.as_ref().map(Keypair::account), new = %new.account(), "consensus key rotated: signing with the new key from this height");
        self.engine = Engine::new(
            self.config.engine.clone(),
            Some(Keypair::from_seed(new.to_seed())),
            self.engine.guard().clone(),
            height,
            set.clone(),
        );
        self.key = Some(new);
        Ok(())
    }

    /// The height this node decides next: the one in progress, or the one waiting to
    /// start after a decision (the engine stays at the decided height until then).
    pub(super) fn undecided(&self) -> Height {
        self.waiting.map_or(self.engine.height(), |(h, _)| h)
    }

    pub(super) fn on_consensus(&mut self, msg: ConsensusMessage) -> Result<()> {
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

    pub(super) fn on_block(&mut self, block: Block) -> Result<()> {
        if block.header.height >= self.undecided() && self.bodies.len() < 64 {
            self.bodies.insert(block.hash(), block);
        }
        self.feed_values()
    }

    /// Blocks decided elsewhere: each certificate goes through the engine (verified
    /// against the validator set of its height), the block is executed, and the engine
    /// decides it like any other.
    pub(super) fn on_synced(
        &mut self,
        peer: &[u8],
        blocks: Vec<(Block, CommitCertificate)>,
    ) -> Result<()> {
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

    /// Makes the step durable, then performs its actions (and those of the steps they
    /// lead to), in order.
    pub(super) fn perform(&mut self, step: Step) -> Result<()> {
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
                self.chain
                    .persist_consensus(&step.wal, step.guard.as_ref(), &[])?;
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

    pub(super) fn act(&mut self, action: Action) -> Result<Option<Step>> {
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
                        let _ = self.outbound.send(Outbound::Block(b.clone()));
                    }
                }
                let _ = self.outbound.send(Outbound::Consensus(msg));
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
                    let _ = self.outbound.send(Outbound::Block(b.clone()));
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
                        let preverified = self.mempool.preverified(&b.txs);
                        let result = self.chain.execute(b.clone(), &preverified);
                        match result {
                            Ok(executed) => {
                                self.chain.persist_consensus(
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
                self.metrics.round.set(i64::from(round));
                Ok(None)
            }
            Action::SignRefused(e) => {
                tracing::warn!("refused to sign: {e}");
                self.metrics.sign_refused.inc();
                Ok(None)
            }
            Action::Decided {
                certificate,
                evidence,
            } => {
                if !evidence.is_empty() {
                    self.chain.record_evidence(certificate.height, &evidence)?;
                    self.metrics.equivocations.inc_by(
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
    pub(super) fn equivocate(&mut self, msg: &ConsensusMessage) -> Result<()> {
        let Some(key) = &self.key else { return Ok(()) };
        let (outbound, chain) = (&self.outbound, &self.chain);
        let twins =
            crate::faults::conflicting_twin(msg, key, &self.config.engine.chain_id, || {
                let block = chain
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
            let _ = outbound.send(m);
        }
        Ok(())
    }
}
