//! Consensus messages as they travel and as the write-ahead log stores them: our own
//! borsh encodings, bounded before decoding, converted to and from Malachite's types at
//! the edge of the engine.
//!
//! Signing bytes: a vote is signed as [`crate::vote::Vote`] (the same bytes a commit
//! certificate is checked against), a proposal as [`ProposalSigning`]. Both include the
//! chain id, so a signature never counts on another chain.

use crate::context::{
    Address, AtonomiContext, BlockValue, CHeight, ConsensusProposal, ConsensusVote,
};
use crate::vote::{Vote, VoteType, VOTE_DOMAIN};
use atonomi_primitives::codec::{self, bounded};
use atonomi_primitives::state::limits;
use atonomi_primitives::{
    crypto, AccountId, ChainId, CodecError, Hash, Height, Keypair, Signature,
};
use borsh::{BorshDeserialize, BorshSerialize};
use malachitebft_core_consensus::{ConsensusMsg, ProposedValue};
use malachitebft_core_types as mc;
use mc::{NilOrVal, Round, SignedMessage, Timeout, TimeoutKind, Validity, ValueOrigin};

/// Signing domain of block proposals.
pub const PROPOSAL_DOMAIN: &str = "atonomi 2026 consensus proposal v1";

/// Largest encoded consensus message or WAL entry accepted (a round certificate of the
/// largest validator set is the biggest: about 256 · 170 bytes).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The bytes a proposer signs.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ProposalSigning {
    pub chain_id: ChainId,
    pub height: Height,
    pub round: u32,
    pub pol_round: Option<u32>,
    pub block: Hash,
    pub proposer: AccountId,
}

/// A signed prevote or precommit.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct WireVote {
    pub height: Height,
    pub round: u32,
    pub vote_type: VoteType,
    pub block: Option<Hash>,
    pub validator: AccountId,
    pub signature: Signature,
}

/// A signed proposal of a block, by hash; the block travels beside it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct WireProposal {
    pub height: Height,
    pub round: u32,
    pub pol_round: Option<u32>,
    pub block: Hash,
    pub proposer: AccountId,
    pub signature: Signature,
}

/// More than 2/3 of the prevotes of one round for one block.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct WirePolka {
    pub height: Height,
    pub round: u32,
    pub block: Hash,
    #[borsh(
        deserialize_with = "bounded::vec::<_, (AccountId, Signature), { limits::VALIDATORS }>"
    )]
    pub signatures: Vec<(AccountId, Signature)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum RoundCertificateKind {
    /// f+1 votes of a higher round: skip to it.
    Skip,
    /// 2f+1 precommits of a round: move to the next.
    Precommit,
}

/// One vote inside a round certificate.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct RoundVote {
    pub vote_type: VoteType,
    pub block: Option<Hash>,
    pub validator: AccountId,
    pub signature: Signature,
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct WireRoundCertificate {
    pub height: Height,
    pub round: u32,
    pub kind: RoundCertificateKind,
    #[borsh(deserialize_with = "bounded::vec::<_, RoundVote, { limits::VALIDATORS }>")]
    pub votes: Vec<RoundVote>,
}

/// Everything consensus sends to the other validators.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum ConsensusMessage {
    Vote(WireVote),
    Proposal(WireProposal),
    Polka(WirePolka),
    RoundCertificate(WireRoundCertificate),
}

impl ConsensusMessage {
    pub fn height(&self) -> Height {
        match self {
            ConsensusMessage::Vote(v) => v.height,
            ConsensusMessage::Proposal(p) => p.height,
            ConsensusMessage::Polka(p) => p.height,
            ConsensusMessage::RoundCertificate(c) => c.height,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        codec::encode(self)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<ConsensusMessage, CodecError> {
        codec::decode(bytes, MAX_MESSAGE_BYTES)
    }
}

/// A value the host validated (or built), as consensus learns of it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ProposedBlock {
    pub height: Height,
    pub round: u32,
    pub pol_round: Option<u32>,
    pub proposer: AccountId,
    pub block: Hash,
    pub valid: bool,
}

/// One record of the consensus write-ahead log: the inputs whose effect on the
/// Tendermint state (votes cast and seen, locks, valid values, timeouts taken) must
/// survive a crash.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum WalEntry {
    Vote(WireVote),
    Proposal(WireProposal),
    ProposedValue {
        value: ProposedBlock,
        from_sync: bool,
    },
    Timeout {
        round: u32,
        kind: WalTimeoutKind,
    },
    Polka(WirePolka),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum WalTimeoutKind {
    Propose,
    Prevote,
    Precommit,
}

/// A WAL record: the height it belongs to and the entry.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct WalRecord {
    pub height: Height,
    pub entry: WalEntry,
}

