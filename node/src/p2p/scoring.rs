//! Who may connect and who is banned: the allow-list from the chain (validators of the
//! next and the head height, registered full nodes, lately retired validators), peer
//! scoring, application penalties and bans.

use super::Network;
use crate::chain::ChainReader;
use atonomi_primitives::codec;
use atonomi_primitives::state::{StateKey, ValidatorSet};
use libp2p::{gossipsub, PeerId};
use std::collections::BTreeSet;
use std::time::Duration;

fn peers_of(set: &ValidatorSet) -> BTreeSet<PeerId> {
    set.validators
        .iter()
        .filter_map(|v| PeerId::from_bytes(&v.peer_id).ok())
        .collect()
}

/// Peers allowed to connect: the validators of the next height and the registered
/// full nodes; and, of those, the validators of the next height.
fn allowed_peers(chain: &ChainReader) -> (BTreeSet<PeerId>, BTreeSet<PeerId>) {
    // The set of the next height, and the one that voted on the head (its members sign
    // the head's checkpoint, which the rotation's may be, even when they are leaving).
    let next = peers_of(&chain.next_validator_set().unwrap_or_default());
    let head: ValidatorSet = chain.voting_set_at(chain.height()).unwrap_or_default();
    let mut out = next.clone();
    out.extend(peers_of(&head));
    let prefix = StateKey::NodePeer(Vec::new()).to_bytes();
    if let Ok(entries) = chain.db().scan(&prefix[..1], &[], 10_000) {
        for (k, _) in entries {
            if let Ok(p) = PeerId::from_bytes(&k[1..]) {
                out.insert(p);
            }
        }
    }
    // Validators removed lately still sign the checkpoints of their set's heights: their
    // nodes keep following the chain for as long as they may.
    let height = chain.height().get();
    let retired = [atonomi_primitives::state::tag::RETIRED_VALIDATOR];
    if let Ok(entries) = chain.db().scan(&retired, &[], 10_000) {
        for (_, v) in entries {
            let Ok(r) = codec::decode::<atonomi_primitives::state::RetiredValidator>(&v, 4096)
            else {
                continue;
            };
            let until = r
                .last_height
                .get()
                .saturating_add(atonomi_primitives::state::RETIRED_SIGNING_WINDOW);
            if height <= until {
                if let Ok(p) = PeerId::from_bytes(&r.validator.peer_id) {
                    out.insert(p);
                }
            }
        }
    }
    (out, next)
}

/// A peer whose gossipsub score falls below this is disconnected and refused for
/// [`BAN_FOR`]. One invalid message scores -10·n² on its topic (n decays by 10% a
/// second), so four invalid messages in a burst ban a peer while an honest node that
/// once relays a transaction its peers reject recovers in seconds.
const BAN_SCORE: f64 = -100.0;

/// How long a banned peer is refused (its score is remembered for an hour).
const BAN_FOR: Duration = Duration::from_secs(600);

/// Application penalty for a sync frame that failed to decode or exceeded its bound.
pub(super) const SYNC_PENALTY: f64 = 60.0;

/// Peer scoring (gossipsub v1.1) tuned for a permissioned set: only misbehaviour
/// counts. Invalid messages — ours (undecodable gossip, a consensus message not signed
/// by a validator, a transaction with a bad signature) and gossipsub's own (bad
/// envelope signatures, malformed frames) — and the application's penalties for bad
/// sync frames lower the score; nothing penalises a quiet or slow honest peer (mesh
/// delivery quotas, IP colocation and slowness weigh nothing).
pub(super) fn score_params(
    topics: &[&gossipsub::IdentTopic],
) -> (gossipsub::PeerScoreParams, gossipsub::PeerScoreThresholds) {
    let topic = gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.0,
        first_message_deliveries_weight: 0.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -10.0,
        invalid_message_deliveries_decay: 0.9,
        ..Default::default()
    };
    let params = gossipsub::PeerScoreParams {
        topics: topics.iter().map(|t| (t.hash(), topic.clone())).collect(),
        app_specific_weight: 1.0,
        ip_colocation_factor_weight: 0.0,
        behaviour_penalty_weight: -1.0,
        slow_peer_weight: 0.0,
        ..Default::default()
    };
    let thresholds = gossipsub::PeerScoreThresholds {
        gossip_threshold: -20.0,
        publish_threshold: -50.0,
        graylist_threshold: BAN_SCORE,
        ..Default::default()
    };
    (params, thresholds)
}

