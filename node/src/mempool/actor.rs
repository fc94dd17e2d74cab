//! The mempool actor: one thread owns the [`Mempool`] and handles its [`Message`]s in
//! arrival order. It reads nothing else and waits for no one — the chain reaches it
//! only as messages — so a caller holding the chain's lock may ask it and get an answer.
//!
//! Nonces: admission reads each sender's next nonce at some committed height and says
//! which; the host sends every commit, with the nonces the block changed, after writing
//! it. A reading older than the last commit the pool has seen may miss that block's
//! nonces, so it is sent back to be read again ([`AdmitFailed::Stale`]); a newer one
//! (the commit's message is still on its way) is at least as current as the pool.
//!
//! [`AdmitFailed::Stale`]: super::AdmitFailed::Stale

use super::ingress::{Checked, Message, PoolLookup};
use super::pool::Mempool;
use crate::ingress::NodeEvent;
use crate::metrics::Metrics;
use atonomi_primitives::{Hash, Height};
use std::sync::mpsc;
use std::sync::Arc;
use tokio::sync::{broadcast, Notify};

pub(super) struct Actor {
    pub(super) pool: Mempool,
    /// The last height the pool was pruned for.
    pub(super) height: Height,
    pub(super) events: broadcast::Sender<NodeEvent>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) arrived: Arc<Notify>,
}

impl Actor {
    /// Handles messages until every [`super::Mailbox`] is gone.
    pub(super) fn run(mut self, inbox: mpsc::Receiver<Message>) {
        while let Ok(message) = inbox.recv() {
            self.handle(message);
        }
        tracing::debug!("mempool stopped");
    }

    fn handle(&mut self, message: Message) {
        // A reply nobody waits for any more (the caller gave up) is not an error.
        match message {
            Message::Triage { senders, reply } => {
                let answers = senders
                    .into_iter()
                    .map(|(signer, nonce)| {
                        self.pool
                            .would_refuse(&signer)
                            .then(|| self.pool.refuse_full(&signer, nonce))
                    })
                    .collect();
                let _ = reply.send(answers);
            }
            Message::Admit { height, txs, reply } => {
                let _ = reply.send(self.admit(height, txs));
            }
            Message::Committed {
                height,
                nonces,
                in_block,
            } => {
                self.pool.prune(&nonces, &in_block);
                self.height = self.height.max(height);
            }
            Message::HasExecutable { reply } => {
                let _ = reply.send(self.pool.has_executable());
            }
            Message::Select {
                max_txs,
                max_bytes,
                reply,
            } => {
                let _ = reply.send(self.pool.select(max_txs, max_bytes));
            }
            Message::Contains { hashes, reply } => {
                let _ = reply.send(hashes.iter().map(|h| self.pool.contains(h)).collect());
            }
            Message::Lookup { hash, reply } => {
                let found = if self.pool.contains(&hash) {
                    Some(PoolLookup::Pending)
                } else {
                    self.pool.dropped(&hash).cloned().map(PoolLookup::Dropped)
                };
                let _ = reply.send(found);
            }
            Message::Len { reply } => {
                let _ = reply.send(self.pool.len());
            }
        }
        self.metrics.mempool_txs.set(self.pool.len() as i64);
        self.metrics.mempool_bytes.set(self.pool.bytes() as i64);
        self.announce_drops();
    }

    fn admit(
        &mut self,
        height: Height,
        txs: Vec<Checked>,
    ) -> Result<Vec<Result<Hash, super::AdmitError>>, Vec<Checked>> {
        if height < self.height {
            return Err(txs);
        }
        let answers: Vec<_> = txs
            .into_iter()
            .map(|c| self.pool.admit(&c.stx, c.bytes, c.next_nonce))
            .collect();
        if answers.iter().any(Result::is_ok) {
            self.arrived.notify_one();
        }
        Ok(answers)
    }

    /// Tells subscribers about transactions that left the pool uncommitted.
    fn announce_drops(&mut self) {
        for d in self.pool.take_drops() {
            tracing::debug!(tx = %d.hash, reason = d.reason.explain(), "dropped from the mempool");
            let [replaced, nonce_used, evicted, gapped] = crate::metrics::DROP_REASONS;
            let reason = match d.reason {
                super::DropReason::Replaced { .. } => replaced,
                super::DropReason::NonceUsed { .. } => nonce_used,
                super::DropReason::Evicted => evicted,
                super::DropReason::Gapped { .. } => gapped,
            };
            self.metrics
                .mempool_drops
                .get_or_create(&crate::metrics::Reason { reason })
                .inc();
            let _ = self.events.send(NodeEvent::Dropped(d));
        }
    }
}
