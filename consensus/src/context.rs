//! Our Malachite [`Context`]: ed25519 signing, our validator set and voting power, and
//! blocks as values identified by their hash (the block body travels separately and
//! is validated by executing it before voting).

use atonomi_primitives::state::ValidatorSet as StateValidatorSet;
use atonomi_primitives::{AccountId, ChainId, Hash, Height};
use malachitebft_core_types as mc;
use mc::{NilOrVal, Round, VoteType};
use std::fmt;

/// A validator's address: its consensus key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address(pub AccountId);

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl mc::Address for Address {}

/// Height as Malachite sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CHeight(pub Height);

impl fmt::Display for CHeight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl mc::Height for CHeight {
    const ZERO: Self = CHeight(Height::new(0));
    const INITIAL: Self = CHeight(Height::new(1));

    fn increment_by(&self, n: u64) -> Self {
        CHeight(Height::new(self.0.get().saturating_add(n)))
    }

    fn decrement_by(&self, n: u64) -> Option<Self> {
        self.0.get().checked_sub(n).map(|h| CHeight(Height::new(h)))
    }

    fn as_u64(&self) -> u64 {
        self.0.get()
    }
}

/// The value consensus decides: a block, by hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct BlockValue(pub Hash);

impl mc::Value for BlockValue {
    type Id = Hash;

    fn id(&self) -> Hash {
        self.0
    }
}

/// ed25519 as Malachite's signing scheme. Signatures are the 64 raw bytes, public
/// keys our account ids, private keys 32-byte seeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ed25519;

/// Bytes that are not an ed25519 signature or public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyDecodingError {
    #[error("a signature is 64 bytes, got {0}")]
    SignatureLength(usize),
    #[error("a public key is 32 bytes, got {0}")]
    PublicKeyLength(usize),
    #[error("32 bytes that are not an ed25519 public key")]
    NotAPublicKey,
}

impl mc::SigningScheme for Ed25519 {
    type DecodingError = KeyDecodingError;
    type Signature = [u8; 64];
    type PublicKey = AccountId;
    type PrivateKey = [u8; 32];

    fn decode_signature(bytes: &[u8]) -> Result<[u8; 64], KeyDecodingError> {
        bytes
            .try_into()
            .map_err(|_| KeyDecodingError::SignatureLength(bytes.len()))
    }

    fn encode_signature(signature: &[u8; 64]) -> Vec<u8> {
        signature.to_vec()
    }

    fn decode_public_key(bytes: &[u8]) -> Result<AccountId, KeyDecodingError> {
        let raw: [u8; 32] = bytes
            .try_into()
            .map_err(|_| KeyDecodingError::PublicKeyLength(bytes.len()))?;
        atonomi_primitives::PublicKey::from_bytes(&raw)
            .map_err(|_| KeyDecodingError::NotAPublicKey)?;
        Ok(AccountId::new(raw))
    }

    fn encode_public_key(public_key: &AccountId) -> Vec<u8> {
        public_key.0.to_vec()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validator {
    pub address: Address,
    pub public_key: AccountId,
    pub power: u64,
}

impl mc::Validator<AtonomiContext> for Validator {
    fn address(&self) -> &Address {
        &self.address
    }

    fn public_key(&self) -> &AccountId {
        &self.public_key
    }

    fn voting_power(&self) -> mc::VotingPower {
        self.power
    }
}

/// The validators of one height, sorted by address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    total: u64,
}

impl ValidatorSet {
    /// From the runtime's validator set. `None` when it is empty or has no voting
    /// power, so a `ValidatorSet` always has a proposer to select.
    pub fn from_state(set: &StateValidatorSet) -> Option<ValidatorSet> {
        let mut validators: Vec<Validator> = set
            .validators
            .iter()
            .map(|v| Validator {
                address: Address(v.consensus_key),
                public_key: v.consensus_key,
                power: v.power,
            })
            .collect();
        validators.sort_by_key(|v| v.address);
        let total = validators
            .iter()
            .fold(0u64, |acc, v| acc.saturating_add(v.power));
        if validators.is_empty() || total == 0 {
            return None;
        }
        Some(ValidatorSet { validators, total })
    }
}

impl mc::ValidatorSet<AtonomiContext> for ValidatorSet {
    fn count(&self) -> usize {
        self.validators.len()
    }

    fn total_voting_power(&self) -> mc::VotingPower {
        self.total
    }

    fn get_by_address(&self, address: &Address) -> Option<&Validator> {
        self.validators
            .binary_search_by_key(address, |v| v.address)
            .ok()
            .and_then(|i| self.validators.get(i))
    }

