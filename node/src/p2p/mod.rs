//! The peer-to-peer layer (rust-libp2p): TCP + Noise + Yamux between validators and
//! registered full nodes only.
//!
//! - **Permissioned**: an allow-list (validators' peer ids from the validator set, full
//!   nodes registered on chain or in genesis) refuses every other peer at the connection
//!   level; connection counts are bounded.
//! - **Gossip** (gossipsub, tuned for a handful of validators: flood publishing, a small
//!   mesh, 8 MiB messages, content-hash message ids): consensus messages and block
//!   bodies on one topic, transactions on another. Every message is decoded with a size
//!   bound and only relayed once the host side accepted it as well-formed.
//! - **Block sync** (request-response, borsh): a node that hears a peer is ahead asks
//!   it for blocks with their commit certificates; consensus verifies each certificate
//!   against the validator set of that height before the block is executed.

mod pending;

use crate::chain::MAX_BLOCK_BYTES;
use crate::ingress::{Inbound, NodeEvent, Outbound};
use crate::shared::Shared;
use atonomi_consensus::message::ConsensusMessage;
use atonomi_consensus::net::{
    Gossip, SyncRequest, SyncResponse, TxBatch, MAX_GOSSIP_BYTES, MAX_GOSSIP_TXS, MAX_SYNC_BLOCKS,
    MAX_SYNC_REQUEST, MAX_SYNC_RESPONSE,
};
use atonomi_consensus::CommitCertificate;
use atonomi_primitives::block::Block;
use atonomi_primitives::codec;
use atonomi_primitives::state::{StateKey, ValidatorSet};
use atonomi_primitives::{Height, Keypair};
use borsh::{BorshDeserialize, BorshSerialize};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    allow_block_list, connection_limits, gossipsub, noise, request_response, tcp, yamux, Multiaddr,
    PeerId, StreamProtocol, Swarm,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Length-prefixed borsh with a size bound per direction.
#[derive(Debug, Clone, Default)]
pub struct SyncCodec;

async fn read_framed<T: futures::AsyncRead + Unpin + Send, V: BorshDeserialize>(
    io: &mut T,
    max: usize,
) -> std::io::Result<V> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds {max}"),
        ));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    codec::decode(&buf, max)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
}

async fn write_framed<T: futures::AsyncWrite + Unpin + Send, V: BorshSerialize>(
    io: &mut T,
    v: &V,
) -> std::io::Result<()> {
    let bytes = codec::encode(v);
    io.write_all(&(bytes.len() as u32).to_be_bytes()).await?;
    io.write_all(&bytes).await?;
    io.close().await
}

impl request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = SyncRequest;
    type Response = SyncResponse;

    async fn read_request<T: futures::AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<SyncRequest> {
        read_framed(io, MAX_SYNC_REQUEST).await
    }

    async fn read_response<T: futures::AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<SyncResponse> {
        read_framed(io, MAX_SYNC_RESPONSE).await
    }

    async fn write_request<T: futures::AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: SyncRequest,
    ) -> std::io::Result<()> {
        write_framed(io, &req).await
    }

    async fn write_response<T: futures::AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: SyncResponse,
    ) -> std::io::Result<()> {
        write_framed(io, &res).await
    }
}

/// Inbound connections in their handshake at once from one address, and in total: a
/// host that opens silent sockets holds at most its share, never every slot.
const MAX_PENDING_PER_IP: usize = 8;
const MAX_PENDING_INCOMING: u32 = 32;
/// TCP accept to an upgraded (Noise + Yamux) connection: longer only on links that
/// would not carry consensus anyway; a silent socket is dropped after it.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(NetworkBehaviour)]
struct Behaviour {
    pending: pending::Behaviour,
    allow: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
    limits: connection_limits::Behaviour,
    gossipsub: gossipsub::Behaviour,
    sync: request_response::Behaviour<SyncCodec>,
}

#[derive(Debug, Clone)]
pub struct P2pConfig {
    pub listen: Multiaddr,
    /// Peers to dial (and redial): multiaddrs ending in `/p2p/<peer id>`.
    pub peers: Vec<Multiaddr>,
    pub max_connections: u32,
    /// Fault modes for the fault tests (garbage, deaf; see [`crate::faults`]); `run`
    /// sets them from `Launch::faults`.
    pub faults: crate::faults::Faults,
}

