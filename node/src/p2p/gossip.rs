//! Gossip: consensus messages, block bodies and status on one topic, transaction
//! batches on the other; what is relayed and what counts against the sender.

use super::Network;
use crate::chain::MAX_BLOCK_BYTES;
use crate::ingress::Inbound;
use atonomi_consensus::message::ConsensusMessage;
use atonomi_consensus::net::{Gossip, TxBatch, MAX_GOSSIP_BYTES, MAX_GOSSIP_TXS};
use atonomi_primitives::codec;
use atonomi_primitives::state::ValidatorSet;
use atonomi_primitives::Height;
use libp2p::{gossipsub, PeerId};
use std::time::Duration;
use tokio::sync::mpsc;

fn proposal_msg(
    p: &atonomi_consensus::message::WireProposal,
) -> atonomi_consensus::engine::ConsensusMsg {
    atonomi_consensus::engine::ConsensusMsg::Proposal(p.to_mc().message)
}

pub(super) fn gossip_config() -> Result<gossipsub::Config, gossipsub::ConfigBuilderError> {
    gossipsub::ConfigBuilder::default()
        // A validator set is a handful of peers: publish to every peer we know and keep a
        // small mesh; heartbeats often enough to repair it fast.
        .flood_publish(true)
        .mesh_n_low(1)
        .mesh_n(3)
        .mesh_n_high(6)
        .mesh_outbound_min(1)
        .heartbeat_interval(Duration::from_millis(500))
        .max_transmit_size(MAX_GOSSIP_BYTES)
        .validation_mode(gossipsub::ValidationMode::Strict)
        .validate_messages()
        .message_id_fn(|m: &gossipsub::Message| {
            gossipsub::MessageId::from(blake3::hash(&m.data).as_bytes().to_vec())
        })
        .duplicate_cache_time(Duration::from_secs(120))
        .build()
}

pub(super) struct VotingSet {
    height: Height,
    chain_id: atonomi_primitives::ChainId,
    set: ValidatorSet,
}

/// The outcome of checking a gossiped transaction batch.
pub(super) type Verdict = (gossipsub::MessageId, PeerId, gossipsub::MessageAcceptance);

/// How long admitted transactions wait to be gossiped with the ones after them.
const TX_GOSSIP_DELAY: Duration = Duration::from_millis(2);

/// Bytes of transactions per gossip batch (well under [`MAX_GOSSIP_BYTES`]).
const TX_GOSSIP_BYTES: usize = 1 << 20;

/// Peer batches verified at once; beyond this, further ones are ignored (not relayed,
/// not held against the peer) until the node catches up.
const MAX_VALIDATING: usize = 64;

impl Network {
    /// Queues admitted transactions for gossip; a full batch goes at once.
    pub(super) fn queue_txs(&mut self, txs: Vec<Vec<u8>>) {
        for t in txs {
            self.tx_out_bytes += t.len();
            self.tx_out.push(t);
            if self.tx_out.len() >= MAX_GOSSIP_TXS || self.tx_out_bytes >= TX_GOSSIP_BYTES {
                self.flush_txs();
            }
        }
        if !self.tx_out.is_empty() && self.tx_flush_at.is_none() {
            self.tx_flush_at = Some(tokio::time::Instant::now() + TX_GOSSIP_DELAY);
        }
    }

    pub(super) fn flush_txs(&mut self) {
        self.tx_flush_at = None;
        self.tx_out_bytes = 0;
        let txs = std::mem::take(&mut self.tx_out);
        if !txs.is_empty() {
            self.publish(false, TxBatch { txs }.to_bytes());
        }
    }

    pub(super) fn publish(&mut self, topic: bool, data: Vec<u8>) {
        let t = if topic {
            self.consensus_topic.clone()
        } else {
            self.tx_topic.clone()
        };
        if let Err(e) = self.swarm.behaviour_mut().gossipsub.publish(t, data) {
            // InsufficientPeers before the first connection, Duplicate for re-sends.
            tracing::trace!("publish: {e}");
        }
    }

    /// Tells gossipsub whether to relay a message; a rejection counts against the peer.
    pub(super) fn report(
        &mut self,
        id: &gossipsub::MessageId,
        peer: &PeerId,
        verdict: gossipsub::MessageAcceptance,
    ) {
        let rejected = matches!(verdict, gossipsub::MessageAcceptance::Reject);
        if rejected {
            self.metrics.peer_penalties.inc();
        }
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(id, peer, verdict);
        if rejected {
            self.check_score(peer);
        }
    }

