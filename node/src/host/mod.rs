//! The consensus host: one task, the only writer of the chain, that drives the
//! sans-I/O [`Engine`] — making each step durable before acting on it, building and
//! executing blocks, committing decisions — beside the mempool actor and the JSON-RPC
//! server.
//!
//! - [`actor`]: the run loop and what it does with each input and each engine action;
//! - [`build`]: proposals, ours built and theirs judged;
//! - [`commit`]: a decided block written, the pool and subscribers told;
//! - [`resend`]: our proposal and votes sent again for a peer that missed them.

mod actor;
mod build;
mod commit;
mod resend;

use crate::chain::{Chain, ChainError, ChainReader, Executed};
use crate::ingress::{NodeEvent, Outbound};
use crate::mempool::Mailbox;
use crate::metrics::Metrics;
use atonomi_api::file::FileError;
use atonomi_consensus::context::ValidatorSet as ConsensusSet;
use atonomi_consensus::engine::{ConsensusTimeout, Engine, EngineConfig, Step};
use atonomi_consensus::message::WireProposal;
use atonomi_primitives::block::Block;
use atonomi_primitives::{Hash, Height, Keypair};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
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
    #[error(transparent)]
    Mempool(#[from] crate::mempool::Stopped),
    /// The next height starts a scheduled upgrade this binary does not execute: the
    /// host stops before it (committed blocks stay; the new binary continues).
    #[error("upgrade {:?} is scheduled at height {}: this binary does not implement it; install the release that does{} and restart on the same data directory", .0.name, .0.height, info_suffix(&.0.info))]
    UpgradeRequired(atonomi_primitives::gov::UpgradePlan),
}

fn info_suffix(info: &str) -> String {
    if info.is_empty() {
        String::new()
    } else {
        format!(" ({info})")
    }
}