fn proposal_msg(
    p: &atonomi_consensus::message::WireProposal,
) -> atonomi_consensus::engine::ConsensusMsg {
    atonomi_consensus::engine::ConsensusMsg::Proposal(p.to_mc().message)
}

/// Why the peer-to-peer layer could not start.
#[derive(Debug, thiserror::Error)]
pub enum P2pError {
    #[error("the node key is not an ed25519 key: {0}")]
    NodeKey(#[from] libp2p::identity::DecodingError),
    #[error("the Noise handshake configuration: {0}")]
    Transport(#[from] libp2p::noise::Error),
    #[error("the network behaviour: {0}")]
    Behaviour(String),
    #[error("gossipsub peer scoring: {0}")]
    Scoring(String),
    #[error("subscribing to a gossip topic: {0}")]
    Subscribe(#[from] gossipsub::SubscriptionError),
    #[error("listening on {addr}: {error}")]
    Listen {
        addr: libp2p::Multiaddr,
        error: libp2p::TransportError<std::io::Error>,
    },
}

type Result<T, E = P2pError> = std::result::Result<T, E>;

/// The libp2p identity of a node key file.
pub fn identity(key: &Keypair) -> Result<libp2p::identity::Keypair> {
    let mut seed = key.to_seed();
    Ok(libp2p::identity::Keypair::ed25519_from_bytes(&mut seed)?)
}

/// Peers allowed to connect: the validators of the next height and the registered
/// full nodes.
fn allowed_peers(shared: &Shared) -> BTreeSet<PeerId> {
    let chain = shared.chain.read().unwrap_or_else(|e| e.into_inner());
    let mut out = BTreeSet::new();
    // The set of the next height, and the one that voted on the head (its members sign
    // the head's checkpoint, which the rotation's may be, even when they are leaving).
    let next: ValidatorSet = chain.next_validator_set().unwrap_or_default();
    let head: ValidatorSet = chain.voting_set_at(chain.height()).unwrap_or_default();
    for v in next.validators.iter().chain(&head.validators) {
        if let Ok(p) = PeerId::from_bytes(&v.peer_id) {
            out.insert(p);
        }
    }
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
    out
}

/// A peer whose gossipsub score falls below this is disconnected and refused for
/// [`BAN_FOR`]. One invalid message scores -10·n² on its topic (n decays by 10% a
/// second), so four invalid messages in a burst ban a peer while an honest node that
/// once relays a transaction its peers reject recovers in seconds.
const BAN_SCORE: f64 = -100.0;
/// How long a banned peer is refused (its score is remembered for an hour).
const BAN_FOR: Duration = Duration::from_secs(600);
/// Application penalty for a sync frame that failed to decode or exceeded its bound.
const SYNC_PENALTY: f64 = 60.0;

/// Peer scoring (gossipsub v1.1) tuned for a permissioned set: only misbehaviour
/// counts. Invalid messages — ours (undecodable gossip, a consensus message not signed
/// by a validator, a transaction with a bad signature) and gossipsub's own (bad
/// envelope signatures, malformed frames) — and the application's penalties for bad
/// sync frames lower the score; nothing penalises a quiet or slow honest peer (mesh
/// delivery quotas, IP colocation and slowness weigh nothing).
fn score_params(
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

fn gossip_config() -> Result<gossipsub::Config, gossipsub::ConfigBuilderError> {
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

pub struct Network {
    swarm: Swarm<Behaviour>,
    shared: Arc<Shared>,
    consensus_topic: gossipsub::IdentTopic,
    tx_topic: gossipsub::IdentTopic,
    config: P2pConfig,
    allowed: BTreeSet<PeerId>,
    /// Peers cut off by admin fault injection.
    blocked: BTreeSet<PeerId>,
    /// Outstanding sync request per peer, to ask each at most once at a time.
    syncing: BTreeMap<PeerId, Height>,
    /// The committed height each peer last showed us (its status or a sync response).
    peer_heights: BTreeMap<PeerId, Height>,
    /// Our committed height at the last sync poll (see [`Network::poll_sync`]) and
    /// which connected peer the next blind poll asks.
    polled_height: Height,
    poll_cursor: usize,
    /// Peers banned for misbehaviour, until when.
    banned: BTreeMap<PeerId, tokio::time::Instant>,
    /// Application penalties per peer (fed into the gossipsub score).
    app_penalty: BTreeMap<PeerId, f64>,
    /// Admitted transactions waiting to be gossiped as one batch, and when they go.
    tx_out: Vec<Vec<u8>>,
    tx_out_bytes: usize,
    tx_flush_at: Option<tokio::time::Instant>,
    /// Transaction batches from peers being verified off the swarm task; their verdicts
    /// come back on `verdicts`.
    validating: usize,
    verdicts: (
        mpsc::UnboundedSender<Verdict>,
        mpsc::UnboundedReceiver<Verdict>,
    ),
    /// The validators of the next height, for checking gossiped votes and proposals.
    voting_set: Option<VotingSet>,
}

struct VotingSet {
    height: Height,
    chain_id: atonomi_primitives::ChainId,
    set: ValidatorSet,
}

/// The outcome of checking a gossiped transaction batch.
type Verdict = (gossipsub::MessageId, PeerId, gossipsub::MessageAcceptance);

/// How often a node checks whether its height moved, and asks a peer for blocks when
/// it did not (see [`Network::poll_sync`]).
const SYNC_POLL: Duration = Duration::from_secs(1);
/// How long admitted transactions wait to be gossiped with the ones after them.
const TX_GOSSIP_DELAY: Duration = Duration::from_millis(2);
/// Bytes of transactions per gossip batch (well under [`MAX_GOSSIP_BYTES`]).
const TX_GOSSIP_BYTES: usize = 1 << 20;
/// Peer batches verified at once; beyond this, further ones are ignored (not relayed,
/// not held against the peer) until the node catches up.
const MAX_VALIDATING: usize = 64;

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("peer", self.swarm.local_peer_id())
            .finish_non_exhaustive()
    }
}

impl Network {
    pub fn new(key: &Keypair, config: P2pConfig, shared: Arc<Shared>) -> Result<Network> {
        let id = identity(key)?;
        let chain_id = shared
            .chain
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .chain_id
            .clone();
        let limits = connection_limits::ConnectionLimits::default()
            .with_max_established(Some(config.max_connections))
            .with_max_established_per_peer(Some(2))
            .with_max_pending_incoming(Some(MAX_PENDING_INCOMING));
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(id)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(P2pError::Transport)?
            .with_behaviour(
                |key| -> std::result::Result<Behaviour, Box<dyn std::error::Error + Send + Sync>> {
                    let gossipsub = gossipsub::Behaviour::new(
                        gossipsub::MessageAuthenticity::Signed(key.clone()),
                        gossip_config()?,
                    )?;
                    let sync = request_response::Behaviour::new(
                        [(
                            StreamProtocol::new("/atonomi/sync/1"),
                            request_response::ProtocolSupport::Full,
                        )],
                        request_response::Config::default()
                            .with_request_timeout(Duration::from_secs(20)),
                    );
                    Ok(Behaviour {
                        pending: pending::Behaviour::new(MAX_PENDING_PER_IP),
                        allow: Default::default(),
                        limits: connection_limits::Behaviour::new(limits),
                        gossipsub,
                        sync,
                    })
                },
            )
            .map_err(|e| P2pError::Behaviour(e.to_string()))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
            .with_connection_timeout(HANDSHAKE_TIMEOUT)
            .build();
        let consensus_topic = gossipsub::IdentTopic::new(format!("atonomi/{chain_id}/consensus/1"));
        let tx_topic = gossipsub::IdentTopic::new(format!("atonomi/{chain_id}/tx/2"));
        let (params, thresholds) = score_params(&[&consensus_topic, &tx_topic]);
        swarm
            .behaviour_mut()
            .gossipsub
            .with_peer_score(params, thresholds)
            .map_err(|e| P2pError::Scoring(e.to_string()))?;
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&consensus_topic)?;
        swarm.behaviour_mut().gossipsub.subscribe(&tx_topic)?;
        swarm
            .listen_on(config.listen.clone())
            .map_err(|error| P2pError::Listen {
                addr: config.listen.clone(),
                error,
            })?;
        let mut net = Network {
            swarm,
            shared,
            consensus_topic,
            tx_topic,
            config,
            allowed: BTreeSet::new(),
            blocked: BTreeSet::new(),
            syncing: BTreeMap::new(),
            peer_heights: BTreeMap::new(),
            polled_height: Height::default(),
            poll_cursor: 0,
            banned: BTreeMap::new(),
            app_penalty: BTreeMap::new(),
            tx_out: Vec::new(),
            tx_out_bytes: 0,
            tx_flush_at: None,
            validating: 0,
            verdicts: mpsc::unbounded_channel(),
            voting_set: None,
        };
        net.refresh_allowed();
        Ok(net)
    }

    pub fn peer_id(&self) -> PeerId {
        *self.swarm.local_peer_id()
    }

    fn refresh_allowed(&mut self) {
        let mut now = allowed_peers(&self.shared);
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
    }

    fn dial_missing(&mut self) {
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
    fn check_score(&mut self, peer: &PeerId) {
        let Some(score) = self.swarm.behaviour().gossipsub.peer_score(peer) else {
            return;
        };
        if score >= BAN_SCORE || self.banned.contains_key(peer) {
            return;
        }
        tracing::warn!(%peer, score, "peer banned for misbehaviour: disconnected and refused for {} s", BAN_FOR.as_secs());
        self.banned
            .insert(*peer, tokio::time::Instant::now() + BAN_FOR);
        self.shared.metrics.peer_bans.inc();
        self.shared
            .metrics
            .banned_peers
            .set(self.banned.len() as i64);
        self.refresh_allowed();
        let _ = self.swarm.disconnect_peer_id(*peer);
    }

    /// An application-level penalty (e.g. a malformed sync frame).
    fn penalise(&mut self, peer: &PeerId, points: f64, why: &str) {
        tracing::info!(%peer, points, "peer penalised: {why}");
        self.shared.metrics.peer_penalties.inc();
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
    fn expire_bans(&mut self) {
        let now = tokio::time::Instant::now();
        let before = self.banned.len();
        self.banned.retain(|_, until| *until > now);
        if self.banned.len() != before {
            self.shared
                .metrics
                .banned_peers
                .set(self.banned.len() as i64);
            self.refresh_allowed();
        }
    }

    /// Queues admitted transactions for gossip; a full batch goes at once.
    fn queue_txs(&mut self, txs: Vec<Vec<u8>>) {
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

    fn flush_txs(&mut self) {
        self.tx_flush_at = None;
        self.tx_out_bytes = 0;
        let txs = std::mem::take(&mut self.tx_out);
        if !txs.is_empty() {
            self.publish(false, TxBatch { txs }.to_bytes());
        }
    }

    fn publish(&mut self, topic: bool, data: Vec<u8>) {
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

    /// Runs the swarm until `shutdown`.
    pub async fn run(
        mut self,
        inbound: mpsc::Sender<Inbound>,
        mut outbound: mpsc::UnboundedReceiver<Outbound>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut redial = tokio::time::interval(Duration::from_secs(3));
        let mut status = tokio::time::interval(Duration::from_secs(2));
        let mut sync_poll = tokio::time::interval(SYNC_POLL);
        sync_poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut events = self.shared.events.subscribe();
        // Gossip nonces start from the clock, so a restarted node's re-sends are new
        // messages to peers that cached its earlier ones (ids are content hashes).
        let mut seq = crate::clock::now_ns();
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = redial.tick() => {
                    self.expire_bans();
                    self.dial_missing();
                }
                _ = sync_poll.tick() => self.poll_sync(),
                _ = status.tick() => {
                    let height = self.shared.chain.read().unwrap_or_else(|e| e.into_inner()).height();
                    seq += 1;
                    self.publish(true, codec::encode(&Gossip::Status { height, seq }));
                    #[cfg(any(debug_assertions, feature = "fault-injection"))]
                    if self.config.faults.garbage {
                        for (consensus, bytes) in crate::faults::garbage(seq) {
                            self.publish(consensus, bytes);
                        }
                    }
                }
                ev = events.recv() => {
                    if matches!(ev, Ok(NodeEvent::Committed { .. })) {
                        self.refresh_allowed();
                    }
                }
                msg = outbound.recv() => match msg {
                    Some(Outbound::Consensus(msg)) => {
                        seq += 1;
                        self.publish(true, codec::encode(&Gossip::Consensus { msg, nonce: seq }));
                    }
                    Some(Outbound::Block(block)) => {
                        seq += 1;
                        self.publish(true, codec::encode(&Gossip::Block { block, nonce: seq }));
                    }
                    Some(Outbound::Txs(t)) => self.queue_txs(t),
                    Some(Outbound::SetBlocked(peers)) => {
                        self.blocked = peers.into_iter().collect();
                        self.refresh_allowed();
                        for p in self.blocked.clone() {
                            let _ = self.swarm.disconnect_peer_id(p);
                        }
                        tracing::warn!(blocked = self.blocked.len(), "fault injection: peers blocked");
                    }
                    None => return,
                },
                _ = tokio::time::sleep_until(self.tx_flush_at.unwrap_or_else(tokio::time::Instant::now)), if self.tx_flush_at.is_some() => self.flush_txs(),
                Some((id, peer, verdict)) = self.verdicts.1.recv() => {
                    self.validating = self.validating.saturating_sub(1);
                    self.report(&id, &peer, verdict);
                }
                ev = self.swarm.select_next_some() => self.on_swarm(ev, &inbound).await,
            }
        }
    }

    async fn on_swarm(&mut self, ev: SwarmEvent<BehaviourEvent>, inbound: &mpsc::Sender<Inbound>) {
        match ev {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, peer = %self.peer_id(), "p2p listening")
            }
            SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                tracing::info!(%peer_id, "peer connected");
                self.shared
                    .metrics
                    .peers
                    .set(self.swarm.connected_peers().count() as i64);
            }
            SwarmEvent::ConnectionClosed { peer_id, .. } => {
                tracing::debug!(%peer_id, "peer disconnected");
                if !self.swarm.is_connected(&peer_id) {
                    self.peer_heights.remove(&peer_id);
                }
                self.shared
                    .metrics
                    .peers
                    .set(self.swarm.connected_peers().count() as i64);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                if crate::faults::COMPILED && self.config.faults.deaf_to_gossip {
                    self.report(
                        &message_id,
                        &propagation_source,
                        gossipsub::MessageAcceptance::Ignore,
                    );
                } else if message.topic == self.tx_topic.hash() {
                    self.on_tx_gossip(message_id, propagation_source, &message.data);
                } else {
                    let verdict = self.on_gossip(&propagation_source, &message, inbound).await;
                    self.report(&message_id, &propagation_source, verdict);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message {
                peer,
                message,
                ..
            })) => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let blocks = self.serve_sync(&request);
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .sync
                        .send_response(channel, SyncResponse { blocks });
                }
                request_response::Message::Response { response, .. } => {
                    self.syncing.remove(&peer);
                    if let Some((last, _)) = response.blocks.last() {
                        let last = last.header.height;
                        let known = self.peer_heights.entry(peer).or_default();
                        *known = (*known).max(last);
                        // A full batch, or a peer known to have more (a batch is also cut
                        // by bytes): ask for the next one right away.
                        if response.blocks.len() == MAX_SYNC_BLOCKS as usize || *known > last {
                            self.request_sync(peer, last.next());
                        }
                    }
                    if !response.blocks.is_empty() {
                        let _ = inbound
                            .send(Inbound::Synced {
                                peer: peer.to_bytes(),
                                blocks: response.blocks,
                            })
                            .await;
                    }
                }
            },
            SwarmEvent::Behaviour(BehaviourEvent::Sync(
                request_response::Event::OutboundFailure { peer, error, .. },
            )) => {
                self.syncing.remove(&peer);
                if let request_response::OutboundFailure::Io(e) = &error {
                    if e.kind() == std::io::ErrorKind::InvalidData {
                        self.penalise(&peer, SYNC_PENALTY, &format!("sync response: {e}"));
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(
                request_response::Event::InboundFailure {
                    peer,
                    error: request_response::InboundFailure::Io(e),
                    ..
                },
            )) if e.kind() == std::io::ErrorKind::InvalidData => {
                self.penalise(&peer, SYNC_PENALTY, &format!("sync request: {e}"));
            }
            _ => {}
        }
    }

    /// Tells gossipsub whether to relay a message; a rejection counts against the peer.
    fn report(
        &mut self,
        id: &gossipsub::MessageId,
        peer: &PeerId,
        verdict: gossipsub::MessageAcceptance,
    ) {
        let rejected = matches!(verdict, gossipsub::MessageAcceptance::Reject);
        if rejected {
            self.shared.metrics.peer_penalties.inc();
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
    fn on_tx_gossip(&mut self, id: gossipsub::MessageId, from: PeerId, data: &[u8]) {
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
        let shared = self.shared.clone();
        let out = self.verdicts.0.clone();
        tokio::task::spawn_blocking(move || {
            let verdict = if shared.admit_gossip(batch.txs) {
                Reject
            } else {
                Accept
            };
            let _ = out.send((id, from, verdict));
        });
    }

    async fn on_gossip(
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
    fn signed_by_a_validator(&mut self, m: &ConsensusMessage) -> bool {
        {
            let chain = self.shared.chain.read().unwrap_or_else(|e| e.into_inner());
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

    fn committed_height(&self) -> Height {
        self.shared
            .chain
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .height()
    }

    /// Asks `peer` for the blocks from `from` on, unless a request to it is in flight.
    fn request_sync(&mut self, peer: PeerId, from: Height) {
        if self.syncing.contains_key(&peer) {
            return;
        }
        self.syncing.insert(peer, from);
        self.swarm.behaviour_mut().sync.send_request(
            &peer,
            SyncRequest {
                from,
                max: MAX_SYNC_BLOCKS,
            },
        );
    }

    /// Called every [`SYNC_POLL`]: a node whose height has not moved since the last
    /// poll asks a peer for what follows, without waiting to hear that anyone is ahead
    /// — its peers' status and votes reach it by gossip, which can fail while the
    /// connections stay up (a peer that scores us below its publish threshold sends
    /// us nothing). A peer known to be ahead is asked first, else the connected ones
    /// in turn; an empty answer costs a few bytes.
    fn poll_sync(&mut self) {
        let mine = self.committed_height();
        let stalled = mine == self.polled_height;
        self.polled_height = mine;
        if !stalled {
            return;
        }
        let idle: Vec<PeerId> = self
            .swarm
            .connected_peers()
            .filter(|p| !self.syncing.contains_key(p))
            .copied()
            .collect();
        let ahead = idle
            .iter()
            .filter_map(|p| Some((*self.peer_heights.get(p)?, *p)))
            .filter(|(h, _)| *h > mine)
            .max();
        let peer = match ahead {
            Some((_, p)) => p,
            None if idle.is_empty() => return,
            None => {
                self.poll_cursor = self.poll_cursor.wrapping_add(1);
                idle[self.poll_cursor % idle.len()]
            }
        };
        self.request_sync(peer, mine.next());
    }

    fn serve_sync(&self, req: &SyncRequest) -> Vec<(Block, CommitCertificate)> {
        let chain = self.shared.chain.read().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        let mut size = 0usize;
        let mut h = req.from;
        while out.len() < req.max.min(MAX_SYNC_BLOCKS) as usize && h <= chain.height() {
            let (Ok(Some(b)), Ok(Some(c))) = (chain.block(h), chain.certificate(h)) else {
                break;
            };
            size += codec::encode(&b).len();
            if size > MAX_SYNC_RESPONSE / 2 {
                break;
            }
            out.push((b, c));
            h = h.next();
        }
        out
    }
}