impl WalRecord {
    pub fn to_bytes(&self) -> Vec<u8> {
        codec::encode(self)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<WalRecord, CodecError> {
        codec::decode(bytes, MAX_MESSAGE_BYTES)
    }
}

/// Why a message could not be turned into a consensus input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("round {0} is not a valid round")]
    BadRound(u64),
    #[error("this input is not written to the WAL")]
    NotPersisted,
}

// ---- conversions -------------------------------------------------------------------

fn round_of(r: u32) -> Round {
    Round::new(r)
}

fn opt_round(r: Option<u32>) -> Round {
    r.map_or(Round::Nil, Round::new)
}

/// A defined Malachite round as ours; `None` for nil.
pub fn defined_round(r: Round) -> Option<u32> {
    r.as_u32()
}

fn round_u32(r: Round) -> Result<u32, MessageError> {
    r.as_u32().ok_or(MessageError::BadRound(u64::MAX))
}

fn nil_or(block: Option<Hash>) -> NilOrVal<Hash> {
    block.map_or(NilOrVal::Nil, NilOrVal::Val)
}

fn from_nil_or(v: &NilOrVal<Hash>) -> Option<Hash> {
    match v {
        NilOrVal::Nil => None,
        NilOrVal::Val(h) => Some(*h),
    }
}

fn mc_vote_type(t: VoteType) -> mc::VoteType {
    match t {
        VoteType::Prevote => mc::VoteType::Prevote,
        VoteType::Precommit => mc::VoteType::Precommit,
    }
}

fn our_vote_type(t: mc::VoteType) -> VoteType {
    match t {
        mc::VoteType::Prevote => VoteType::Prevote,
        mc::VoteType::Precommit => VoteType::Precommit,
    }
}

pub type McSignedVote = mc::SignedVote<AtonomiContext>;
pub type McSignedProposal = mc::SignedProposal<AtonomiContext>;

impl WireVote {
    pub fn to_mc(&self) -> McSignedVote {
        let vote = ConsensusVote {
            height: CHeight(self.height),
            round: round_of(self.round),
            value: nil_or(self.block),
            vote_type: mc_vote_type(self.vote_type),
            validator: Address(self.validator),
        };
        SignedMessage::new(vote, self.signature.0)
    }

    pub fn from_mc(v: &McSignedVote) -> Result<WireVote, MessageError> {
        Ok(WireVote {
            height: v.message.height.0,
            round: round_u32(v.message.round)?,
            vote_type: our_vote_type(v.message.vote_type),
            block: from_nil_or(&v.message.value),
            validator: v.message.validator.0,
            signature: Signature(v.signature),
        })
    }
}

impl WireProposal {
    pub fn to_mc(&self) -> McSignedProposal {
        let proposal = ConsensusProposal {
            height: CHeight(self.height),
            round: round_of(self.round),
            value: BlockValue(self.block),
            pol_round: opt_round(self.pol_round),
            proposer: Address(self.proposer),
        };
        SignedMessage::new(proposal, self.signature.0)
    }

    pub fn from_mc(p: &McSignedProposal) -> Result<WireProposal, MessageError> {
        Ok(WireProposal {
            height: p.message.height.0,
            round: round_u32(p.message.round)?,
            pol_round: defined_round(p.message.pol_round),
            block: p.message.value.0,
            proposer: p.message.proposer.0,
            signature: Signature(p.signature),
        })
    }
}

impl WirePolka {
    pub fn to_mc(&self) -> mc::PolkaCertificate<AtonomiContext> {
        mc::PolkaCertificate {
            height: CHeight(self.height),
            round: round_of(self.round),
            value_id: self.block,
            polka_signatures: self
                .signatures
                .iter()
                .map(|(a, s)| mc::PolkaSignature::new(Address(*a), s.0))
                .collect(),
        }
    }

    pub fn from_mc(c: &mc::PolkaCertificate<AtonomiContext>) -> Result<WirePolka, MessageError> {
        Ok(WirePolka {
            height: c.height.0,
            round: round_u32(c.round)?,
            block: c.value_id,
            signatures: c
                .polka_signatures
                .iter()
                .map(|s| (s.address.0, Signature(s.signature)))
                .collect(),
        })
    }
}

