//! A decided block: written with its certificate in one batch, then the mempool and
//! subscribers are told.

use super::{Host, HostError, Result};
use crate::ingress::NodeEvent;
use atonomi_consensus::CommitCertificate;
use atonomi_primitives::Hash;
use tokio::time::Instant;

impl Host {
    pub(super) fn commit(&mut self, certificate: CommitCertificate) -> Result<()> {
        let mut executed = match self.executed.remove(&certificate.block) {
            Some(e) => e,
            None => {
                let block = self
                    .bodies
                    .get(&certificate.block)
                    .cloned()
                    .ok_or(HostError::UnknownBody(certificate.block))?;
                let preverified = self.mempool.preverified(&block.txs);
                self.chain.execute(block, &preverified)?
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
        self.chain.commit(executed, &certificate)?;
        // After the write (see `mempool::actor` on nonces), and before anything the
        // host asks the pool about the next height.
        self.mempool.committed(height, nonces, in_block)?;
        let m = &self.metrics;
        m.height.set(height.get() as i64);
        m.blocks.inc();
        m.txs.inc_by(txs as u64);
        m.commit_seconds
            .observe(self.height_started.elapsed().as_secs_f64());
        m.rounds_per_height
            .observe(f64::from(certificate.round.saturating_add(1)));
        let now = Instant::now();
        if let Some(last) = self.last_commit.replace(now) {
            m.block_interval_seconds
                .observe(now.duration_since(last).as_secs_f64());
        }
        tracing::info!(%height, block = %hash, txs, "committed");
        let _ = self.events.send(NodeEvent::Committed { height, hash, txs });
        self.executed.clear();
        self.bodies.retain(|_, b| b.header.height > height);
        self.proposals.retain(|p| p.height > height);
        self.fed.clear();
        self.own_proposal = None;
        // The next height starts after the rest of this step's actions (they belong to
        // the decided height: a late CancelTimeout must not hit the new height's timers);
        // `perform` does it once its queue is empty.
        self.waiting = Some((height.next(), Instant::now()));
        // A plan at the next height this binary does not execute: stop here, with
        // this block on disk (the new binary starts from it).
        super::check_upgrade(&self.chain)
    }
}
