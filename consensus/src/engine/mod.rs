//! The sans-I/O consensus engine: Malachite's Tendermint state machine with our effects
//! handled synchronously. The node feeds it inputs (messages, timeouts, proposed
//! values, synced blocks) and performs the [`Step`] each call returns.
//!
//! # The contract a host follows for every [`Step`]
//! 1. Append `step.wal` to the write-ahead log of the current height and, when
//!    `step.guard` is set, replace the stored double-sign guard with it.
//! 2. Make both durable (fsync) — **before** anything in `step.actions` leaves the node.
//! 3. Perform `step.actions` in order.
//!
//! Every signature the engine makes is authorized by the [`SignGuard`] first, and the
//! guard's new state and the WAL records leading to the signature are in the same
//! step, so nothing signed is ever sent before it is durable. After a crash the host
//! builds a new engine from the stored guard, starts the height it was at with
//! `restart = true` and feeds the WAL records of that height to [`Engine::replay`]:
//! Malachite re-derives its votes from them and reuses the recorded signatures.

mod effects;
mod quorum;

use crate::certificate::CommitCertificate;
use crate::context::{Address, AtonomiContext, CHeight, ValidatorSet};
use crate::guard::{GuardError, SignGuard};
use crate::message::{
    ConsensusMessage, ProposedBlock, WalEntry, WalRecord, WireProposal, WireVote,
};
use atonomi_primitives::{AccountId, ChainId, Hash, Height, Keypair, Signature};
use effects::Effects;
use malachitebft_core_consensus::{self as mcc, process, Input};
use malachitebft_core_types as mc;
use malachitebft_metrics::Metrics;
use mc::{LinearTimeouts, Round, ThresholdParams, Timeout, ValuePayload, VoteExtensionPolicy};
use std::collections::BTreeSet;
use std::time::Duration;

pub use malachitebft_core_consensus::PeerId;

/// A vote or proposal as Malachite sees it (for signature checks outside the engine).
pub type ConsensusMsg = malachitebft_core_consensus::ConsensusMsg<AtonomiContext>;
pub use mc::{Timeout as ConsensusTimeout, TimeoutKind};

/// How long each step may take, growing linearly with the round.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub chain_id: ChainId,
    pub timeouts: LinearTimeouts,
}

impl EngineConfig {
    pub fn new(chain_id: ChainId) -> EngineConfig {
        EngineConfig {
            chain_id,
            timeouts: LinearTimeouts::default(),
        }
    }
}

/// Misbehaviour seen during a height: two different signed messages from one validator
/// for the same (height, round, kind).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Evidence {
    pub double_votes: Vec<(WireVote, WireVote)>,
    pub double_proposals: Vec<(WireProposal, WireProposal)>,
}

impl Evidence {
    pub fn is_empty(&self) -> bool {
        self.double_votes.is_empty() && self.double_proposals.is_empty()
    }
}

/// What the host must do, in order, after making the step's WAL records and guard durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send to every validator.
    Broadcast(ConsensusMessage),
    /// Call [`Engine::timeout_elapsed`] with this timeout after `after`.
    ScheduleTimeout {
        timeout: Timeout,
        after: Duration,
    },
    CancelTimeout(Timeout),
    CancelAllTimeouts,
    /// We propose at (height, round): build a block and call [`Engine::propose`] within
    /// `timeout`.
    GetValue {
        height: Height,
        round: u32,
        timeout: Duration,
    },
    /// Send the block `block` (proposed at `round` with `pol_round`) to every validator
    /// again, beside its proposal.
    RestreamProposal {
        height: Height,
        round: u32,
        pol_round: Option<u32>,
        block: Hash,
    },
    /// A synced block's certificate verified: decode and validate `block_bytes`, then call
    /// [`Engine::proposed_value`] with `from_sync = true`.
    SyncValue {
        height: Height,
        round: u32,
        proposer: AccountId,
        block: Hash,
        block_bytes: Vec<u8>,
    },
    /// A synced block was refused (bad certificate): penalise `peer`.
    SyncRejected {
        peer: PeerId,
        height: Height,
        reason: String,
    },
    /// A new round started; `proposer` proposes in it.
    RoundStarted {
        height: Height,
        round: u32,
        proposer: AccountId,
    },
    /// The height is decided: commit the block with this certificate, then call
    /// [`Engine::start_height`] for the next height.
    Decided {
        certificate: CommitCertificate,
        evidence: Evidence,
    },
    /// The guard refused a signature (this node would have double-signed or signed
    /// below a height it may already have signed at).
    SignRefused(GuardError),
}

