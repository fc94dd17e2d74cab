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
//!
//! Here the swarm, its start and its event loop; beside it [`scoring`] (the allow-list,
//! penalties and bans), [`gossip`] (what is published and what is relayed), [`sync`]
//! (asking for blocks and serving them), [`codec`] (the sync wire format) and
//! [`pending`] (bounds on handshakes in progress).

mod codec;
mod gossip;
mod pending;
mod scoring;
mod sync;

pub use codec::SyncCodec;
use gossip::{gossip_config, Verdict, VotingSet};
use scoring::{score_params, SYNC_PENALTY};
use sync::SYNC_POLL;

use crate::chain::ChainReader;
use crate::ingress::{Inbound, NodeEvent, Outbound};
use atonomi_consensus::net::{Gossip, SyncResponse, MAX_SYNC_BLOCKS};
use atonomi_primitives::{Height, Keypair};
use futures::StreamExt;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    allow_block_list, connection_limits, gossipsub, noise, request_response, tcp, yamux, Multiaddr,
    PeerId, StreamProtocol, Swarm,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

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

/// What the network reads, hands on and counts.
#[derive(Debug, Clone)]
pub struct Links {
    /// Blocks to serve and the validator set to allow.
    pub chain: ChainReader,
    /// Gossiped transactions go in here.
    pub admission: crate::admit::Admission,
    /// Commits, to tell peers our height.
    pub events: broadcast::Sender<NodeEvent>,
    pub metrics: Arc<crate::metrics::Metrics>,
}

pub struct Network {
    swarm: Swarm<Behaviour>,
    chain: ChainReader,
    admission: crate::admit::Admission,
    events: broadcast::Sender<NodeEvent>,
    metrics: Arc<crate::metrics::Metrics>,
    consensus_topic: gossipsub::IdentTopic,
    tx_topic: gossipsub::IdentTopic,
    config: P2pConfig,
    allowed: BTreeSet<PeerId>,
    /// Of `allowed`, the validators of the next height (for the peers-by-kind count).
    next_validators: BTreeSet<PeerId>,
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

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("peer", self.swarm.local_peer_id())
            .finish_non_exhaustive()
    }
}

impl Network {
    pub fn new(key: &Keypair, config: P2pConfig, links: Links) -> Result<Network> {
        let id = identity(key)?;
        let Links {
            chain,
            admission,
            events,
            metrics,
        } = links;
        let chain_id = chain.chain_id.clone();
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
            chain,
            admission,
            events,
            metrics,
            consensus_topic,
            tx_topic,
            config,
            allowed: BTreeSet::new(),
            next_validators: BTreeSet::new(),
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
        let mut events = self.events.subscribe();
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
                    let height = self.chain.height();
                    seq += 1;
                    self.publish(true, atonomi_primitives::codec::encode(&Gossip::Status { height, seq }));
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
                        self.publish(true, atonomi_primitives::codec::encode(&Gossip::Consensus { msg, nonce: seq }));
                    }
                    Some(Outbound::Block(block)) => {
                        seq += 1;
                        self.publish(true, atonomi_primitives::codec::encode(&Gossip::Block { block, nonce: seq }));
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
                self.note_peers();
            }
            SwarmEvent::ConnectionClosed { peer_id, .. } => {
                tracing::debug!(%peer_id, "peer disconnected");
                if !self.swarm.is_connected(&peer_id) {
                    self.peer_heights.remove(&peer_id);
                    self.note_peer_heights();
                }
                self.note_peers();
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
                        let known = *known;
                        self.note_peer_heights();
                        // A full batch, or a peer known to have more (a batch is also cut
                        // by bytes): ask for the next one right away.
                        if response.blocks.len() == MAX_SYNC_BLOCKS as usize || known > last {
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
}
