//! The checks between consensus and the chain: which validator set votes on a height,
//! and whether a block body matches the signed proposal it came with — before the node
//! spends anything on executing it.

use crate::context::{AtonomiContext, CHeight, ValidatorSet as ConsensusSet};
use crate::message::WireProposal;
use atonomi_primitives::block::{tx_root, Block};
use atonomi_primitives::state::{PendingValidatorSet, ValidatorSet};
use atonomi_primitives::{AccountId, ChainId, Hash, Height, Timestamp};
use malachitebft_core_types::{Context as _, Round};

/// The set that votes on `height`, from the state after block `height - 1`: a change
/// decided in block `h` is pending with effective height `h + VALIDATOR_SET_DELAY`
/// and is promoted at the start of that block, so it already votes on it.
pub fn voting_set<'a>(
    height: Height,
    current: &'a ValidatorSet,
    pending: Option<&'a PendingValidatorSet>,
) -> &'a ValidatorSet {
    match pending {
        Some(p) if p.effective_height <= height => &p.set,
        _ => current,
    }
}

/// The proposer of (height, round) under `set`, as every node computes it.
pub fn proposer(chain_id: &ChainId, set: &ConsensusSet, height: Height, round: u32) -> AccountId {
    let ctx = AtonomiContext {
        chain_id: chain_id.clone(),
    };
    ctx.select_proposer(set, CHeight(height), Round::new(round))
        .public_key
}

/// What a proposed block must agree with.
#[derive(Clone, Debug)]
pub struct Expected<'a> {
    pub chain_id: &'a ChainId,
    pub height: Height,
    pub parent_hash: Hash,
    pub parent_timestamp: Timestamp,
    /// Hash of the set voting on `height`.
    pub validator_set_hash: Hash,
    /// The set voting on `height`, for the proposer of the proposal's round.
    pub set: &'a ConsensusSet,
    /// The local clock plus the allowed drift: a block from further in the future is
    /// refused (the only place a wall clock enters, and only as an argument).
    pub latest_timestamp: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposalError {
    #[error("the proposal is for height {got}, the node is at {expected}")]
    WrongHeight { expected: Height, got: Height },
    #[error("the block hashes to {got}, the proposal signed {signed}")]
    HashMismatch { signed: Hash, got: Hash },
    #[error("the block is for chain {0}")]
    WrongChain(String),
    #[error("the block's height {0} is not the proposal's")]
    BlockHeight(Height),
    #[error("{got} proposed round {round}, whose proposer is {expected}")]
    WrongProposer {
        round: u32,
        expected: AccountId,
        got: AccountId,
    },
    #[error("the block names proposer {0}, not the proposal's signer")]
    HeaderProposer(AccountId),
    #[error("the block's parent {got} is not the last committed block {expected}")]
    WrongParent { expected: Hash, got: Hash },
    #[error("the block's validator-set hash is not the hash of the set voting on this height")]
    WrongValidatorSet,
    #[error("timestamp {got} is not after the parent's {parent}")]
    TimestampNotIncreasing { parent: Timestamp, got: Timestamp },
    #[error("timestamp {got} is ahead of this node's clock ({latest} with drift)")]
    TimestampInFuture { latest: Timestamp, got: Timestamp },
    #[error("the transaction root does not match the transactions")]
    TxRoot,
}