impl Network {
    /// Publishes the connected peers, in all and by kind: validators of the next
    /// height (as of the last [`Network::refresh_allowed`]), and the others (full
    /// nodes, lately retired validators).
    pub(super) fn note_peers(&self) {
        let (mut all, mut voting) = (0i64, 0i64);
        for p in self.swarm.connected_peers() {
            all += 1;
            voting += i64::from(self.next_validators.contains(p));
        }
        let m = &self.metrics;
        m.peers.set(all);
        let kind = |kind| crate::metrics::PeerKind { kind };
        m.peers_by_kind
            .get_or_create(&kind("validator"))
            .set(voting);
        m.peers_by_kind
            .get_or_create(&kind("full_node"))
            .set(all - voting);
    }

    pub(super) fn refresh_allowed(&mut self) {
        let (mut now, next_validators) = allowed_peers(&self.chain);
        self.next_validators = next_validators;
        for b in self.blocked.iter().chain(self.banned.keys()) {
            now.remove(b);
        }
        for p in now.difference(&self.allowed) {
            self.swarm.behaviour_mut().allow.allow_peer(*p);
        }
        for p in self.allowed.difference(&now) {
            self.swarm.behaviour_mut().allow.disallow_peer(*p);
        }
        self.allowed = now;
        // The set may have changed: a peer's kind with it.
        self.note_peers();
    }

    pub(super) fn dial_missing(&mut self) {
        for addr in self.config.peers.clone() {
            let Some(libp2p::multiaddr::Protocol::P2p(peer)) = addr.iter().last() else {
                continue;
            };
            if peer == self.peer_id()
                || self.swarm.is_connected(&peer)
                || self.blocked.contains(&peer)
                || self.banned.contains_key(&peer)
            {
                continue;
            }
            if let Err(e) = self.swarm.dial(addr.clone()) {
                tracing::debug!(%addr, "dial failed: {e}");
            }
        }
    }

    /// Bans `peer` if its score fell below [`BAN_SCORE`].
    pub(super) fn check_score(&mut self, peer: &PeerId) {
        let Some(score) = self.swarm.behaviour().gossipsub.peer_score(peer) else {
            return;
        };
        if score >= BAN_SCORE || self.banned.contains_key(peer) {
            return;
        }
        tracing::warn!(%peer, score, "peer banned for misbehaviour: disconnected and refused for {} s", BAN_FOR.as_secs());
        self.banned
            .insert(*peer, tokio::time::Instant::now() + BAN_FOR);
        self.metrics.peer_bans.inc();
        self.metrics.banned_peers.set(self.banned.len() as i64);
        self.refresh_allowed();
        let _ = self.swarm.disconnect_peer_id(*peer);
    }

    /// An application-level penalty (e.g. a malformed sync frame).
    pub(super) fn penalise(&mut self, peer: &PeerId, points: f64, why: &str) {
        tracing::info!(%peer, points, "peer penalised: {why}");
        self.metrics.peer_penalties.inc();
        let total = self.app_penalty.entry(*peer).or_default();
        *total += points;
        let total = *total;
        self.swarm
            .behaviour_mut()
            .gossipsub
            .set_application_score(peer, -total);
        self.check_score(peer);
    }

    /// Lifts expired bans; the score of a lifted peer is what it earned since.
    pub(super) fn expire_bans(&mut self) {
        let now = tokio::time::Instant::now();
        let before = self.banned.len();
        self.banned.retain(|_, until| *until > now);
        if self.banned.len() != before {
            self.metrics.banned_peers.set(self.banned.len() as i64);
            self.refresh_allowed();
        }
    }
}