    fn get_by_index(&self, index: usize) -> Option<&Validator> {
        self.validators.get(index)
    }
}

/// No vote extensions.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct NoExtension;

impl mc::Extension for NoExtension {
    fn size_bytes(&self) -> usize {
        0
    }
}

/// Blocks travel whole with the proposal; there are no streamed parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoParts;

impl mc::ProposalPart<AtonomiContext> for NoParts {
    fn is_first(&self) -> bool {
        true
    }

    fn is_last(&self) -> bool {
        true
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsensusVote {
    pub height: CHeight,
    pub round: Round,
    pub value: NilOrVal<Hash>,
    pub vote_type: VoteType,
    pub validator: Address,
}

impl mc::Vote<AtonomiContext> for ConsensusVote {
    fn height(&self) -> CHeight {
        self.height
    }

    fn round(&self) -> Round {
        self.round
    }

    fn value(&self) -> &NilOrVal<Hash> {
        &self.value
    }

    fn take_value(self) -> NilOrVal<Hash> {
        self.value
    }

    fn vote_type(&self) -> VoteType {
        self.vote_type
    }

    fn validator_address(&self) -> &Address {
        &self.validator
    }

    fn extension(&self) -> Option<&mc::SignedExtension<AtonomiContext>> {
        None
    }

    fn take_extension(&mut self) -> Option<mc::SignedExtension<AtonomiContext>> {
        None
    }

    fn extend(self, _extension: mc::SignedExtension<AtonomiContext>) -> Self {
        self
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsensusProposal {
    pub height: CHeight,
    pub round: Round,
    pub value: BlockValue,
    pub pol_round: Round,
    pub proposer: Address,
}

impl mc::Proposal<AtonomiContext> for ConsensusProposal {
    fn height(&self) -> CHeight {
        self.height
    }

    fn round(&self) -> Round {
        self.round
    }

    fn value(&self) -> &BlockValue {
        &self.value
    }

    fn take_value(self) -> BlockValue {
        self.value
    }

    fn pol_round(&self) -> Round {
        self.pol_round
    }

    fn validator_address(&self) -> &Address {
        &self.proposer
    }
}

/// The context Malachite's core is instantiated with.
#[derive(Clone, Debug)]
pub struct AtonomiContext {
    pub chain_id: ChainId,
}

impl mc::Context for AtonomiContext {
    type Address = Address;
    type Height = CHeight;
    type ProposalPart = NoParts;
    type Proposal = ConsensusProposal;
    type Validator = Validator;
    type ValidatorSet = ValidatorSet;
    type Timeouts = mc::LinearTimeouts;
    type Value = BlockValue;
    type Vote = ConsensusVote;
    type Extension = NoExtension;
    type SigningScheme = Ed25519;

    /// Deterministic, power-weighted: a pseudo-random point in [0, total power) from
    /// blake3(height, round) picks the validator whose cumulative power covers it.
    /// Every node computes the same proposer; over many (height, round) pairs each
    /// validator proposes in proportion to its power.
    fn select_proposer<'a>(
        &self,
        set: &'a ValidatorSet,
        height: CHeight,
        round: Round,
    ) -> &'a Validator {
        proposer_index(set, height, round)
            .and_then(|i| set.validators.get(i))
            .unwrap_or_else(|| first_or_unreachable(set))
    }

    fn new_proposal(
        &self,
        height: CHeight,
        round: Round,
        value: BlockValue,
        pol_round: Round,
        address: Address,
    ) -> ConsensusProposal {
        ConsensusProposal {
            height,
            round,
            value,
            pol_round,
            proposer: address,
        }
    }

    fn new_prevote(
        &self,
        height: CHeight,
        round: Round,
        value_id: NilOrVal<Hash>,
        address: Address,
    ) -> ConsensusVote {
        ConsensusVote {
            height,
            round,
            value: value_id,
            vote_type: VoteType::Prevote,
            validator: address,
        }
    }

    fn new_precommit(
        &self,
        height: CHeight,
        round: Round,
        value_id: NilOrVal<Hash>,
        address: Address,
    ) -> ConsensusVote {
        ConsensusVote {
            height,
            round,
            value: value_id,
            vote_type: VoteType::Precommit,
            validator: address,
        }
    }
}

/// The proposer of (height, round): round 0's is drawn by power from
/// blake3(height); each later round passes to the next validator in set order. So a
/// validator proposes at round 0 in proportion to its power, and a height whose
/// proposers keep failing tries every validator within `n` rounds: with `f` of them
/// down, a live proposer comes within `f + 1` rounds. (Drawing every round afresh
/// could pick a validator that is down three rounds running, each round longer than
/// the last — a 26-second stall on a cluster of four with one down.)
fn proposer_index(set: &ValidatorSet, height: CHeight, round: Round) -> Option<usize> {
    if set.total == 0 || set.validators.is_empty() {
        return None;
    }
    let mut h = blake3::Hasher::new_derive_key("atonomi 2026 proposer selection v2");
    h.update(&height.0.get().to_be_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&h.finalize().as_bytes()[..8]);
    let point = u64::from_be_bytes(first) % set.total;
    let mut acc = 0u64;
    let first = set.validators.iter().position(|v| {
        acc = acc.saturating_add(v.power);
        point < acc
    })?;
    let later = round.as_u32().unwrap_or(0) as usize % set.validators.len();
    Some((first + later) % set.validators.len())
}

/// Unreachable: `ValidatorSet::from_state` never builds an empty set or one without
/// power, and the Context API has no error path.
#[allow(clippy::panic)]
fn first_or_unreachable(set: &ValidatorSet) -> &Validator {
    match set.validators.first() {
        Some(v) => v,
        None => panic!("consensus was started with an empty validator set"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atonomi_primitives::state::Validator as StateValidator;
    use atonomi_primitives::{Keypair, ManufacturerId};
    use mc::{Context as _, SigningScheme as _, ValidatorSet as _};
    use std::collections::BTreeMap;

    fn set(powers: &[u64]) -> ValidatorSet {
        let validators = powers
            .iter()
            .enumerate()
            .map(|(i, p)| StateValidator {
                consensus_key: Keypair::from_label(&format!("ctx{i}")).account(),
                peer_id: vec![1],
                bridge_address: [0; 20],
                power: *p,
                operator: ManufacturerId::new(1),
            })
            .collect();
        ValidatorSet::from_state(&StateValidatorSet { validators }).unwrap()
    }

    #[test]
    fn empty_or_powerless_sets_are_refused() {
        assert!(ValidatorSet::from_state(&StateValidatorSet::default()).is_none());
        let mut s = StateValidatorSet::default();
        s.validators.push(StateValidator {
            consensus_key: Keypair::from_label("z").account(),
            peer_id: vec![1],
            bridge_address: [0; 20],
            power: 0,
            operator: ManufacturerId::new(1),
        });
        assert!(ValidatorSet::from_state(&s).is_none());
    }

    #[test]
    fn proposer_selection_is_deterministic_and_weighted() {
        let ctx = AtonomiContext {
            chain_id: ChainId::new("t").unwrap(),
        };
        let s = set(&[1, 1, 1, 7]);
        let mut counts: BTreeMap<Address, u32> = BTreeMap::new();
        for h in 1..=2_000u64 {
            let p = ctx.select_proposer(&s, CHeight(Height::new(h)), Round::new(0));
            assert_eq!(
                p,
                ctx.select_proposer(&s, CHeight(Height::new(h)), Round::new(0))
            );
            *counts.entry(p.address).or_default() += 1;
        }
        let heavy = s.validators.iter().find(|v| v.power == 7).unwrap().address;
        let share = f64::from(counts[&heavy]) / 2_000.0;
        assert!(
            (0.62..0.78).contains(&share),
            "power-7 validator proposed {share}"
        );
        assert_eq!(counts.len(), 4, "every validator proposes sometimes");
    }

    /// Whatever the powers, any `n` consecutive rounds of a height have `n` different
    /// proposers (a validator that is down cannot fail two rounds of the same `n`).
    #[test]
    fn consecutive_rounds_pass_the_proposal_to_every_validator() {
        let ctx = AtonomiContext {
            chain_id: ChainId::new("t").unwrap(),
        };
        for powers in [&[1u64, 1, 1, 1][..], &[1, 1, 1, 7], &[5, 1, 3, 2, 9, 1, 1]] {
            let s = set(powers);
            let n = s.validators.len() as u32;
            for h in 1..=200u64 {
                let h = CHeight(Height::new(h));
                for start in [0u32, 1, 5, 1_000] {
                    let distinct: std::collections::BTreeSet<_> = (start..start + n)
                        .map(|r| ctx.select_proposer(&s, h, Round::new(r)).address)
                        .collect();
                    assert_eq!(distinct.len(), n as usize, "height {h:?} rounds {start}..");
                }
            }
        }
    }

    #[test]
    fn lookups_and_signing_scheme() {
        let s = set(&[3, 4]);
        assert_eq!(s.total_voting_power(), 7);
        let v = s.get_by_index(1).unwrap().clone();
        assert_eq!(s.get_by_address(&v.address), Some(&v));
        assert_eq!(s.get_by_address(&Address(AccountId::new([9; 32]))), None);
        assert!(Ed25519::decode_signature(&[0u8; 63]).is_err());
        assert!(Ed25519::decode_public_key(&[0u8; 31]).is_err());
        let pk = Ed25519::decode_public_key(&v.public_key.0).unwrap();
        assert_eq!(Ed25519::encode_public_key(&pk), v.public_key.0.to_vec());
    }
}
