//! Fault injection for the fault and cluster tests: a validator that equivocates, one
//! that sends garbage gossip, one that aborts between signing its proposal and sending
//! it, one deaf to gossip. The code exists only in builds with debug assertions (the
//! suite's profile) or with the `fault-injection` feature; a release build refuses the
//! flags at start instead of ignoring them.

#[cfg(any(debug_assertions, feature = "fault-injection"))]
pub use modes::{conflicting_twin, garbage};

/// Whether this build has the fault modes.
pub const COMPILED: bool = cfg!(any(debug_assertions, feature = "fault-injection"));

/// The fault modes of `atonomi run` (its hidden `--byzantine-*`, `--crash-*` and
/// `--deaf-*` flags). All off by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// Send a second, conflicting signature beside every vote and proposal of ours,
    /// bypassing the double-sign guard.
    pub equivocate: bool,
    /// Publish undecodable gossip and badly signed transactions every two seconds.
    pub garbage: bool,
    /// Abort the process right after our proposal's step is durable, before the
    /// proposal is sent (the crash window of a restarted proposer).
    pub crash_after_signing_proposal: bool,
    /// Ignore all gossip, as if no peer published to us.
    pub deaf_to_gossip: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("fault injection is compiled out of this build (a release build); build with debug assertions or `--features fault-injection` for fault tests")]
pub struct CompiledOut;

impl Faults {
    pub fn any(&self) -> bool {
        *self != Faults::default()
    }

    /// Refuses fault modes a build cannot perform.
    pub fn check(&self) -> Result<(), CompiledOut> {
        if self.any() && !COMPILED {
            return Err(CompiledOut);
        }
        Ok(())
    }
}

#[cfg(any(debug_assertions, feature = "fault-injection"))]
mod modes {
    use crate::ingress::Outbound;
    use atonomi_consensus::message::{ConsensusMessage, WireProposal, WireVote};
    use atonomi_primitives::block::Block;
    use atonomi_primitives::{ChainId, Hash, Keypair};

    /// The conflicting twin of a message `key` signed: a vote for the other choice (nil
    /// for a block, a made-up block for nil), or a proposal of `other_block` with its
    /// body. Empty for messages of other validators.
    pub fn conflicting_twin<E>(
        msg: &ConsensusMessage,
        key: &Keypair,
        chain_id: &ChainId,
        other_block: impl FnOnce() -> Result<Block, E>,
    ) -> Result<Vec<Outbound>, E> {
        use atonomi_consensus::message::{sign_proposal, sign_vote};
        use malachitebft_core_types::NilOrVal;
        let mut out = Vec::new();
        match msg {
            ConsensusMessage::Vote(v) if v.validator == key.account() => {
                let mut other = v.to_mc();
                other.message.value = match v.block {
                    Some(_) => NilOrVal::Nil,
                    None => NilOrVal::Val(Hash::of(&v.round.to_be_bytes())),
                };
                if let Some(sig) = sign_vote(chain_id, key, &other.message) {
                    other.signature = sig;
                    if let Ok(w) = WireVote::from_mc(&other) {
                        tracing::warn!(height = %v.height, round = v.round, "byzantine test mode: sending a conflicting vote");
                        out.push(Outbound::Consensus(ConsensusMessage::Vote(w)));
                    }
                }
            }
            ConsensusMessage::Proposal(p) if p.proposer == key.account() => {
                let block = other_block()?;
                let mut other = p.to_mc();
                other.message.value = atonomi_consensus::context::BlockValue(block.hash());
                if let Some(sig) = sign_proposal(chain_id, key, &other.message) {
                    other.signature = sig;
                    if let Ok(w) = WireProposal::from_mc(&other) {
                        tracing::warn!(height = %p.height, round = p.round, "byzantine test mode: sending a conflicting proposal");
                        out.push(Outbound::Block(block));
                        out.push(Outbound::Consensus(ConsensusMessage::Proposal(w)));
                    }
                }
            }
            _ => {}
        }
        Ok(out)
    }

    /// Garbage gossip for round `seq`: bytes that decode as no consensus gossip message
    /// (an unknown variant tag), and a transaction-shaped blob with a bad signature, as
    /// `(on the consensus topic, payload)`.
    pub fn garbage(seq: u64) -> [(bool, Vec<u8>); 2] {
        tracing::warn!("byzantine test mode: sending garbage");
        let mut junk = vec![0xEE];
        junk.extend_from_slice(blake3::hash(&seq.to_le_bytes()).as_bytes());
        let mut tx = junk.clone();
        tx[0] = 0xEF;
        [
            (true, junk),
            (
                false,
                atonomi_consensus::net::TxBatch { txs: vec![tx] }.to_bytes(),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_fault_passes_the_check_in_every_build() {
        assert!(!Faults::default().any());
        assert_eq!(Faults::default().check(), Ok(()));
        let f = Faults {
            garbage: true,
            ..Faults::default()
        };
        assert!(f.any());
        assert_eq!(f.check().is_ok(), COMPILED);
    }
}
