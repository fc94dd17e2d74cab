//! Block sync: asking peers for the blocks after ours (when one is ahead, or when our
//! height has not moved) and serving theirs.

use super::Network;
use atonomi_consensus::net::{SyncRequest, MAX_SYNC_BLOCKS, MAX_SYNC_RESPONSE};
use atonomi_consensus::CommitCertificate;
use atonomi_primitives::block::Block;
use atonomi_primitives::{codec, Height};
use libp2p::PeerId;
use std::time::Duration;

/// How often a node checks whether its height moved, and asks a peer for blocks when
/// it did not (see [`Network::poll_sync`]).
pub(super) const SYNC_POLL: Duration = Duration::from_secs(1);

impl Network {
    /// Publishes the best height a connected peer reported (for `/ready`).
    pub(super) fn note_peer_heights(&self) {
        let best = self.peer_heights.values().max().map_or(0, |h| h.get());
        self.metrics.best_peer_height.set(best as i64);
    }

    pub(super) fn committed_height(&self) -> Height {
        self.chain.height()
    }

    /// Asks `peer` for the blocks from `from` on, unless a request to it is in flight.
    pub(super) fn request_sync(&mut self, peer: PeerId, from: Height) {
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
    pub(super) fn poll_sync(&mut self) {
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

    pub(super) fn serve_sync(&self, req: &SyncRequest) -> Vec<(Block, CommitCertificate)> {
        let chain = &self.chain;
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
