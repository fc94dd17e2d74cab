//! Commit certificates: the precommits of more than 2/3 of the voting power for one
//! block at one (height, round). Any node verifies one with the validator set of that
//! height alone.

use crate::vote::{Round, VoteType};
use atonomi_primitives::codec::bounded;
use atonomi_primitives::state::{limits, ValidatorSet};
use atonomi_primitives::{crypto, AccountId, ChainId, Hash, Height, Signature};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct CommitCertificate {
    pub height: Height,
    pub round: Round,
    pub block: Hash,
    #[borsh(
        deserialize_with = "bounded::vec::<_, (AccountId, Signature), { limits::VALIDATORS }>"
    )]
    pub signatures: Vec<(AccountId, Signature)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("signer {0} is not in the validator set of this height")]
    UnknownValidator(AccountId),
    #[error("signer {0} appears twice")]
    DuplicateSigner(AccountId),
    #[error("signature of {0} does not verify")]
    BadSignature(AccountId),
    #[error("signed power {signed} of {total} is not more than 2/3")]
    InsufficientPower { signed: u128, total: u128 },
}

/// `signed > 2/3 · total`, in integers.
pub fn is_quorum(signed: u128, total: u128) -> bool {
    signed.saturating_mul(3) > total.saturating_mul(2)
}

impl CommitCertificate {
    /// Checks the certificate against `set` (the validators of `self.height`); returns
    /// the signed power.
    pub fn verify(&self, chain_id: &ChainId, set: &ValidatorSet) -> Result<u128, CertificateError> {
        let mut seen = BTreeSet::new();
        let mut signed = 0u128;
        let mut checks = Vec::with_capacity(self.signatures.len());
        for (validator, signature) in &self.signatures {
            // Cheap checks first: membership and duplicates cost no curve arithmetic.
            let v = set
                .get(validator)
                .ok_or(CertificateError::UnknownValidator(*validator))?;
            if !seen.insert(*validator) {
                return Err(CertificateError::DuplicateSigner(*validator));
            }
            checks.push(crate::message::vote_check(
                chain_id,
                self.height,
                self.round,
                VoteType::Precommit,
                Some(self.block),
                validator,
                signature,
            ));
            signed += u128::from(v.power);
        }
        // All signatures in one batch.
        if let Some(bad) = crypto::first_invalid(&checks) {
            return Err(CertificateError::BadSignature(checks[bad].signer));
        }
        let total = set.total_power();
        if !is_quorum(signed, total) {
            return Err(CertificateError::InsufficientPower { signed, total });
        }
        Ok(signed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vote::Vote;
    use atonomi_primitives::state::Validator;
    use atonomi_primitives::Keypair;

    fn setup(powers: &[u64]) -> (ChainId, Vec<Keypair>, ValidatorSet) {
        let keys: Vec<Keypair> = (0..powers.len())
            .map(|i| Keypair::from_label(&format!("val{i}")))
            .collect();
        let validators = keys
            .iter()
            .zip(powers)
            .map(|(k, p)| Validator {
                consensus_key: k.account(),
                peer_id: vec![1],
                bridge_address: [0; 20],
                power: *p,
                operator: atonomi_primitives::ManufacturerId::new(1),
            })
            .collect();
        (
            ChainId::new("test").unwrap(),
            keys,
            ValidatorSet { validators },
        )
    }

    fn cert(chain: &ChainId, keys: &[&Keypair], block: Hash) -> CommitCertificate {
        let signatures = keys
            .iter()
            .map(|k| {
                let v = Vote {
                    chain_id: chain.clone(),
                    height: Height::new(5),
                    round: 1,
                    vote_type: VoteType::Precommit,
                    block: Some(block),
                    validator: k.account(),
                };
                (k.account(), v.sign(k).signature)
            })
            .collect();
        CommitCertificate {
            height: Height::new(5),
            round: 1,
            block,
            signatures,
        }
    }

    #[test]
    fn table() {
        let (chain, k, set) = setup(&[1, 1, 1, 1]);
        let b = Hash::of(b"block");
        // (certificate, expected)
        let mut wrong_block = cert(&chain, &[&k[0], &k[1], &k[2]], b);
        wrong_block.block = Hash::of(b"other");
        let mut wrong_round = cert(&chain, &[&k[0], &k[1], &k[2]], b);
        wrong_round.round = 2;
        let stranger = Keypair::from_label("stranger");
        let cases: Vec<(CommitCertificate, Result<u128, CertificateError>)> = vec![
            (cert(&chain, &[&k[0], &k[1], &k[2]], b), Ok(3)),
            (cert(&chain, &[&k[0], &k[1], &k[2], &k[3]], b), Ok(4)),
            (
                cert(&chain, &[&k[0], &k[1]], b),
                Err(CertificateError::InsufficientPower {
                    signed: 2,
                    total: 4,
                }),
            ),
            (
                cert(&chain, &[&k[0], &k[1], &k[1]], b),
                Err(CertificateError::DuplicateSigner(k[1].account())),
            ),
            (
                cert(&chain, &[&k[0], &k[1], &stranger], b),
                Err(CertificateError::UnknownValidator(stranger.account())),
            ),
            (
                wrong_block,
                Err(CertificateError::BadSignature(k[0].account())),
            ),
            (
                wrong_round,
                Err(CertificateError::BadSignature(k[0].account())),
            ),
        ];
        for (i, (c, want)) in cases.into_iter().enumerate() {
            assert_eq!(c.verify(&chain, &set), want, "case {i}");
        }
        // Another chain's votes do not count here.
        let other = ChainId::new("other").unwrap();
        assert!(cert(&other, &[&k[0], &k[1], &k[2]], b)
            .verify(&chain, &set)
            .is_err());
    }

    #[test]
    fn quorum_is_by_power_not_count() {
        let (chain, k, set) = setup(&[10, 1, 1, 1]);
        let b = Hash::of(b"b");
        assert_eq!(cert(&chain, &[&k[0]], b).verify(&chain, &set), Ok(10));
        assert!(cert(&chain, &[&k[1], &k[2], &k[3]], b)
            .verify(&chain, &set)
            .is_err());
        assert!(!is_quorum(2, 3) && is_quorum(3, 4) && !is_quorum(6, 9) && is_quorum(7, 9));
    }
}