impl WireRoundCertificate {
    pub fn to_mc(&self) -> mc::RoundCertificate<AtonomiContext> {
        mc::RoundCertificate {
            height: CHeight(self.height),
            round: round_of(self.round),
            cert_type: match self.kind {
                RoundCertificateKind::Skip => mc::RoundCertificateType::Skip,
                RoundCertificateKind::Precommit => mc::RoundCertificateType::Precommit,
            },
            round_signatures: self
                .votes
                .iter()
                .map(|v| {
                    mc::RoundSignature::new(
                        mc_vote_type(v.vote_type),
                        nil_or(v.block),
                        Address(v.validator),
                        v.signature.0,
                    )
                })
                .collect(),
        }
    }

    pub fn from_mc(
        c: &mc::RoundCertificate<AtonomiContext>,
    ) -> Result<WireRoundCertificate, MessageError> {
        Ok(WireRoundCertificate {
            height: c.height.0,
            round: round_u32(c.round)?,
            kind: match c.cert_type {
                mc::RoundCertificateType::Skip => RoundCertificateKind::Skip,
                mc::RoundCertificateType::Precommit => RoundCertificateKind::Precommit,
            },
            votes: c
                .round_signatures
                .iter()
                .map(|s| RoundVote {
                    vote_type: our_vote_type(s.vote_type),
                    block: from_nil_or(&s.value_id),
                    validator: s.address.0,
                    signature: Signature(s.signature),
                })
                .collect(),
        })
    }
}

impl ProposedBlock {
    pub fn to_mc(&self) -> ProposedValue<AtonomiContext> {
        ProposedValue {
            height: CHeight(self.height),
            round: round_of(self.round),
            valid_round: opt_round(self.pol_round),
            proposer: Address(self.proposer),
            value: BlockValue(self.block),
            validity: if self.valid {
                Validity::Valid
            } else {
                Validity::Invalid
            },
        }
    }

    pub fn from_mc(v: &ProposedValue<AtonomiContext>) -> Result<ProposedBlock, MessageError> {
        Ok(ProposedBlock {
            height: v.height.0,
            round: round_u32(v.round)?,
            pol_round: defined_round(v.valid_round),
            proposer: v.proposer.0,
            block: v.value.0,
            valid: v.validity.is_valid(),
        })
    }
}

impl WalEntry {
    /// The entry for a Malachite input, or `NotPersisted` for inputs the WAL does not keep.
    pub fn from_input(
        input: &malachitebft_core_consensus::Input<AtonomiContext>,
    ) -> Result<WalEntry, MessageError> {
        use malachitebft_core_consensus::Input;
        Ok(match input {
            Input::Vote(v) => WalEntry::Vote(WireVote::from_mc(v)?),
            Input::Proposal(p) => WalEntry::Proposal(WireProposal::from_mc(p)?),
            Input::ProposedValue(v, origin) => WalEntry::ProposedValue {
                value: ProposedBlock::from_mc(v)?,
                from_sync: *origin == ValueOrigin::Sync,
            },
            Input::TimeoutElapsed(t) => {
                let kind = match t.kind {
                    TimeoutKind::Propose => WalTimeoutKind::Propose,
                    TimeoutKind::Prevote => WalTimeoutKind::Prevote,
                    TimeoutKind::Precommit => WalTimeoutKind::Precommit,
                    _ => return Err(MessageError::NotPersisted),
                };
                WalEntry::Timeout {
                    round: round_u32(t.round)?,
                    kind,
                }
            }
            Input::PolkaCertificate(c) => WalEntry::Polka(WirePolka::from_mc(c)?),
            _ => return Err(MessageError::NotPersisted),
        })
    }

    pub fn to_input(&self) -> malachitebft_core_consensus::Input<AtonomiContext> {
        use malachitebft_core_consensus::Input;
        match self {
            WalEntry::Vote(v) => Input::Vote(v.to_mc()),
            WalEntry::Proposal(p) => Input::Proposal(p.to_mc()),
            WalEntry::ProposedValue { value, from_sync } => Input::ProposedValue(
                value.to_mc(),
                if *from_sync {
                    ValueOrigin::Sync
                } else {
                    ValueOrigin::Consensus
                },
            ),
            WalEntry::Timeout { round, kind } => {
                let kind = match kind {
                    WalTimeoutKind::Propose => TimeoutKind::Propose,
                    WalTimeoutKind::Prevote => TimeoutKind::Prevote,
                    WalTimeoutKind::Precommit => TimeoutKind::Precommit,
                };
                Input::TimeoutElapsed(Timeout::new(round_of(*round), kind))
            }
            WalEntry::Polka(c) => Input::PolkaCertificate(c.to_mc()),
        }
    }
}