/// The output of one engine call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Records to append to the WAL; durable before any action is performed.
    pub wal: Vec<WalRecord>,
    /// The new double-sign guard; durable before any action is performed.
    pub guard: Option<SignGuard>,
    pub actions: Vec<Action>,
    /// Set when Malachite stopped processing the input early (a refused signature, an
    /// input for a past height); the records and actions before it still stand.
    pub error: Option<String>,
}

impl Step {
    pub fn merge(&mut self, other: Step) {
        self.wal.extend(other.wal);
        if other.guard.is_some() {
            self.guard = other.guard;
        }
        self.actions.extend(other.actions);
        if self.error.is_none() {
            self.error = other.error;
        }
    }

    /// Whether the step must be made durable before its actions.
    pub fn needs_sync(&self) -> bool {
        !self.wal.is_empty() || self.guard.is_some()
    }
}

/// Malachite's consensus state plus our effect handlers.
pub struct Engine {
    state: mcc::State<AtonomiContext>,
    metrics: Metrics,
    effects: Effects,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("height", &self.height())
            .field("round", &self.round())
            .finish_non_exhaustive()
    }
}

/// Pending inputs buffered for future heights, and per height.
const QUEUE_HEIGHTS: usize = 8;
const QUEUE_PER_HEIGHT: usize = 1024;

impl Engine {
    /// An engine for `height` with `validators`. `signer` is the validator's consensus
    /// key (`None` for a full node) and `guard` its stored double-sign guard. Call
    /// [`Engine::start_height`] next.
    pub fn new(
        config: EngineConfig,
        signer: Option<Keypair>,
        guard: SignGuard,
        height: Height,
        validators: ValidatorSet,
    ) -> Engine {
        let address = Address(
            signer
                .as_ref()
                .map_or(AccountId::new([0; 32]), Keypair::account),
        );
        let ctx = AtonomiContext {
            chain_id: config.chain_id.clone(),
        };
        let params = mcc::Params {
            address,
            threshold_params: ThresholdParams::default(),
            value_payload: ValuePayload::ProposalAndParts,
            enabled: true,
        };
        let state = mcc::State::new(
            ctx,
            CHeight(height),
            validators,
            params,
            QUEUE_HEIGHTS,
            QUEUE_PER_HEIGHT,
        );
        Engine {
            state,
            metrics: Metrics::new(),
            effects: Effects {
                chain_id: config.chain_id,
                signer,
                guard,
                timeouts: config.timeouts,
                replayed: BTreeSet::new(),
                out: Step::default(),
            },
        }
    }

    pub fn height(&self) -> Height {
        self.state.height().0
    }

    pub fn round(&self) -> Option<u32> {
        self.state.round().as_u32()
    }

    /// The guard as of the last step (the host persists each new one).
    pub fn guard(&self) -> &SignGuard {
        &self.effects.guard
    }

    /// A node that cannot tell whether it signed before (fresh guard) learned that the
    /// network committed `committed`: refuse every height up to `committed + 1`. Returns
    /// the guard to persist, or `None` when the guard is not fresh.
    pub fn adopt_network_height(&mut self, committed: Height) -> Option<SignGuard> {
        if !self.effects.guard.is_fresh() || committed.get() == 0 {
            return None;
        }
        self.effects.guard = self.effects.guard.raise_floor(committed);
        Some(self.effects.guard.clone())
    }

    pub fn address(&self) -> Option<AccountId> {
        self.effects.signer.as_ref().map(Keypair::account)
    }

