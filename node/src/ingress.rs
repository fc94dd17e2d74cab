//! The messages between the node's tasks: what the network hands the consensus host
//! ([`Inbound`]), what the host and the RPC server hand the network ([`Outbound`]),
//! and what everyone else hears about ([`NodeEvent`]).

use atonomi_consensus::message::ConsensusMessage;
use atonomi_consensus::CommitCertificate;
use atonomi_primitives::block::Block;
use atonomi_primitives::{Hash, Height};
use libp2p::PeerId;

/// What the rest of the node hears about.
#[derive(Clone, Debug)]
pub enum NodeEvent {
    Committed {
        height: Height,
        hash: Hash,
        txs: usize,
    },
    /// An admitted transaction left the mempool without being committed.
    Dropped(atonomi_api::rpc::views::Dropped),
}

/// Messages from the network to the consensus host.
#[derive(Debug)]
pub enum Inbound {
    Consensus(ConsensusMessage),
    Block(Block),
    /// Decided blocks with their certificates from a peer (libp2p peer id bytes).
    Synced {
        peer: Vec<u8>,
        blocks: Vec<(Block, CommitCertificate)>,
    },
    /// A peer's committed height (from its status announcements).
    PeerHeight(Height),
}

/// What the host and the RPC hand to the network.
#[derive(Debug, Clone)]
pub enum Outbound {
    Consensus(ConsensusMessage),
    Block(Block),
    /// Transactions admitted to our mempool, to gossip as one batch.
    Txs(Vec<Vec<u8>>),
    /// Admin fault injection: refuse and drop these peers (empty: heal).
    SetBlocked(Vec<PeerId>),
}