/// Checks a block against the proposal it came with and the chain it must extend. The
/// state and receipt roots are checked by executing the block, after this passes.
pub fn check_proposed_block(
    p: &WireProposal,
    block: &Block,
    e: &Expected<'_>,
) -> Result<(), ProposalError> {
    let h = &block.header;
    if p.height != e.height {
        return Err(ProposalError::WrongHeight {
            expected: e.height,
            got: p.height,
        });
    }
    let hash = block.hash();
    if hash != p.block {
        return Err(ProposalError::HashMismatch {
            signed: p.block,
            got: hash,
        });
    }
    if &h.chain_id != e.chain_id {
        return Err(ProposalError::WrongChain(h.chain_id.as_str().to_string()));
    }
    if h.height != p.height {
        return Err(ProposalError::BlockHeight(h.height));
    }
    let expected = proposer(e.chain_id, e.set, e.height, p.round);
    if p.proposer != expected {
        return Err(ProposalError::WrongProposer {
            round: p.round,
            expected,
            got: p.proposer,
        });
    }
    // A re-proposal (pol_round set) carries the block of an earlier round, built by
    // that round's proposer; only a fresh proposal must name its signer.
    if p.pol_round.is_none() && h.proposer != p.proposer {
        return Err(ProposalError::HeaderProposer(h.proposer));
    }
    if h.parent_hash != e.parent_hash {
        return Err(ProposalError::WrongParent {
            expected: e.parent_hash,
            got: h.parent_hash,
        });
    }
    if h.validator_set_hash != e.validator_set_hash {
        return Err(ProposalError::WrongValidatorSet);
    }
    if h.timestamp <= e.parent_timestamp {
        return Err(ProposalError::TimestampNotIncreasing {
            parent: e.parent_timestamp,
            got: h.timestamp,
        });
    }
    if h.timestamp > e.latest_timestamp {
        return Err(ProposalError::TimestampInFuture {
            latest: e.latest_timestamp,
            got: h.timestamp,
        });
    }
    if tx_root(&block.txs) != h.tx_root {
        return Err(ProposalError::TxRoot);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use atonomi_primitives::block::BlockHeader;
    use atonomi_primitives::state::Validator;
    use atonomi_primitives::{Keypair, ManufacturerId, Signature};

    fn set_of(labels: &[&str], power: u64) -> ValidatorSet {
        ValidatorSet {
            validators: labels
                .iter()
                .map(|l| Validator {
                    consensus_key: Keypair::from_label(l).account(),
                    peer_id: vec![1],
                    bridge_address: [0; 20],
                    power,
                    operator: ManufacturerId::new(1),
                })
                .collect(),
        }
    }

    #[test]
    fn validator_set_change_boundary() {
        let old = set_of(&["a", "b", "c", "d"], 1);
        let new = set_of(&["a", "b", "c", "e"], 1);
        // A change decided in block 10 is pending with effective height 12.
        let pending = PendingValidatorSet {
            effective_height: Height::new(12),
            set: new.clone(),
        };
        // (height being voted on, pending change in the state after height - 1, expected)
        let cases = [
            (11, Some(&pending), &old),
            (12, Some(&pending), &new),
            (13, Some(&pending), &new),
            (12, None, &old),
        ];
        for (height, pending, want) in cases {
            assert_eq!(
                voting_set(Height::new(height), &old, pending),
                want,
                "height {height}"
            );
        }
    }

    struct Fixture {
        chain: ChainId,
        set: ValidatorSet,
        cset: ConsensusSet,
        parent: Hash,
    }

    impl Fixture {
        fn new() -> Fixture {
            let set = set_of(&["v0", "v1", "v2", "v3"], 1);
            let cset = ConsensusSet::from_state(&set).unwrap();
            Fixture {
                chain: ChainId::new("glue").unwrap(),
                set,
                cset,
                parent: Hash::of(b"parent"),
            }
        }

        fn expected(&self) -> Expected<'_> {
            Expected {
                chain_id: &self.chain,
                height: Height::new(5),
                parent_hash: self.parent,
                parent_timestamp: Timestamp::new(1_000),
                validator_set_hash: self.set.hash(),
                set: &self.cset,
                latest_timestamp: Timestamp::new(5_000),
            }
        }

        /// A well-formed block and proposal for round `round`.
        fn proposal(&self, round: u32) -> (WireProposal, Block) {
            let proposer = proposer(&self.chain, &self.cset, Height::new(5), round);
            let txs = vec![b"tx1".to_vec(), b"tx2".to_vec()];
            let header = BlockHeader {
                chain_id: self.chain.clone(),
                height: Height::new(5),
                parent_hash: self.parent,
                timestamp: Timestamp::new(2_000),
                proposer,
                tx_root: tx_root(&txs),
                state_root: Hash::ZERO,
                receipts_root: Hash::ZERO,
                validator_set_hash: self.set.hash(),
                next_validator_set_hash: self.set.hash(),
            };
            let block = Block { header, txs };
            let p = WireProposal {
                height: Height::new(5),
                round,
                pol_round: None,
                block: block.hash(),
                proposer,
                signature: Signature([0; 64]),
            };
            (p, block)
        }
    }

    #[test]
    fn proposal_validation_table() {
        let f = Fixture::new();
        let e = f.expected();
        type Mutate = fn(&Fixture, &mut WireProposal, &mut Block);
        fn rehash(p: &mut WireProposal, b: &Block) {
            p.block = b.hash();
        }
        let cases: Vec<(&str, Mutate, Result<(), &str>)> = vec![
            ("well formed", |_, _, _| {}, Ok(())),
            (
                "proposal for another height",
                |_, p, _| p.height = Height::new(6),
                Err("WrongHeight"),
            ),
            (
                "header changed after signing",
                |_, _, b| b.header.timestamp = Timestamp::new(3_000),
                Err("HashMismatch"),
            ),
            // The block hash covers the header; the body is bound to it by the tx root.
            (
                "transactions swapped under the signed header",
                |_, _, b| b.txs.push(b"extra".to_vec()),
                Err("TxRoot"),
            ),
            (
                "other chain",
                |_, p, b| {
                    b.header.chain_id = ChainId::new("other").unwrap();
                    rehash(p, b)
                },
                Err("WrongChain"),
            ),
            (
                "header height differs",
                |_, p, b| {
                    b.header.height = Height::new(4);
                    rehash(p, b)
                },
                Err("BlockHeight"),
            ),
            (
                "signed by a validator out of turn",
                |f, p, _| {
                    let turn = proposer(&f.chain, &f.cset, Height::new(5), p.round);
                    p.proposer = f
                        .set
                        .validators
                        .iter()
                        .map(|v| v.consensus_key)
                        .find(|k| *k != turn)
                        .unwrap();
                },
                Err("WrongProposer"),
            ),
            (
                "header names someone else",
                |_, p, b| {
                    b.header.proposer = Keypair::from_label("zz").account();
                    rehash(p, b)
                },
                Err("HeaderProposer"),
            ),
            (
                "re-proposal of an earlier round's block",
                |_, p, b| {
                    b.header.proposer = Keypair::from_label("v0").account();
                    p.pol_round = Some(0);
                    rehash(p, b)
                },
                Ok(()),
            ),
            (
                "wrong parent",
                |_, p, b| {
                    b.header.parent_hash = Hash::ZERO;
                    rehash(p, b)
                },
                Err("WrongParent"),
            ),
            (
                "stale validator set",
                |_, p, b| {
                    b.header.validator_set_hash = Hash::ZERO;
                    rehash(p, b)
                },
                Err("WrongValidatorSet"),
            ),
            (
                "timestamp not after parent",
                |_, p, b| {
                    b.header.timestamp = Timestamp::new(1_000);
                    rehash(p, b)
                },
                Err("TimestampNotIncreasing"),
            ),
            (
                "timestamp from the future",
                |_, p, b| {
                    b.header.timestamp = Timestamp::new(5_001);
                    rehash(p, b)
                },
                Err("TimestampInFuture"),
            ),
            (
                "tx root does not match",
                |_, p, b| {
                    b.header.tx_root = Hash::ZERO;
                    rehash(p, b)
                },
                Err("TxRoot"),
            ),
        ];
        for round in [0u32, 3] {
            for (name, mutate, want) in &cases {
                let (mut p, mut b) = f.proposal(round);
                mutate(&f, &mut p, &mut b);
                let got = check_proposed_block(&p, &b, &e);
                match (want, &got) {
                    (Ok(()), Ok(())) => {}
                    (Err(kind), Err(err)) => {
                        assert!(format!("{err:?}").starts_with(kind), "{name}: got {err:?}")
                    }
                    _ => panic!("{name} (round {round}): expected {want:?}, got {got:?}"),
                }
            }
        }
    }
}