    /// Starts (or, after a crash, restarts) `height` with its validator set.
    pub fn start_height(
        &mut self,
        height: Height,
        validators: ValidatorSet,
        restart: bool,
    ) -> Step {
        self.run(Input::StartHeight(
            CHeight(height),
            validators,
            restart,
            None,
            VoteExtensionPolicy::Disabled,
        ))
    }

    /// Replays the WAL records of the current height, in order, after
    /// `start_height(.., restart = true)`. Records of other heights are skipped.
    pub fn replay(&mut self, records: &[WalRecord]) -> Step {
        let height = self.height();
        let entries: Vec<&WalEntry> = records
            .iter()
            .filter(|r| r.height == height)
            .map(|r| &r.entry)
            .collect();
        let inputs: Vec<Input<AtonomiContext>> = entries.iter().map(|e| e.to_input()).collect();
        self.effects.replayed = entries
            .iter()
            .map(|e| atonomi_primitives::codec::encode(*e))
            .collect();
        self.state.index_wal_entries(inputs.iter());
        let mut step = Step::default();
        for input in inputs {
            step.merge(self.run(input));
        }
        self.state.reset_entries_index();
        self.effects.replayed.clear();
        step
    }

    /// A consensus message from a peer (signature checked by the engine).
    pub fn on_message(&mut self, msg: ConsensusMessage) -> Step {
        let input = match msg {
            ConsensusMessage::Vote(v) => Input::Vote(v.to_mc()),
            ConsensusMessage::Proposal(p) => Input::Proposal(p.to_mc()),
            ConsensusMessage::Polka(c) => Input::PolkaCertificate(c.to_mc()),
            ConsensusMessage::RoundCertificate(c) => Input::RoundCertificate(c.to_mc()),
        };
        self.run(input)
    }

    /// Our block for the (height, round) of an [`Action::GetValue`].
    pub fn propose(&mut self, height: Height, round: u32, block: Hash) -> Step {
        self.run(Input::Propose(mcc::LocallyProposedValue::new(
            CHeight(height),
            Round::new(round),
            crate::context::BlockValue(block),
        )))
    }

    /// The host's verdict on a proposed block (received beside a proposal, or synced).
    pub fn proposed_value(&mut self, value: ProposedBlock, from_sync: bool) -> Step {
        let origin = if from_sync {
            mc::ValueOrigin::Sync
        } else {
            mc::ValueOrigin::Consensus
        };
        self.run(Input::ProposedValue(value.to_mc(), origin))
    }

    pub fn timeout_elapsed(&mut self, timeout: Timeout) -> Step {
        self.run(Input::TimeoutElapsed(timeout))
    }

    /// A decided block from a peer with its commit certificate (block sync).
    pub fn sync_response(
        &mut self,
        peer: PeerId,
        block_bytes: Vec<u8>,
        certificate: &CommitCertificate,
    ) -> Step {
        let certificate = mc::ExtendedCommitCertificate {
            height: CHeight(certificate.height),
            round: Round::new(certificate.round),
            value_id: certificate.block,
            commit_signatures: certificate
                .signatures
                .iter()
                .map(|(a, s)| mc::ExtendedCommitSignature::new(Address(*a), s.0, None))
                .collect(),
        };
        self.run(Input::SyncValueResponse(mc::ValueResponse::new(
            peer,
            block_bytes.into(),
            certificate,
        )))
    }

    fn run(&mut self, input: Input<AtonomiContext>) -> Step {
        let effects = &mut self.effects;
        let result: Result<(), mcc::Error<AtonomiContext>> = process!(
            input: input,
            state: &mut self.state,
            metrics: &self.metrics,
            with: effect => effects.handle(effect)
        );
        let mut step = std::mem::take(&mut effects.out);
        if let Err(e) = result {
            step.error = Some(e.to_string());
        }
        step
    }
}

fn round_u32(r: Round) -> Option<u32> {
    r.as_u32()
}

