//! Malachite's effects, handled synchronously: each becomes an [`Action`] for the host,
//! a WAL record or a guard update in the [`Step`] being collected, or an answer
//! Malachite resumes with (a signature authorized by the guard first, a certificate
//! verified by [`super::quorum`]).

use super::quorum::{verify_certificate, Certificate};
use super::{commit_from_mc, round_u32, Action, Evidence, Step};
use crate::context::AtonomiContext;
use crate::guard::{SignGuard, Step as GuardStep};
use crate::message::{
    self, ConsensusMessage, MessageError, WalEntry, WalRecord, WirePolka, WireProposal,
    WireRoundCertificate, WireVote,
};
use atonomi_primitives::{ChainId, Hash, Height, Keypair};
use malachitebft_core_consensus::{
    self as mcc, Effect, LivenessMsg, Resumable, Resume, SignedConsensusMsg,
};
use malachitebft_core_types as mc;
use mc::{CertificateError, LinearTimeouts, NilOrVal, Round, Timeout, TimeoutKind};
use std::collections::BTreeSet;
use std::time::Duration;

/// Why an effect handler could not produce what Malachite asked for.
#[derive(Debug)]
pub(super) enum EffectError {
    /// The guard refused; the reason is in the step's [`Action::SignRefused`].
    Refused,
    NotAValidator,
    NilRound,
}

/// Our side of Malachite's effects: the keys, the guard and the timeouts, and the step
/// being collected for the host.
pub(super) struct Effects {
    pub(super) chain_id: ChainId,
    pub(super) signer: Option<Keypair>,
    pub(super) guard: SignGuard,
    pub(super) timeouts: LinearTimeouts,
    /// Encoded WAL entries being replayed; re-appending them is skipped.
    pub(super) replayed: BTreeSet<Vec<u8>>,
    pub(super) out: Step,
}

impl Effects {
    fn push(&mut self, action: Action) {
        self.out.actions.push(action);
    }

    fn broadcast(&mut self, msg: Result<ConsensusMessage, MessageError>) {
        // Malachite only publishes messages at defined rounds; a conversion error
        // would be a message we could not have signed, so it is dropped.
        if let Ok(msg) = msg {
            self.push(Action::Broadcast(msg));
        }
    }

    fn duration(&self, timeout: Timeout) -> Duration {
        let t = if timeout.round.is_defined() {
            timeout
        } else {
            Timeout::new(Round::new(0), timeout.kind)
        };
        match t.kind {
            TimeoutKind::FinalizeHeight(d) => d,
            _ => self.timeouts.duration_for(t),
        }
    }

    fn authorize(
        &mut self,
        height: Height,
        round: Round,
        step: GuardStep,
        value: Option<Hash>,
    ) -> Result<&Keypair, EffectError> {
        let round = round_u32(round).ok_or(EffectError::NilRound)?;
        let next = self
            .guard
            .authorize(height, round, step, value)
            .map_err(|e| {
                self.out.actions.push(Action::SignRefused(e.clone()));
                EffectError::Refused
            })?;
        self.guard = next.clone();
        self.out.guard = Some(next);
        self.signer.as_ref().ok_or(EffectError::NotAValidator)
    }