// ---- signing and verification ---------------------------------------------------------

fn vote_bytes(chain_id: &ChainId, v: &ConsensusVote) -> Option<Vec<u8>> {
    Some(
        Vote {
            chain_id: chain_id.clone(),
            height: v.height.0,
            round: v.round.as_u32()?,
            vote_type: our_vote_type(v.vote_type),
            block: from_nil_or(&v.value),
            validator: v.validator.0,
        }
        .signing_bytes(),
    )
}

fn proposal_bytes(chain_id: &ChainId, p: &ConsensusProposal) -> Option<Vec<u8>> {
    Some(codec::encode(&ProposalSigning {
        chain_id: chain_id.clone(),
        height: p.height.0,
        round: p.round.as_u32()?,
        pol_round: defined_round(p.pol_round),
        block: p.value.0,
        proposer: p.proposer.0,
    }))
}

/// Signs a vote; `None` for a vote at the nil round, which is never signed.
pub fn sign_vote(chain_id: &ChainId, key: &Keypair, vote: &ConsensusVote) -> Option<[u8; 64]> {
    vote_bytes(chain_id, vote).map(|b| key.sign(VOTE_DOMAIN, &b).0)
}

pub fn sign_proposal(
    chain_id: &ChainId,
    key: &Keypair,
    proposal: &ConsensusProposal,
) -> Option<[u8; 64]> {
    proposal_bytes(chain_id, proposal).map(|b| key.sign(PROPOSAL_DOMAIN, &b).0)
}

/// Verifies a consensus message's signature under `key`.
pub fn verify_message(
    chain_id: &ChainId,
    msg: &ConsensusMsg<AtonomiContext>,
    signature: &[u8; 64],
    key: &AccountId,
) -> bool {
    let (domain, bytes) = match msg {
        ConsensusMsg::Vote(v) => (VOTE_DOMAIN, vote_bytes(chain_id, v)),
        ConsensusMsg::Proposal(p) => (PROPOSAL_DOMAIN, proposal_bytes(chain_id, p)),
    };
    match bytes {
        Some(bytes) => crypto::verify(key, domain, &bytes, &Signature(*signature)).is_ok(),
        None => false,
    }
}

/// Verifies one vote signature given its parts.
pub fn verify_vote_parts(
    chain_id: &ChainId,
    height: Height,
    round: u32,
    vote_type: VoteType,
    block: Option<Hash>,
    validator: &AccountId,
    signature: &Signature,
) -> bool {
    vote_check(
        chain_id, height, round, vote_type, block, validator, signature,
    )
    .verify()
}