/// Our commit certificate from Malachite's (always at a defined round).
pub fn commit_from_mc(c: &mc::CommitCertificate<AtonomiContext>) -> Option<CommitCertificate> {
    Some(CommitCertificate {
        height: c.height.0,
        round: round_u32(c.round)?,
        block: c.value_id,
        signatures: c
            .commit_signatures
            .iter()
            .map(|s| (s.address.0, Signature(s.signature)))
            .collect(),
    })
}

/// A timeout as an ordered key (Malachite's `Timeout` is hashable but not ordered), for
/// hosts that keep their timers in ordered maps: (round, kind).
pub fn timeout_key(t: &Timeout) -> (i64, u8, u128) {
    let (kind, extra) = match t.kind {
        TimeoutKind::Propose => (0, 0),
        TimeoutKind::Prevote => (1, 0),
        TimeoutKind::Precommit => (2, 0),
        TimeoutKind::Rebroadcast => (3, 0),
        TimeoutKind::FinalizeHeight(d) => (4, d.as_nanos()),
    };
    (t.round.as_i64(), kind, extra)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{BlockValue, ConsensusProposal, ConsensusVote};
    use crate::guard::Step as G;
    use crate::message;
    use crate::vote::VoteType;
    use atonomi_primitives::state::{Validator, ValidatorSet as StateSet};
    use atonomi_primitives::ManufacturerId;
    use mc::NilOrVal;

    struct Net {
        chain: ChainId,
        keys: Vec<Keypair>,
        set: ValidatorSet,
    }

    impl Net {
        fn new() -> Net {
            let keys: Vec<Keypair> = (0..4)
                .map(|i| Keypair::from_label(&format!("engine-test-{i}")))
                .collect();
            let state = StateSet {
                validators: keys
                    .iter()
                    .map(|k| Validator {
                        consensus_key: k.account(),
                        peer_id: vec![1],
                        bridge_address: [0; 20],
                        power: 1,
                        operator: ManufacturerId::new(1),
                    })
                    .collect(),
            };
            Net {
                chain: ChainId::new("engine-test").unwrap(),
                set: ValidatorSet::from_state(&state).unwrap(),
                keys,
            }
        }

        fn engine(&self, key: usize, guard: SignGuard) -> Engine {
            let signer = Keypair::from_seed(self.keys[key].to_seed());
            Engine::new(
                EngineConfig::new(self.chain.clone()),
                Some(signer),
                guard,
                Height::new(1),
                self.set.clone(),
            )
        }

        fn vote(
            &self,
            key: usize,
            round: u32,
            t: VoteType,
            block: Option<Hash>,
        ) -> ConsensusMessage {
            let v = ConsensusVote {
                height: CHeight(Height::new(1)),
                round: Round::new(round),
                value: block.map_or(NilOrVal::Nil, NilOrVal::Val),
                vote_type: match t {
                    VoteType::Prevote => mc::VoteType::Prevote,
                    VoteType::Precommit => mc::VoteType::Precommit,
                },
                validator: Address(self.keys[key].account()),
            };
            let sig = message::sign_vote(&self.chain, &self.keys[key], &v).unwrap();
            ConsensusMessage::Vote(WireVote::from_mc(&mc::SignedMessage::new(v, sig)).unwrap())
        }

        fn proposer_of(&self, round: u32) -> usize {
            let p = crate::validate::proposer(&self.chain, &self.set, Height::new(1), round);
            self.keys.iter().position(|k| k.account() == p).unwrap()
        }

        fn proposal(&self, round: u32, block: Hash) -> ConsensusMessage {
            let key = self.proposer_of(round);
            let p = ConsensusProposal {
                height: CHeight(Height::new(1)),
                round: Round::new(round),
                value: BlockValue(block),
                pol_round: Round::Nil,
                proposer: Address(self.keys[key].account()),
            };
            let sig = message::sign_proposal(&self.chain, &self.keys[key], &p).unwrap();
            ConsensusMessage::Proposal(
                WireProposal::from_mc(&mc::SignedMessage::new(p, sig)).unwrap(),
            )
        }

        /// A validator other than the round-0 proposer.
        fn follower(&self) -> usize {
            (0..4).find(|i| *i != self.proposer_of(0)).unwrap()
        }

        /// Drives `me` to precommit `block` at round 0; returns every step.
        fn to_precommit(&self, e: &mut Engine, me: usize, block: Hash) -> Vec<Step> {
            let mut steps = vec![e.start_height(Height::new(1), self.set.clone(), false)];
            let proposer = self.proposer_of(0);
            steps.push(e.on_message(self.proposal(0, block)));
            let value = ProposedBlock {
                height: Height::new(1),
                round: 0,
                pol_round: None,
                proposer: self.keys[proposer].account(),
                block,
                valid: true,
            };
            steps.push(e.proposed_value(value, false));
            for k in (0..4).filter(|k| *k != me) {
                steps.push(e.on_message(self.vote(k, 0, VoteType::Prevote, Some(block))));
            }
            steps
        }
    }

    fn own_votes(steps: &[Step], me: AccountId) -> Vec<WireVote> {
        steps
            .iter()
            .flat_map(|s| &s.actions)
            .filter_map(|a| match a {
                Action::Broadcast(ConsensusMessage::Vote(v)) if v.validator == me => {
                    Some(v.clone())
                }
                _ => None,
            })
            .collect()
    }

    fn own_proposals(steps: &[Step], me: AccountId) -> Vec<WireProposal> {
        steps
            .iter()
            .flat_map(|s| &s.actions)
            .filter_map(|a| match a {
                Action::Broadcast(ConsensusMessage::Proposal(p)) if p.proposer == me => {
                    Some(p.clone())
                }
                _ => None,
            })
            .collect()
    }

    /// A proposer that crashed after its proposal's step was durable but before it was
    /// sent finds that signed proposal in the WAL (the host sends it again), replays
    /// without signing anything new, and refuses to sign a different block for the round.
    #[test]
    fn a_restarted_proposer_finds_its_signed_proposal_in_the_wal_and_refuses_another() {
        let net = Net::new();
        let me = net.proposer_of(0);
        let account = net.keys[me].account();
        let mut e = net.engine(me, SignGuard::new());
        let first = e.start_height(Height::new(1), net.set.clone(), false);
        let block = Hash::of(b"first block");
        let signed = e.propose(Height::new(1), 0, block);
        let sent = own_proposals(std::slice::from_ref(&signed), account);
        assert_eq!(sent.len(), 1);
        // Crash: what is durable is the steps' WAL records and the guard.
        let mut wal = first.wal.clone();
        wal.extend(signed.wal.clone());
        assert!(
            wal.iter()
                .any(|r| r.entry == WalEntry::Proposal(sent[0].clone())),
            "the signed proposal is in the WAL of the step that sends it"
        );
        let guard = signed.guard.clone().unwrap();
        let mut again = net.engine(me, guard);
        again.start_height(Height::new(1), net.set.clone(), true);
        let replayed = again.replay(&wal);
        assert!(replayed.wal.is_empty(), "replay appends nothing twice");
        let refused = again.propose(Height::new(1), 0, Hash::of(b"another block"));
        assert!(own_proposals(std::slice::from_ref(&refused), account).is_empty());
    }

    #[test]
    fn every_signed_vote_leaves_with_its_guard_and_wal_record_in_the_same_step() {
        let net = Net::new();
        let me = net.follower();
        let mut e = net.engine(me, SignGuard::new());
        let block = Hash::of(b"block");
        let steps = net.to_precommit(&mut e, me, block);
        let mut sent = 0;
        for s in &steps {
            for a in &s.actions {
                if let Action::Broadcast(ConsensusMessage::Vote(v)) = a {
                    sent += 1;
                    let g = s
                        .guard
                        .as_ref()
                        .and_then(SignGuard::last)
                        .expect("guard in the same step");
                    assert_eq!((g.height, g.round, g.value), (v.height, v.round, v.block));
                    assert!(
                        s.wal.iter().any(|r| r.entry == WalEntry::Vote(v.clone())),
                        "own vote in the step's WAL records"
                    );
                    assert!(s.needs_sync());
                }
            }
        }
        assert_eq!(sent, 2, "a prevote and a precommit");
        let votes = own_votes(&steps, net.keys[me].account());
        assert_eq!(votes[1].vote_type, VoteType::Precommit);
        assert_eq!(votes[1].block, Some(block));
    }

    /// WAL replay after a crash, with whatever part of the log survived.
    #[test]
    fn wal_replay_table() {
        let net = Net::new();
        let me = net.follower();
        let block = Hash::of(b"locked");
        let mut first = net.engine(me, SignGuard::new());
        let steps = net.to_precommit(&mut first, me, block);
        let wal: Vec<WalRecord> = steps.iter().flat_map(|s| s.wal.clone()).collect();
        let guard = first.guard().clone();
        let sent = own_votes(&steps, net.keys[me].account());
        let own_precommit = |r: &WalRecord| matches!(&r.entry, WalEntry::Vote(v) if v.validator == net.keys[me].account() && v.vote_type == VoteType::Precommit);
        let torn: Vec<WalRecord> = wal.iter().filter(|r| !own_precommit(r)).cloned().collect();

        // (case, WAL kept, guard kept)
        let cases = [
            ("whole log", wal.clone(), guard.clone()),
            (
                "torn tail: own precommit lost, guard kept",
                torn,
                guard.clone(),
            ),
        ];
        for (name, records, guard) in cases {
            let mut e = net.engine(me, guard);
            let mut step = e.start_height(Height::new(1), net.set.clone(), true);
            step.merge(e.replay(&records));
            // Whatever it re-sends is exactly what it sent before.
            for v in own_votes(std::slice::from_ref(&step), net.keys[me].account()) {
                assert!(
                    sent.contains(&v),
                    "{name}: re-sent a vote it never sent before: {v:?}"
                );
            }
            assert!(
                !step
                    .actions
                    .iter()
                    .any(|a| matches!(a, Action::SignRefused(_))),
                "{name}"
            );
            // The precommit is derived again from the replayed prevotes, identical.
            let resent = own_votes(std::slice::from_ref(&step), net.keys[me].account());
            assert!(
                resent
                    .iter()
                    .any(|v| v.vote_type == VoteType::Precommit && v.block == Some(block)),
                "{name}: {resent:?}"
            );
            // Replayed records are not appended again.
            for r in &step.wal {
                assert!(!records.contains(r), "{name}: re-appended {r:?}");
            }
            // It stays locked: a nil precommit at this round would be a conflict.
            let mut e2 = e;
            let t = e2.timeout_elapsed(Timeout::precommit(Round::new(0)));
            let new_votes = own_votes(std::slice::from_ref(&t), net.keys[me].account());
            assert!(
                new_votes.iter().all(|v| sent.contains(v) || v.round > 0),
                "{name}: {new_votes:?}"
            );
        }

        // Log lost, guard kept: the node restarts at round 0 and must not vote there again
        // for anything but what it already signed.
        let mut e = net.engine(me, guard.clone());
        let _ = e.start_height(Height::new(1), net.set.clone(), true);
        let other = Hash::of(b"other");
        let p = net.proposal(0, other);
        let mut step = e.on_message(p);
        let value = ProposedBlock {
            height: Height::new(1),
            round: 0,
            pol_round: None,
            proposer: net.keys[net.proposer_of(0)].account(),
            block: other,
            valid: true,
        };
        step.merge(e.proposed_value(value, false));
        assert!(
            step.actions.iter().any(|a| matches!(
                a,
                Action::SignRefused(GuardError::Regression {
                    step: G::Prevote,
                    ..
                })
            )),
            "{step:?}"
        );
        assert!(own_votes(std::slice::from_ref(&step), net.keys[me].account()).is_empty());
    }

    /// Certificates on the sync path: only a valid quorum of precommits for the block is
    /// accepted.
    #[test]
    fn commit_certificate_verification_table() {
        let net = Net::new();
        let block = Hash::of(b"synced");
        let sign = |k: usize, round: u32, b: Hash| match net.vote(
            k,
            round,
            VoteType::Precommit,
            Some(b),
        ) {
            ConsensusMessage::Vote(v) => (v.validator, v.signature),
            _ => unreachable!(),
        };
        let cert = |sigs: Vec<(AccountId, Signature)>| CommitCertificate {
            height: Height::new(1),
            round: 0,
            block,
            signatures: sigs,
        };
        let stranger = Keypair::from_label("stranger");
        let prevote_sig = match net.vote(2, 0, VoteType::Prevote, Some(block)) {
            ConsensusMessage::Vote(v) => (v.validator, v.signature),
            _ => unreachable!(),
        };
        // (case, certificate, accepted)
        let cases = vec![
            (
                "three of four",
                cert(vec![
                    sign(0, 0, block),
                    sign(1, 0, block),
                    sign(2, 0, block),
                ]),
                true,
            ),
            (
                "all four",
                cert((0..4).map(|k| sign(k, 0, block)).collect()),
                true,
            ),
            (
                "two of four",
                cert(vec![sign(0, 0, block), sign(1, 0, block)]),
                false,
            ),
            (
                "a signer twice",
                cert(vec![
                    sign(0, 0, block),
                    sign(1, 0, block),
                    sign(1, 0, block),
                ]),
                false,
            ),
            (
                "a stranger",
                cert(vec![
                    sign(0, 0, block),
                    sign(1, 0, block),
                    (stranger.account(), Signature([7; 64])),
                ]),
                false,
            ),
            (
                "a precommit for another block",
                cert(vec![
                    sign(0, 0, block),
                    sign(1, 0, block),
                    sign(2, 0, Hash::of(b"x")),
                ]),
                false,
            ),
            (
                "a precommit of another round",
                cert(vec![
                    sign(0, 0, block),
                    sign(1, 0, block),
                    sign(2, 1, block),
                ]),
                false,
            ),
            (
                "a prevote in place of a precommit",
                cert(vec![sign(0, 0, block), sign(1, 0, block), prevote_sig]),
                false,
            ),
        ];
        for (name, c, accepted) in cases {
            let mut e = net.engine(0, SignGuard::new());
            let _ = e.start_height(Height::new(1), net.set.clone(), false);
            let peer = PeerId::from_bytes(&[0, 1, 7]).unwrap();
            let step = e.sync_response(peer, b"block bytes".to_vec(), &c);
            let verified = step
                .actions
                .iter()
                .any(|a| matches!(a, Action::SyncValue { block: b, .. } if *b == block));
            let rejected = step
                .actions
                .iter()
                .any(|a| matches!(a, Action::SyncRejected { .. }));
            assert_eq!(
                (verified, rejected),
                (accepted, !accepted),
                "{name}: {step:?}"
            );
            // The node-side verifier agrees with the engine.
            let state = StateSet {
                validators: net
                    .keys
                    .iter()
                    .map(|k| Validator {
                        consensus_key: k.account(),
                        peer_id: vec![1],
                        bridge_address: [0; 20],
                        power: 1,
                        operator: ManufacturerId::new(1),
                    })
                    .collect(),
            };
            assert_eq!(c.verify(&net.chain, &state).is_ok(), accepted, "{name}");
        }
    }

    #[test]
    fn a_full_node_never_signs() {
        let net = Net::new();
        let mut e = Engine::new(
            EngineConfig::new(net.chain.clone()),
            None,
            SignGuard::new(),
            Height::new(1),
            net.set.clone(),
        );
        let block = Hash::of(b"b");
        let steps = net.to_precommit(&mut e, 9, block);
        assert!(steps.iter().all(|s| s.guard.is_none()));
        assert!(steps.iter().flat_map(|s| &s.actions).all(|a| !matches!(
            a,
            Action::Broadcast(ConsensusMessage::Vote(_)) | Action::GetValue { .. }
        )));
    }
}