/// Stops with [`HostError::UpgradeRequired`] when the next height needs an upgrade
/// this binary does not execute.
fn check_upgrade(chain: &ChainReader) -> Result<()> {
    match chain.missing_upgrade()? {
        Some(plan) => Err(HostError::UpgradeRequired(plan)),
        None => Ok(()),
    }
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

/// Where the host publishes the height and round in progress (for `atonomi_status`).
pub type RoundSender = tokio::sync::watch::Sender<Option<(Height, u32)>>;

/// What the host talks to besides the chain it owns.
#[derive(Debug, Clone)]
pub struct Links {
    /// The mempool actor: what to propose, what a block's transactions verified, and
    /// each commit.
    pub mempool: Mailbox,
    /// Commits, to subscribers and the relayer.
    pub events: broadcast::Sender<NodeEvent>,
    /// Blocks and consensus messages, to the network.
    pub outbound: mpsc::UnboundedSender<Outbound>,
    pub metrics: Arc<Metrics>,
}

/// The consensus host: one task, the only writer of the chain.
pub struct Host {
    /// The chain's one writer.
    chain: Chain,
    mempool: Mailbox,
    events: broadcast::Sender<NodeEvent>,
    outbound: mpsc::UnboundedSender<Outbound>,
    metrics: Arc<Metrics>,
    /// Where the host publishes its height and round.
    round: RoundSender,
    engine: Engine,
    /// The key the engine signs with: the one of `keys` in the set of the height.
    key: Option<Keypair>,
    keys: Option<crate::keys::ConsensusKeys>,
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
    /// When the last block was committed (for the block interval).
    last_commit: Option<Instant>,
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

fn consensus_set(chain: &ChainReader) -> Result<ConsensusSet> {
    let set = chain.next_validator_set()?;
    ConsensusSet::from_state(&set).ok_or(HostError::EmptySet(chain.height().next()))
}

impl Host {
    /// Restores the height in progress from disk: guard, block bodies and WAL replay.
    pub fn start(
        chain: Chain,
        links: Links,
        mut keys: Option<crate::keys::ConsensusKeys>,
        config: HostConfig,
        round: RoundSender,
    ) -> Result<(Host, Step)> {
        check_upgrade(&chain)?;
        let (height, set, guard, wal, bodies) = (
            chain.height().next(),
            consensus_set(&chain)?,
            chain.guard()?,
            chain.wal()?,
            chain.bodies()?,
        );
        // The key of the set voting on the next height (a rotation may have taken
        // effect while the node was down); none of ours there: the first, following.
        let next_set = chain.next_validator_set()?;
        let key = keys.as_mut().and_then(|k| {
            k.find(|a| next_set.get(a).is_some())
                .or_else(|| k.find(|_| true))
        });
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
        let Links {
            mempool,
            events,
            outbound,
            metrics,
        } = links;
        let host = Host {
            chain,
            mempool,
            events,
            outbound,
            metrics,
            round,
            engine,
            key,
            keys,
            config,
            timers: BTreeMap::new(),
            executed: BTreeMap::new(),
            bodies,
            proposals: Vec::new(),
            fed: Vec::new(),
            waiting,
            height_started: Instant::now(),
            last_commit: None,
            booted: Instant::now(),
            heard_peers: false,
            key_has_signed,
            own_proposal: None,
            own_body_resends: 0,
            resent_at: None,
        };
        Ok((host, step))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atonomi_consensus::context::{Address, BlockValue, CHeight, ConsensusProposal};
    use atonomi_consensus::message::ConsensusMessage;

    /// A dev validator's host settings that never start an empty height by themselves.
    fn test_config(reader: &ChainReader) -> HostConfig {
        HostConfig {
            engine: EngineConfig::new(reader.chain_id.clone()),
            heartbeat: Duration::from_secs(3600),
            faults: Default::default(),
            wait_for_peers: false,
            signed_marker: None,
        }
    }

    /// A reader handed out before a commit sees it once the host has written it: the
    /// height, the head's hash and time, the block, and a read at one height naming
    /// it. The reader is a plain handle for other tasks (no lock to take).
    #[test]
    fn a_reader_sees_each_commit_the_host_writes() {
        fn handle<T: Clone + Send + Sync + 'static>(_: &T) {}
        let dir = tempfile::tempdir().unwrap();
        let node = crate::testing::node(dir.path());
        let (chain, links) = (node.chain, node.links);
        let reader = chain.reader();
        handle(&reader);
        assert_eq!(reader.height(), Height::new(0));
        assert_eq!(reader.head().1, Hash::ZERO);
        let config = test_config(&reader);
        let round = tokio::sync::watch::channel(None).0;
        let key = atonomi_genesis::dev::key("validator");
        let (mut host, first) = Host::start(
            chain,
            links.clone(),
            Some(crate::keys::ConsensusKeys::new(key, None)),
            config,
            round,
        )
        .unwrap();
        host.perform(first).unwrap();
        host.maybe_start_height(true).unwrap();
        let (height, hash, time) = reader.head();
        assert_eq!(height, Height::new(1));
        let block = reader.block(height).unwrap().expect("the committed block");
        assert_eq!(hash, block.hash());
        assert_eq!(time, block.header.timestamp);
        assert_eq!(node.reader.height(), height, "another reader lags");
        let (root, at) = reader
            .at_one_height(|h| reader.db().root_at(h.get()))
            .unwrap();
        assert_eq!(at, height);
        assert_eq!(root, block.header.state_root);
    }

    /// A proposal of a height this node already decided arrives late (re-streamed, or
    /// the node decided by sync): it is dropped, not judged against the next height —
    /// before, the node judged it invalid after having judged its round valid, and
    /// Malachite logged "changed its mind" at ERROR.
    #[test]
    fn proposals_of_a_decided_height_are_dropped_not_judged_again() {
        let dir = tempfile::tempdir().unwrap();
        let node = crate::testing::node(dir.path());
        let (chain, links) = (node.chain, node.links);
        let reader = chain.reader();
        let key = atonomi_genesis::dev::key("validator");
        let config = test_config(&reader);
        let round = tokio::sync::watch::channel(None).0;
        let (mut host, first) = Host::start(
            chain,
            links.clone(),
            Some(crate::keys::ConsensusKeys::new(key, None)),
            config,
            round,
        )
        .unwrap();
        host.perform(first).unwrap();
        // The single dev validator decides height 1 on its own.
        host.maybe_start_height(true).unwrap();
        assert_eq!(reader.height(), Height::new(1));
        let block = reader.block(Height::new(1)).unwrap().unwrap();
        let late = Keypair::from_label("a late proposer");
        let chain_id = reader.chain_id.clone();
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
            links.metrics.invalid_proposals.get(),
            0,
            "a proposal of the decided height was judged again"
        );
    }
}
