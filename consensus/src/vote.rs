//! Votes and their signing bytes.

use atonomi_primitives::codec;
use atonomi_primitives::crypto::{self, SignatureError};
use atonomi_primitives::{AccountId, ChainId, Hash, Height, Keypair, Signature};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// Signing domain of consensus votes.
pub const VOTE_DOMAIN: &str = "atonomi 2026 consensus vote v1";

/// A Tendermint round within a height.
pub type Round = u32;

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
pub enum VoteType {
    Prevote,
    Precommit,
}

/// A vote for a block (by hash) or for nil (`None`).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Vote {
    pub chain_id: ChainId,
    pub height: Height,
    pub round: Round,
    pub vote_type: VoteType,
    pub block: Option<Hash>,
    pub validator: AccountId,
}

impl Vote {
    pub fn signing_bytes(&self) -> Vec<u8> {
        codec::encode(self)
    }

    pub fn sign(self, key: &Keypair) -> SignedVote {
        let signature = key.sign(VOTE_DOMAIN, &self.signing_bytes());
        SignedVote {
            vote: self,
            signature,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SignedVote {
    pub vote: Vote,
    pub signature: Signature,
}

impl SignedVote {
    pub fn verify(&self) -> Result<(), SignatureError> {
        crypto::verify(
            &self.vote.validator,
            VOTE_DOMAIN,
            &self.vote.signing_bytes(),
            &self.signature,
        )
    }
}
