//! Our proposal and votes of the round in progress, sent again for a peer that is still
//! at this height and may have missed them.

use super::{Host, Result};
use crate::ingress::Outbound;
use atonomi_consensus::message::{ConsensusMessage, WireProposal};
use atonomi_primitives::{Height, Keypair};
use std::time::Duration;
use tokio::time::Instant;

impl Host {
    /// A peer announced it is still deciding `height`, ours in progress: it may have
    /// missed what we sent while it was down or not yet connected (gossip reaches only
    /// connected peers, and Malachite re-sends votes only every few seconds). Our
    /// proposal and our votes of the current round go out again, at most once a second.
    pub(super) fn resend_for_peer_at(&mut self, height: Height) -> Result<()> {
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
        let wal = self.chain.wal()?;
        for r in wal {
            if let atonomi_consensus::message::WalEntry::Vote(v) = r.entry {
                if v.validator == me && v.height == height && v.round == round {
                    let _ = self
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
    pub(super) fn send_own_proposal(&mut self, p: &WireProposal, with_body: bool) {
        if let (true, Some(b)) = (with_body, self.bodies.get(&p.block)) {
            let _ = self.outbound.send(Outbound::Block(b.clone()));
        }
        let _ = self
            .outbound
            .send(Outbound::Consensus(ConsensusMessage::Proposal(p.clone())));
        self.own_proposal = Some((p.clone(), Instant::now()));
    }
}
