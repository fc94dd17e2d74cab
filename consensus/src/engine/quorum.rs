//! The certificates Malachite asks a host to verify (commit, polka, round), checked by
//! one rule: votes of one height and round, each from a distinct member of the set
//! with a valid signature (checked as one batch), whose power passes the certificate's
//! threshold.

use crate::context::{Address, AtonomiContext, CHeight, ValidatorSet};
use crate::message;
use crate::vote::VoteType;
use atonomi_primitives::{crypto, ChainId, Hash, Signature};
use malachitebft_core_types as mc;
use mc::{CertificateError, NilOrVal, Round, ThresholdParams};
use mc::{Validator as _, ValidatorSet as _};
use std::collections::BTreeSet;

/// A certificate to verify, by kind.
pub(super) enum Certificate<'a> {
    /// Precommits for one block (an extended certificate's vote extensions, if any,
    /// already refused by the caller).
    Commit(&'a mc::CommitCertificate<AtonomiContext>),
    /// Prevotes for one block.
    Polka(&'a mc::PolkaCertificate<AtonomiContext>),
    /// Precommits (to skip ahead past a round) or any votes of a round (to skip to it).
    Round(&'a mc::RoundCertificate<AtonomiContext>),
}

/// One signed vote of a certificate.
struct Signed {
    address: Address,
    vote_type: VoteType,
    block: Option<Hash>,
    signature: [u8; 64],
}

impl Certificate<'_> {
    fn height(&self) -> CHeight {
        match self {
            Certificate::Commit(c) => c.height,
            Certificate::Polka(c) => c.height,
            Certificate::Round(c) => c.height,
        }
    }

    fn round(&self) -> Round {
        match self {
            Certificate::Commit(c) => c.round,
            Certificate::Polka(c) => c.round,
            Certificate::Round(c) => c.round,
        }
    }

    /// The share of the set's power its signers must pass.
    fn threshold(&self, thresholds: ThresholdParams) -> mc::ThresholdParam {
        match self {
            Certificate::Round(c) if c.cert_type == mc::RoundCertificateType::Skip => {
                thresholds.honest
            }
            _ => thresholds.quorum,
        }
    }

    /// Only precommits count (a commit, or a round certificate of precommits).
    fn precommits_only(&self) -> bool {
        match self {
            Certificate::Commit(_) => true,
            Certificate::Polka(_) => false,
            Certificate::Round(c) => c.cert_type == mc::RoundCertificateType::Precommit,
        }
    }

    fn votes(&self) -> Vec<Signed> {
        match self {
            Certificate::Commit(c) => c
                .commit_signatures
                .iter()
                .map(|s| Signed {
                    address: s.address,
                    vote_type: VoteType::Precommit,
                    block: Some(c.value_id),
                    signature: s.signature,
                })
                .collect(),
            Certificate::Polka(c) => c
                .polka_signatures
                .iter()
                .map(|s| Signed {
                    address: s.address,
                    vote_type: VoteType::Prevote,
                    block: Some(c.value_id),
                    signature: s.signature,
                })
                .collect(),
            Certificate::Round(c) => c
                .round_signatures
                .iter()
                .map(|s| Signed {
                    address: s.address,
                    vote_type: match s.vote_type {
                        mc::VoteType::Prevote => VoteType::Prevote,
                        mc::VoteType::Precommit => VoteType::Precommit,
                    },
                    block: match &s.value_id {
                        NilOrVal::Nil => None,
                        NilOrVal::Val(h) => Some(*h),
                    },
                    signature: s.signature,
                })
                .collect(),
        }
    }

    /// The error naming the vote at `index`, whose signature is invalid.
    fn invalid_signature(&self, index: usize) -> CertificateError<AtonomiContext> {
        match self {
            Certificate::Commit(c) => {
                CertificateError::InvalidCommitSignature(c.commit_signatures[index].clone())
            }
            Certificate::Polka(c) => {
                CertificateError::InvalidPolkaSignature(c.polka_signatures[index].clone())
            }
            Certificate::Round(c) => {
                CertificateError::InvalidRoundSignature(c.round_signatures[index].clone())
            }
        }
    }
}

/// Distinct known signers, each vote of the kind the certificate needs, valid
/// signatures, power above the certificate's threshold.
// The error type is the one Malachite resumes with.
#[allow(clippy::result_large_err)]
pub(super) fn verify_certificate(
    chain_id: &ChainId,
    certificate: Certificate<'_>,
    set: &ValidatorSet,
    thresholds: ThresholdParams,
) -> Result<(), CertificateError<AtonomiContext>> {
    let height = certificate.height();
    let round = certificate
        .round()
        .as_u32()
        .ok_or(CertificateError::VerificationError(None))?;
    let votes = certificate.votes();
    let mut seen = BTreeSet::new();
    let mut signed = 0u64;
    let mut checks = Vec::with_capacity(votes.len());
    for v in &votes {
        let power = member_once(set, v.address, &mut seen)?;
        if certificate.precommits_only() && v.vote_type != VoteType::Precommit {
            return Err(CertificateError::InvalidVoteType(v.address));
        }
        checks.push(message::vote_check(
            chain_id,
            height.0,
            round,
            v.vote_type,
            v.block,
            &v.address.0,
            &Signature(v.signature),
        ));
        signed = signed.saturating_add(power);
    }
    if let Some(bad) = crypto::first_invalid(&checks) {
        return Err(certificate.invalid_signature(bad));
    }
    check_power(
        signed,
        set.total_voting_power(),
        certificate.threshold(thresholds),
    )
}

/// A signer of a certificate: a member of `set`, listed once. Returns its power.
#[allow(clippy::result_large_err)]
fn member_once(
    set: &ValidatorSet,
    address: Address,
    seen: &mut BTreeSet<Address>,
) -> Result<u64, CertificateError<AtonomiContext>> {
    let v = set
        .get_by_address(&address)
        .ok_or(CertificateError::UnknownValidator(address))?;
    if !seen.insert(address) {
        return Err(CertificateError::DuplicateVote(address));
    }
    Ok(v.voting_power())
}

#[allow(clippy::result_large_err)]
fn check_power(
    signed: u64,
    total: u64,
    threshold: mc::ThresholdParam,
) -> Result<(), CertificateError<AtonomiContext>> {
    // Integer comparison in u128: signed · denominator > total · numerator.
    let met = u128::from(signed) * u128::from(threshold.denominator)
        > u128::from(total) * u128::from(threshold.numerator);
    if met {
        Ok(())
    } else {
        Err(CertificateError::NotEnoughVotingPower {
            signed,
            total,
            expected: threshold.min_expected(total),
        })
    }
}