    /// A transaction batch from a peer: decoded here, its signatures verified (on all
    /// cores) and its transactions admitted on a blocking thread, so the swarm keeps
    /// serving consensus meanwhile; the verdict comes back through `verdicts`. Only
    /// what no honest node relays counts against the peer — bytes that are not a batch,
    /// a transaction that does not decode or carries a bad signature; a stale nonce or
    /// a full mempool is a race, not misbehaviour.
    pub(super) fn on_tx_gossip(&mut self, id: gossipsub::MessageId, from: PeerId, data: &[u8]) {
        use gossipsub::MessageAcceptance::{Accept, Ignore, Reject};
        let Ok(batch) = TxBatch::from_bytes(data) else {
            self.report(&id, &from, Reject);
            return;
        };
        if self.validating >= MAX_VALIDATING {
            self.report(&id, &from, Ignore);
            return;
        }
        self.validating += 1;
        let admission = self.admission.clone();
        let out = self.verdicts.0.clone();
        tokio::task::spawn_blocking(move || {
            let verdict = if admission.admit_gossip(batch.txs) {
                Reject
            } else {
                Accept
            };
            let _ = out.send((id, from, verdict));
        });
    }

    pub(super) async fn on_gossip(
        &mut self,
        from: &PeerId,
        message: &gossipsub::Message,
        inbound: &mpsc::Sender<Inbound>,
    ) -> gossipsub::MessageAcceptance {
        use gossipsub::MessageAcceptance::{Accept, Ignore, Reject};
        let Ok(g) = Gossip::from_bytes(&message.data) else {
            return Reject;
        };
        match g {
            Gossip::Status { height: h, .. } => {
                let _ = inbound.send(Inbound::PeerHeight(h)).await;
                self.peer_heights.insert(*from, h);
                self.note_peer_heights();
                let mine = self.committed_height();
                if h > mine {
                    self.request_sync(*from, mine.next());
                }
                // Status is point to point in spirit: not relayed.
                Ignore
            }
            Gossip::Consensus { msg: m, .. } => {
                // Relay only what a validator of that height really signed: membership and
                // one signature check here, before the message costs anyone more.
                if !self.signed_by_a_validator(&m) {
                    return Reject;
                }
                let _ = inbound.send(Inbound::Consensus(m)).await;
                Accept
            }
            Gossip::Block { block: b, .. } => {
                if codec::encode(&b).len() > MAX_BLOCK_BYTES {
                    return Reject;
                }
                let _ = inbound.send(Inbound::Block(b)).await;
                Accept
            }
        }
    }

    /// Votes and proposals must carry a valid signature of a member of the next
    /// height's validator set (messages for other heights are passed on unchecked:
    /// the engine drops or buffers them by height, and certificates are checked there).
    pub(super) fn signed_by_a_validator(&mut self, m: &ConsensusMessage) -> bool {
        {
            let chain = &self.chain;
            let height = chain.height().next();
            if self.voting_set.as_ref().map(|c| c.height) != Some(height) {
                // Read and decoded once per height, not once per vote; a failed read
                // is not cached (the next message tries again).
                self.voting_set = chain.next_validator_set().ok().map(|set| VotingSet {
                    height,
                    chain_id: chain.chain_id.clone(),
                    set,
                });
            }
        }
        let Some(VotingSet {
            height,
            chain_id,
            set,
        }) = &self.voting_set
        else {
            return false;
        };
        let height = *height;
        match m {
            ConsensusMessage::Vote(v) if v.height == height => {
                set.get(&v.validator).is_some()
                    && atonomi_consensus::message::verify_vote_parts(
                        chain_id,
                        v.height,
                        v.round,
                        v.vote_type,
                        v.block,
                        &v.validator,
                        &v.signature,
                    )
            }
            ConsensusMessage::Proposal(p) if p.height == height => {
                set.get(&p.proposer).is_some()
                    && atonomi_consensus::message::verify_message(
                        chain_id,
                        &proposal_msg(p),
                        &p.signature.0,
                        &p.proposer,
                    )
            }
            _ => true,
        }
    }
}