/// One vote signature as an item of a batch: certificates check all of theirs at once.
pub fn vote_check(
    chain_id: &ChainId,
    height: Height,
    round: u32,
    vote_type: VoteType,
    block: Option<Hash>,
    validator: &AccountId,
    signature: &Signature,
) -> crypto::SignatureCheck {
    let vote = Vote {
        chain_id: chain_id.clone(),
        height,
        round,
        vote_type,
        block,
        validator: *validator,
    };
    crypto::SignatureCheck::new(validator, VOTE_DOMAIN, &vote.signing_bytes(), signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain() -> ChainId {
        ChainId::new("msg-test").unwrap()
    }

    #[test]
    fn vote_round_trips_and_signature_binds_every_field() {
        let key = Keypair::from_label("m0");
        let cv = ConsensusVote {
            height: CHeight(Height::new(7)),
            round: Round::new(2),
            value: NilOrVal::Val(Hash::of(b"b")),
            vote_type: mc::VoteType::Precommit,
            validator: Address(key.account()),
        };
        let sig = sign_vote(&chain(), &key, &cv).unwrap();
        let wire = WireVote::from_mc(&SignedMessage::new(cv.clone(), sig)).unwrap();
        let back =
            ConsensusMessage::from_bytes(&ConsensusMessage::Vote(wire.clone()).to_bytes()).unwrap();
        assert_eq!(back, ConsensusMessage::Vote(wire.clone()));
        assert_eq!(wire.to_mc().message, cv);
        assert!(verify_message(
            &chain(),
            &ConsensusMsg::Vote(cv.clone()),
            &sig,
            &key.account()
        ));
        let mut other = cv.clone();
        other.round = Round::new(3);
        assert!(!verify_message(
            &chain(),
            &ConsensusMsg::Vote(other),
            &sig,
            &key.account()
        ));
        let mut nil = cv.clone();
        nil.value = NilOrVal::Nil;
        assert!(!verify_message(
            &chain(),
            &ConsensusMsg::Vote(nil),
            &sig,
            &key.account()
        ));
        assert!(!verify_message(
            &ChainId::new("other").unwrap(),
            &ConsensusMsg::Vote(cv),
            &sig,
            &key.account()
        ));
        // The signature is the one a commit certificate checks.
        assert!(verify_vote_parts(
            &chain(),
            Height::new(7),
            2,
            VoteType::Precommit,
            Some(Hash::of(b"b")),
            &key.account(),
            &Signature(sig)
        ));
    }

    #[test]
    fn proposal_signature_binds_pol_round_and_proposer() {
        let key = Keypair::from_label("m1");
        let p = ConsensusProposal {
            height: CHeight(Height::new(3)),
            round: Round::new(1),
            value: BlockValue(Hash::of(b"x")),
            pol_round: Round::Nil,
            proposer: Address(key.account()),
        };
        let sig = sign_proposal(&chain(), &key, &p).unwrap();
        assert!(verify_message(
            &chain(),
            &ConsensusMsg::Proposal(p.clone()),
            &sig,
            &key.account()
        ));
        let mut q = p.clone();
        q.pol_round = Round::new(0);
        assert!(!verify_message(
            &chain(),
            &ConsensusMsg::Proposal(q),
            &sig,
            &key.account()
        ));
        let wire = WireProposal::from_mc(&SignedMessage::new(p.clone(), sig)).unwrap();
        assert_eq!(wire.to_mc().message, p);
    }

    #[test]
    fn garbage_and_oversized_messages_are_errors() {
        assert!(ConsensusMessage::from_bytes(&[9, 9, 9]).is_err());
        assert!(ConsensusMessage::from_bytes(&vec![2u8; MAX_MESSAGE_BYTES + 1]).is_err());
        // A polka claiming 2^32 signatures is refused before allocating.
        let mut bytes = vec![2u8];
        bytes.extend_from_slice(&1u64.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&[0u8; 32]);
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(ConsensusMessage::from_bytes(&bytes).is_err());
        assert!(WalRecord::from_bytes(&[1, 2]).is_err());
    }

    #[test]
    fn wal_entries_round_trip_through_malachite_inputs() {
        let key = Keypair::from_label("m2");
        let entries = vec![
            WalEntry::Timeout {
                round: 4,
                kind: WalTimeoutKind::Prevote,
            },
            WalEntry::ProposedValue {
                value: ProposedBlock {
                    height: Height::new(2),
                    round: 1,
                    pol_round: Some(0),
                    proposer: key.account(),
                    block: Hash::of(b"v"),
                    valid: false,
                },
                from_sync: true,
            },
            WalEntry::Polka(WirePolka {
                height: Height::new(2),
                round: 0,
                block: Hash::of(b"v"),
                signatures: vec![(key.account(), Signature([3; 64]))],
            }),
            WalEntry::Vote(WireVote {
                height: Height::new(2),
                round: 0,
                vote_type: VoteType::Prevote,
                block: None,
                validator: key.account(),
                signature: Signature([1; 64]),
            }),
            WalEntry::Proposal(WireProposal {
                height: Height::new(2),
                round: 0,
                pol_round: None,
                block: Hash::ZERO,
                proposer: key.account(),
                signature: Signature([2; 64]),
            }),
        ];
        for e in entries {
            assert_eq!(WalEntry::from_input(&e.to_input()).unwrap(), e);
            let rec = WalRecord {
                height: Height::new(2),
                entry: e,
            };
            assert_eq!(WalRecord::from_bytes(&rec.to_bytes()).unwrap(), rec);
        }
        let t =
            malachitebft_core_consensus::Input::TimeoutElapsed(Timeout::rebroadcast(Round::new(0)));
        assert_eq!(WalEntry::from_input(&t), Err(MessageError::NotPersisted));
    }
}