    pub(super) fn handle(
        &mut self,
        effect: Effect<AtonomiContext>,
    ) -> Result<Resume<AtonomiContext>, EffectError> {
        Ok(match effect {
            Effect::CancelAllTimeouts(r) => {
                self.push(Action::CancelAllTimeouts);
                r.resume_with(())
            }
            Effect::CancelTimeout(t, r) => {
                self.push(Action::CancelTimeout(t));
                r.resume_with(())
            }
            Effect::ScheduleTimeout(t, r) => {
                let after = self.duration(t);
                self.push(Action::ScheduleTimeout { timeout: t, after });
                r.resume_with(())
            }
            Effect::StartRound(height, round, proposer, _role, r) => {
                if let Some(round) = round_u32(round) {
                    self.push(Action::RoundStarted {
                        height: height.0,
                        round,
                        proposer: proposer.0,
                    });
                }
                r.resume_with(())
            }
            Effect::PublishConsensusMsg(msg, r) => {
                let msg = match msg {
                    SignedConsensusMsg::Vote(v) => {
                        WireVote::from_mc(&v).map(ConsensusMessage::Vote)
                    }
                    SignedConsensusMsg::Proposal(p) => {
                        WireProposal::from_mc(&p).map(ConsensusMessage::Proposal)
                    }
                };
                self.broadcast(msg);
                r.resume_with(())
            }
            Effect::PublishLivenessMsg(msg, r) => {
                let msg = match msg {
                    LivenessMsg::Vote(v) => WireVote::from_mc(&v).map(ConsensusMessage::Vote),
                    LivenessMsg::PolkaCertificate(c) => {
                        WirePolka::from_mc(&c).map(ConsensusMessage::Polka)
                    }
                    LivenessMsg::SkipRoundCertificate(c) => {
                        WireRoundCertificate::from_mc(&c).map(ConsensusMessage::RoundCertificate)
                    }
                };
                self.broadcast(msg);
                r.resume_with(())
            }
            Effect::RepublishVote(v, r) => {
                self.broadcast(WireVote::from_mc(&v).map(ConsensusMessage::Vote));
                r.resume_with(())
            }
            Effect::RepublishRoundCertificate(c, r) => {
                self.broadcast(
                    WireRoundCertificate::from_mc(&c).map(ConsensusMessage::RoundCertificate),
                );
                r.resume_with(())
            }
            Effect::GetValue(height, round, timeout, r) => {
                if let Some(round) = round_u32(round) {
                    let timeout = self.duration(timeout);
                    self.push(Action::GetValue {
                        height: height.0,
                        round,
                        timeout,
                    });
                }
                r.resume_with(())
            }
            Effect::RestreamProposal(height, round, pol_round, _proposer, block, r) => {
                if let Some(round) = round_u32(round) {
                    self.push(Action::RestreamProposal {
                        height: height.0,
                        round,
                        pol_round: round_u32(pol_round),
                        block,
                    });
                }
                r.resume_with(())
            }
            Effect::CertVerifiedSyncValue(response, proposer, r) => {
                if let Some(round) = round_u32(response.certificate.round) {
                    self.push(Action::SyncValue {
                        height: response.certificate.height.0,
                        round,
                        proposer: proposer.0,
                        block: response.certificate.value_id,
                        block_bytes: response.value_bytes.to_vec(),
                    });
                }
                r.resume_with(())
            }
            Effect::CertRejectedSyncValue(peer, height, error, r) => {
                self.push(Action::SyncRejected {
                    peer,
                    height: height.0,
                    reason: error.to_string(),
                });
                r.resume_with(())
            }
            Effect::Decide(_certificate, _extensions, r) => r.resume_with(()),
            Effect::Finalize(certificate, _extensions, evidence, r) => {
                if let Some(certificate) = commit_from_mc(&certificate) {
                    self.push(Action::Decided {
                        certificate,
                        evidence: evidence_from_mc(&evidence),
                    });
                }
                r.resume_with(())
            }
            Effect::SignVote(vote, r) => {
                let step = match vote.vote_type {
                    mc::VoteType::Prevote => GuardStep::Prevote,
                    mc::VoteType::Precommit => GuardStep::Precommit,
                };
                let value = match &vote.value {
                    NilOrVal::Nil => None,
                    NilOrVal::Val(h) => Some(*h),
                };
                let chain_id = self.chain_id.clone();
                let key = self.authorize(vote.height.0, vote.round, step, value)?;
                let signature =
                    message::sign_vote(&chain_id, key, &vote).ok_or(EffectError::NilRound)?;
                r.resume_with(mc::SignedMessage::new(vote, signature))
            }
            Effect::SignProposal(proposal, r) => {
                let chain_id = self.chain_id.clone();
                let key = self.authorize(
                    proposal.height.0,
                    proposal.round,
                    GuardStep::Propose,
                    Some(proposal.value.0),
                )?;
                let signature = message::sign_proposal(&chain_id, key, &proposal)
                    .ok_or(EffectError::NilRound)?;
                let signed = mc::SignedMessage::new(proposal, signature);
                // Our signed proposal goes into the WAL with the step that sends it, so a
                // proposer restarted before (or after) sending finds the very proposal it
                // signed and sends that again, never a second one (Malachite records
                // only the proposed value).
                if let Ok(wire) = WireProposal::from_mc(&signed) {
                    let entry = WalEntry::Proposal(wire);
                    if !self
                        .replayed
                        .contains(&atonomi_primitives::codec::encode(&entry))
                    {
                        self.out.wal.push(WalRecord {
                            height: signed.height.0,
                            entry,
                        });
                    }
                }
                r.resume_with(signed)
            }
            Effect::VerifySignature(msg, public_key, r) => r.resume_with(message::verify_message(
                &self.chain_id,
                &msg.message,
                &msg.signature,
                &public_key,
            )),
            Effect::VerifyCommitCertificate(certificate, set, thresholds, r) => {
                r.resume_with(verify_certificate(
                    &self.chain_id,
                    Certificate::Commit(&certificate),
                    &set,
                    thresholds,
                ))
            }
            Effect::VerifyExtendedCommitCertificate(certificate, set, thresholds, _policy, r) => {
                let result = match certificate
                    .commit_signatures
                    .iter()
                    .find(|s| s.extension.is_some())
                {
                    Some(s) => Err(CertificateError::UnexpectedVoteExtension(s.address)),
                    None => verify_certificate(
                        &self.chain_id,
                        Certificate::Commit(&certificate.trim_vote_extensions()),
                        &set,
                        thresholds,
                    ),
                };
                r.resume_with(result)
            }
            Effect::VerifyPolkaCertificate(certificate, set, thresholds, r) => {
                r.resume_with(verify_certificate(
                    &self.chain_id,
                    Certificate::Polka(&certificate),
                    &set,
                    thresholds,
                ))
            }
            Effect::VerifyRoundCertificate(certificate, set, thresholds, r) => {
                r.resume_with(verify_certificate(
                    &self.chain_id,
                    Certificate::Round(&certificate),
                    &set,
                    thresholds,
                ))
            }
            Effect::WalAppend(height, input, r) => {
                // Malachite documents which inputs it appends; anything else is not ours to keep.
                if let Ok(entry) = WalEntry::from_input(&input) {
                    if self.replayed.is_empty()
                        || !self
                            .replayed
                            .contains(&atonomi_primitives::codec::encode(&entry))
                    {
                        self.out.wal.push(WalRecord {
                            height: height.0,
                            entry,
                        });
                    }
                }
                r.resume_with(())
            }
            // Vote extensions are disabled; these are never emitted.
            Effect::ExtendVote(_, _, _, _, r) => r.resume_with(None),
            Effect::VerifyVoteExtension(_, _, _, _, _, _, r) => r.resume_with(Ok(())),
        })
    }
}

fn evidence_from_mc(e: &mcc::MisbehaviorEvidence<AtonomiContext>) -> Evidence {
    let mut out = Evidence::default();
    for (_, pairs) in e.votes.iter() {
        for (a, b) in pairs {
            if let (Ok(a), Ok(b)) = (WireVote::from_mc(a), WireVote::from_mc(b)) {
                out.double_votes.push((a, b));
            }
        }
    }
    for (_, pairs) in e.proposals.iter() {
        for (a, b) in pairs {
            if let (Ok(a), Ok(b)) = (WireProposal::from_mc(a), WireProposal::from_mc(b)) {
                out.double_proposals.push((a, b));
            }
        }
    }
    out
}
