//! Deterministic simulation of a validator network around the real consensus engine.
//!
//! One process, one seeded random stream, a virtual clock in milliseconds and an event
//! queue ordered by (time, sequence number): the same seed replays the same run, event
//! for event. Each validator instance runs [`Engine`] exactly as the node drives it —
//! WAL records and the double-sign guard made "durable" before any action, timers,
//! block bodies beside proposals, block sync with commit certificates — over a network
//! that delays, drops, duplicates and reorders messages and is partitioned on a
//! schedule until GST, after which every message arrives within `delta_after_gst`.
//!
//! Faults: crashes at random points of a step (before persisting, mid-write with a
//! torn WAL tail — the step's records and guard are one atomic write, as in the node —
//! after persisting but before sending, part-way through sending), restarts
//! that replay the WAL, a rare loss of the WAL and guard (the node then refuses to
//! sign at heights it may have signed), and byzantine "twins": a second instance
//! with the same key and its own state, which equivocates whenever the two see
//! different things.
//!
//! Checked after every event: agreement (honest nodes decide one block per height),
//! validity (a decided block was proposed, is valid, extends the previous decision and
//! carries a certificate that verifies), no honest key signed two different messages
//! for one (height, round, kind), and, once faults have stopped after GST, liveness
//! (each honest node commits a new height within `liveness_bound` of virtual time).
//! The liveness clock is Tendermint's claim: a round whose proposer is up and at the
//! height, while a quorum is up and at the height, decides. A round that cannot (its
//! proposer out, or too few validators in) is excused for its timeouts plus the time
//! the quorum was missing — never for longer, so a round that fails to end is caught.

#![allow(dead_code)]

use atonomi_consensus::context::ValidatorSet as ConsensusSet;
use atonomi_consensus::engine::{
    timeout_key, Action, ConsensusTimeout, Engine, EngineConfig, PeerId, Step,
};
use atonomi_consensus::message::{
    ConsensusMessage, ProposedBlock, WalEntry, WalRecord, MAX_MESSAGE_BYTES,
};
use atonomi_consensus::{wal, CommitCertificate, SignGuard, VoteType};
use atonomi_primitives::state::{Validator, ValidatorSet};
use atonomi_primitives::{codec, AccountId, ChainId, Hash, Height, Keypair, ManufacturerId};
use borsh::{BorshDeserialize, BorshSerialize};
use malachitebft_core_types::LinearTimeouts;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::time::Duration;

// ---- randomness ----------------------------------------------------------------------

/// SplitMix64: small, seedable, and the same on every platform.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, n)`; `n` > 0.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    pub fn per_mille(&mut self, p: u64) -> bool {
        self.below(1000) < p
    }
}

// ---- scenario ------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct Partition {
    pub start: u64,
    pub end: u64,
    /// Instance indexes per side; instances on different sides cannot talk.
    pub groups: Vec<Vec<usize>>,
}

/// How a validator is down during an [`Outage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutageKind {
    /// SIGSTOP: nothing it receives is processed and its timers do not fire until the
    /// end, when it handles the backlog (the kernel kept its sockets' bytes).
    Pause,
    /// `kill -9` at the start, restarted from its disk at the end; what was sent to it
    /// meanwhile is lost.
    Kill,
}

/// One validator down from `start` to `end` (virtual ms).
#[derive(Clone, Debug)]
pub struct Outage {
    pub node: usize,
    pub start: u64,
    pub end: u64,
    pub kind: OutageKind,
}

#[derive(Clone, Debug)]
pub struct Scenario {
    pub validators: usize,
    /// Keys run as two instances (byzantine).
    pub twins: Vec<usize>,
    pub heights: u64,
    pub gst: u64,
    pub drop_per_mille: u64,
    pub dup_per_mille: u64,
    pub max_delay_before_gst: u64,
    pub delta_after_gst: u64,
    /// Chance per processed step that the instance crashes (before GST only).
    pub crash_per_mille: u64,
    /// Allow one loss of WAL + guard (only without twins: a node that lost its guard is
    /// mute for a height, and with a byzantine node as well that is more than f).
    pub allow_wipe: bool,
    pub partitions: Vec<Partition>,
    pub max_time: u64,
    pub liveness_bound: u64,
    /// Twins propose invalid blocks now and then.
    pub invalid_proposals: bool,
    /// Scheduled outages, at most one at a time. Unlike the faults before GST they run
    /// on a synchronous network, and liveness is checked throughout: a validator that
    /// is up must see commits within `liveness_bound` (counted from when it came back).
    pub outages: Vec<Outage>,
    /// Sabotage for a negative control: from this virtual time on every timer is lost,
    /// so a round that cannot decide never ends.
    pub lose_timers_from: Option<u64>,
}

impl Scenario {
    /// The mix the seed sweep draws from: 4–7 validators, twins for f = 1 in a third of
    /// the runs, crashes, drops, duplicates, delays and partitions before GST.
    pub fn random(seed: u64) -> Scenario {
        let mut rng = Rng::new(seed.wrapping_mul(31).wrapping_add(7));
        let validators = rng.range(4, 7) as usize;
        let twins = if rng.below(3) == 0 {
            vec![rng.below(validators as u64) as usize]
        } else {
            vec![]
        };
        let gst = rng.range(1_000, 15_000);
        let instances = validators + twins.len();
        let mut partitions = Vec::new();
        if rng.below(2) == 0 {
            let mut t = rng.below(gst / 2);
            while t < gst {
                let len = rng.range(500, 5_000);
                // Random two-way split of the instances.
                let mut a = Vec::new();
                let mut b = Vec::new();
                for i in 0..instances {
                    if rng.below(2) == 0 {
                        a.push(i)
                    } else {
                        b.push(i)
                    }
                }
                partitions.push(Partition {
                    start: t,
                    end: (t + len).min(gst),
                    groups: vec![a, b],
                });
                t += len + rng.range(200, 3_000);
            }
        }
        Scenario {
            validators,
            twins: twins.clone(),
            heights: rng.range(3, 6),
            gst,
            drop_per_mille: [0, 50, 150, 300][rng.below(4) as usize],
            dup_per_mille: [0, 30, 100][rng.below(3) as usize],
            max_delay_before_gst: [50, 300, 1_500][rng.below(3) as usize],
            delta_after_gst: 100,
            crash_per_mille: [0, 5, 20][rng.below(3) as usize],
            allow_wipe: twins.is_empty() && rng.below(4) == 0,
            partitions,
            max_time: 900_000,
            // After GST a decision can need Malachite's hidden-lock rounds (from round
            // 10 on) with a byzantine twin; rounds r = 0..=13 take 2 + r seconds each
            // with the timeouts below, about 120 s in all.
            liveness_bound: 120_000,
            invalid_proposals: true,
            outages: Vec::new(),
            lose_timers_from: None,
        }
    }

    /// Serial outages (issue 15, item 2): a synchronous network where one validator at
    /// a time is paused or killed for 1–6 s, with at most 1.5 s between outages — the
    /// pattern of a 26-second stall seen on a real cluster (the proposer paused, another
    /// killed, the proposer paused again, the other killed). With one of 4–7 down, the
    /// others hold more than 2/3 of the power and must keep committing: a validator that
    /// is up waits at most ten seconds for a commit, not counting rounds that could not
    /// decide (their proposer out, or a second validator still catching up), each
    /// excused for its timeouts only.
    pub fn serial(seed: u64) -> Scenario {
        let mut rng = Rng::new(seed.wrapping_mul(131).wrapping_add(3));
        let validators = rng.range(4, 7) as usize;
        // Two validators alternate, as in the run that stalled, or any one at random.
        let pair = [
            rng.below(validators as u64) as usize,
            rng.below(validators as u64) as usize,
        ];
        let alternate = rng.below(2) == 0;
        let mut outages = Vec::new();
        let mut t = rng.range(500, 3_000);
        for k in 0..rng.range(4, 12) {
            let node = if alternate {
                pair[k as usize % 2]
            } else {
                rng.below(validators as u64) as usize
            };
            let end = t + rng.range(1_000, 6_000);
            let kind = if rng.below(2) == 0 {
                OutageKind::Pause
            } else {
                OutageKind::Kill
            };
            outages.push(Outage {
                node,
                start: t,
                end,
                kind,
            });
            t = end + rng.range(0, 1_500);
        }
        Scenario {
            validators,
            twins: vec![],
            heights: 3,
            gst: 0,
            drop_per_mille: 0,
            dup_per_mille: 0,
            max_delay_before_gst: 50,
            delta_after_gst: 100,
            crash_per_mille: 0,
            allow_wipe: false,
            partitions: vec![],
            max_time: 900_000,
            liveness_bound: 10_000,
            invalid_proposals: false,
            outages,
            lose_timers_from: None,
        }
    }

    /// The scenario of a sweep seed: one in four runs serial outages.
    pub fn of_seed(seed: u64) -> Scenario {
        if seed % 4 == 3 {
            Scenario::serial(seed)
        } else {
            Scenario::random(seed)
        }
    }

    fn outages_end(&self) -> u64 {
        self.outages.iter().map(|o| o.end).max().unwrap_or(0)
    }

    /// Negative control: two of four keys twinned (byzantine power 1/2), and a split
    /// {honest A, twins} | {honest B, other twins} until late. Each side holds 3/4 of
    /// the power, so both sides decide, differently.
    pub fn split_brain() -> Scenario {
        // Instances: 0, 1 honest; 2, 3 one copy of each twin; 4, 5 the other copies.
        Scenario {
            validators: 4,
            twins: vec![2, 3],
            heights: 3,
            gst: 60_000,
            drop_per_mille: 0,
            dup_per_mille: 0,
            max_delay_before_gst: 50,
            delta_after_gst: 100,
            crash_per_mille: 0,
            allow_wipe: false,
            partitions: vec![Partition {
                start: 0,
                end: 60_000,
                groups: vec![vec![0, 2, 3], vec![1, 4, 5]],
            }],
            max_time: 120_000,
            liveness_bound: 60_000,
            invalid_proposals: false,
            outages: Vec::new(),
            lose_timers_from: None,
        }
    }
}

// ---- what is checked -----------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    Agreement {
        height: Height,
        first: (usize, Hash),
        second: (usize, Hash),
    },
    Validity {
        node: usize,
        height: Height,
        reason: String,
    },
    DoubleSign {
        key: usize,
        height: Height,
        round: u32,
        kind: &'static str,
    },
    Liveness {
        node: usize,
        height: Height,
        waited_ms: u64,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Agreement {
                height,
                first,
                second,
            } => write!(
                f,
                "agreement: at height {height} node {} decided {} and node {} decided {}",
                first.0, first.1, second.0, second.1
            ),
            Violation::Validity {
                node,
                height,
                reason,
            } => write!(f, "validity: node {node} at height {height}: {reason}"),
            Violation::DoubleSign {
                key,
                height,
                round,
                kind,
            } => {
                write!(f, "double sign: honest validator {key} sent two different {kind}s at {height}/{round}")
            }
            Violation::Liveness {
                node,
                height,
                waited_ms,
            } => {
                write!(f, "liveness: node {node} made no progress at height {height} for {waited_ms} ms after GST")
            }
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub decided: u64,
    pub virtual_ms: u64,
    pub events: u64,
    pub messages: u64,
    pub dropped: u64,
    pub crashes: u64,
    pub torn_tails: u64,
    pub wipes: u64,
    pub refused_signatures: u64,
    pub syncs: u64,
    pub evidence: u64,
    /// Longest wait for a commit after faults stopped.
    pub max_gap_after_gst_ms: u64,
    /// The event trace, when `ATONOMI_SIM_TRACE` is set.
    pub trace: Vec<String>,
}

#[derive(Debug)]
pub struct Failure {
    pub seed: u64,
    pub violation: Violation,
    pub at_ms: u64,
    pub scenario: Scenario,
    pub trace: Vec<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {} failed at {} ms: {}",
            self.seed, self.at_ms, self.violation
        )?;
        writeln!(f, "scenario: {:?}", self.scenario)?;
        writeln!(f, "replay: ATONOMI_SIM_SEED={} ATONOMI_SIM_TRACE=1 cargo test -p atonomi-consensus --test simulation replay_one_seed -- --nocapture", self.seed)?;
        for line in self.trace.iter().rev().take(60).rev() {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

// ---- the simulated application ------------------------------------------------------

/// A block as the simulation's application sees it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SimBlock {
    pub height: Height,
    pub parent: Hash,
    pub proposer: u32,
    pub salt: u64,
    pub valid: bool,
}

impl SimBlock {
    pub fn hash(&self) -> Hash {
        Hash::with_domain("atonomi sim block", &codec::encode(self))
    }
}

#[derive(Clone, Debug)]
enum Payload {
    Consensus(Vec<u8>),
    Block(SimBlock),
    Status(Height),
    SyncRequest(Height),
    SyncResponse(SimBlock, CommitCertificate),
}

#[derive(Clone, Debug)]
enum Event {
    Deliver {
        to: usize,
        from: usize,
        payload: Payload,
    },
    Timer {
        node: usize,
        incarnation: u32,
        timeout: ConsensusTimeout,
        generation: u64,
    },
    Tick {
        node: usize,
        incarnation: u32,
    },
    Restart {
        node: usize,
    },
    /// The start of a [`OutageKind::Kill`] outage, restarted at `until`.
    Kill {
        node: usize,
        until: u64,
    },
}

/// What survives a crash.
#[derive(Clone, Debug, Default)]
struct Disk {
    wal: Vec<u8>,
    guard: Option<Vec<u8>>,
    chain: Vec<(SimBlock, CommitCertificate)>,
    /// Bodies of blocks the node built or validated and not yet decided: the WAL refers
    /// to them by hash, so they are stored before the engine hears of them.
    bodies: BTreeMap<Hash, SimBlock>,
}

/// (round, pol_round, proposer, block) of a proposal a node saw.
type SeenProposal = (u32, Option<u32>, AccountId, Hash);

struct Node {
    key: usize,
    honest: bool,
    incarnation: u32,
    engine: Option<Engine>,
    disk: Disk,
    timers: BTreeMap<(i64, u8, u128), u64>,
    bodies: BTreeMap<Hash, SimBlock>,
    proposals: BTreeMap<Height, Vec<SeenProposal>>,
    fed: BTreeSet<(Height, u32, Hash)>,
    last_progress: u64,
    /// Decided; start the next height after the current step.
    start_next: bool,
    /// The round this node is in, watched for whether it could decide.
    round: Option<RoundWatch>,
    /// Time excused since the last commit: rounds that could not decide.
    excused_ms: u64,
    /// When our messages of the round in progress were last sent again for a peer.
    resent_at: Option<u64>,
}

/// A round as the liveness oracle sees it.
#[derive(Clone, Debug)]
struct RoundWatch {
    height: u64,
    round: u32,
    /// Key index of the round's proposer.
    proposer: usize,
    start: u64,
    /// The proposer was out (down, paused or behind) at some point of the round.
    proposer_out: bool,
    /// Since when fewer than a quorum are in, if they are now.
    missing_since: Option<u64>,
    /// Time the quorum was missing before `missing_since`.
    missing_ms: u64,
}

impl RoundWatch {
    /// How much of this round, up to `now`, is excused: nothing for a round that could
    /// decide; for one that could not, its timeouts (with 500 ms for messages) plus the
    /// time a quorum was missing, and never more than the round lasted.
    fn excused(&self, now: u64, from: u64) -> u64 {
        let missing = self.missing_ms + self.missing_since.map_or(0, |t| now.saturating_sub(t));
        if !self.proposer_out && missing == 0 {
            return 0;
        }
        let t = timeouts();
        let r = self.round;
        let ms = |base: Duration, delta: Duration| (base + delta * r).as_millis() as u64;
        let timeouts = ms(t.propose, t.propose_delta)
            + ms(t.prevote, t.prevote_delta)
            + ms(t.precommit, t.precommit_delta)
            + 500;
        let lasted = now.saturating_sub(self.start.max(from));
        lasted.min(missing + timeouts)
    }
}

impl Node {
    fn committed(&self) -> u64 {
        self.disk.chain.len() as u64
    }

    fn last_hash(&self) -> Hash {
        self.disk.chain.last().map_or(Hash::ZERO, |(b, _)| b.hash())
    }
}

#[derive(Clone, Copy, Debug)]
enum CrashPoint {
    BeforePersist,
    TornPersist,
    AfterPersist,
    MidActions(usize),
    Wipe,
}

pub struct Sim {
    seed: u64,
    sc: Scenario,
    rng: Rng,
    now: u64,
    seq: u64,
    queue: BTreeMap<(u64, u64), Event>,
    chain_id: ChainId,
    keys: Vec<Keypair>,
    set: ValidatorSet,
    cset: ConsensusSet,
    nodes: Vec<Node>,
    generation: u64,
    /// Decisions of honest nodes per height.
    decisions: BTreeMap<u64, (usize, Hash)>,
    /// Every block body any instance built.
    built: BTreeMap<Hash, SimBlock>,
    /// (key, height, round, kind) -> value, over messages honest instances sent.
    signed: BTreeMap<(usize, u64, u32, u8), Option<Hash>>,
    settle: u64,
    /// Highest honest commit when faults stopped; runs go on two heights past it.
    height_at_settle: Option<u64>,
    wipes_left: u32,
    report: Report,
    trace: Option<Vec<String>>,
    violation: Option<Violation>,
}

const STATUS_EVERY: u64 = 500;

fn timeouts() -> LinearTimeouts {
    LinearTimeouts {
        propose: Duration::from_millis(1_000),
        propose_delta: Duration::from_millis(500),
        prevote: Duration::from_millis(500),
        prevote_delta: Duration::from_millis(250),
        precommit: Duration::from_millis(500),
        precommit_delta: Duration::from_millis(250),
        rebroadcast: Duration::from_millis(2_000),
        max_timeout: Duration::from_millis(10_000),
    }
}

fn peer_id(node: usize) -> PeerId {
    let mut bytes = vec![0x00, 8];
    bytes.extend_from_slice(&(node as u64).to_be_bytes());
    // An identity multihash of 8 bytes is a valid peer id.
    PeerId::from_bytes(&bytes).unwrap_or_else(|e| panic!("peer id: {e:?}"))
}

fn node_of_peer(peer: &PeerId) -> Option<usize> {
    let bytes = peer.to_bytes();
    let raw: [u8; 8] = bytes.get(2..10)?.try_into().ok()?;
    Some(u64::from_be_bytes(raw) as usize)
}

impl Sim {
    pub fn new(seed: u64, sc: Scenario) -> Sim {
        // Every simulated node checks every message in this one process: remember what
        // verified (it changes no outcome; the statistics of a sweep are identical).
        atonomi_primitives::crypto::remember_verified_signatures(true);
        let keys: Vec<Keypair> = (0..sc.validators)
            .map(|i| Keypair::from_label(&format!("sim-validator-{i}")))
            .collect();
        let set = ValidatorSet {
            validators: keys
                .iter()
                .map(|k| Validator {
                    consensus_key: k.account(),
                    peer_id: vec![1],
                    bridge_address: [0; 20],
                    power: 10,
                    operator: ManufacturerId::new(1),
                })
                .collect(),
        };
        let cset = ConsensusSet::from_state(&set).unwrap_or_else(|| panic!("validator set"));
        let mut nodes = Vec::new();
        for key in 0..sc.validators {
            nodes.push(key);
        }
        nodes.extend(sc.twins.iter().copied());
        let nodes = nodes
            .into_iter()
            .map(|key| Node {
                key,
                honest: !sc.twins.contains(&key),
                incarnation: 0,
                engine: None,
                disk: Disk {
                    guard: Some(SignGuard::new().to_bytes()),
                    ..Disk::default()
                },
                timers: BTreeMap::new(),
                bodies: BTreeMap::new(),
                proposals: BTreeMap::new(),
                fed: BTreeSet::new(),
                last_progress: 0,
                start_next: false,
                round: None,
                excused_ms: 0,
                resent_at: None,
            })
            .collect();
        let trace = std::env::var("ATONOMI_SIM_TRACE").ok().map(|_| Vec::new());
        Sim {
            seed,
            rng: Rng::new(seed),
            wipes_left: u32::from(sc.allow_wipe),
            settle: sc.gst,
            height_at_settle: None,
            sc,
            now: 0,
            seq: 0,
            queue: BTreeMap::new(),
            chain_id: ChainId::new("sim").unwrap_or_else(|e| panic!("{e}")),
            keys,
            set,
            cset,
            nodes,
            generation: 0,
            decisions: BTreeMap::new(),
            built: BTreeMap::new(),
            signed: BTreeMap::new(),
            report: Report::default(),
            trace,
            violation: None,
        }
    }

    fn log(&mut self, line: impl FnOnce() -> String) {
        if let Some(t) = &mut self.trace {
            t.push(format!("{:>7} {}", self.now, line()));
        }
    }

    fn schedule(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.queue.insert((at, self.seq), event);
    }

    fn fail(&mut self, v: Violation) {
        if self.violation.is_none() {
            self.violation = Some(v);
        }
    }

    pub fn run(mut self) -> Result<Report, Box<Failure>> {
        for i in 0..self.nodes.len() {
            self.boot(i);
        }
        for o in self.sc.outages.clone() {
            if o.kind == OutageKind::Kill {
                self.schedule(
                    o.start,
                    Event::Kill {
                        node: o.node,
                        until: o.end,
                    },
                );
            }
        }
        while self.violation.is_none() {
            let Some(((at, _), event)) = self.queue.pop_first() else {
                break;
            };
            if at > self.sc.max_time {
                break;
            }
            self.now = at;
            self.report.events += 1;
            self.handle(event);
            if self.violation.is_none() {
                self.check_liveness();
            }
            if self.done() {
                break;
            }
        }
        if self.violation.is_none() && !self.done() {
            // Out of time with heights missing: the slowest honest node is stuck.
            let (node, h) = self.slowest();
            let waited_ms = self
                .now
                .saturating_sub(self.nodes[node].last_progress.max(self.settle));
            self.fail(Violation::Liveness {
                node,
                height: Height::new(h + 1),
                waited_ms,
            });
        }
        self.report.virtual_ms = self.now;
        self.report.decided = self.decisions.len() as u64;
        match self.violation.take() {
            None => {
                self.report.trace = self.trace.take().unwrap_or_default();
                Ok(self.report)
            }
            Some(violation) => Err(Box::new(Failure {
                seed: self.seed,
                violation,
                at_ms: self.now,
                scenario: self.sc.clone(),
                trace: self.trace.take().unwrap_or_default(),
            })),
        }
    }

    fn slowest(&self) -> (usize, u64) {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.honest)
            .map(|(i, n)| (i, n.committed()))
            .min_by_key(|(_, h)| *h)
            .unwrap_or((0, 0))
    }

    /// Every honest node reached the target height, and two heights past the point
    /// where faults stopped (so each run shows liveness after GST).
    fn done(&mut self) -> bool {
        if self.now < self.settle.max(self.sc.outages_end()) {
            return false;
        }
        let at_settle = *self.height_at_settle.get_or_insert_with(|| {
            self.nodes
                .iter()
                .filter(|n| n.honest)
                .map(Node::committed)
                .max()
                .unwrap_or(0)
        });
        let target = self.sc.heights.max(at_settle + 2);
        self.nodes
            .iter()
            .filter(|n| n.honest)
            .all(|n| n.committed() >= target)
    }

    fn check_liveness(&mut self) {
        if self.now < self.settle {
            return;
        }
        let status = self.validator_status();
        for i in 0..self.nodes.len() {
            let n = &self.nodes[i];
            if !n.honest {
                continue;
            }
            if n.engine.is_none() || self.paused_until(i).is_some() {
                continue;
            }
            self.watch_round(i, &status);
            let since = self.liveness_since(i);
            let n = &self.nodes[i];
            let excused = n.excused_ms + n.round.as_ref().map_or(0, |w| w.excused(self.now, since));
            let waited_ms = (self.now - since).saturating_sub(excused);
            if waited_ms > self.sc.liveness_bound {
                let height = Height::new(n.committed() + 1);
                self.fail(Violation::Liveness {
                    node: i,
                    height,
                    waited_ms,
                });
                return;
            }
        }
    }

    /// Since when node `i`'s wait for a commit counts.
    fn liveness_since(&self, i: usize) -> u64 {
        self.nodes[i]
            .last_progress
            .max(self.settle)
            .max(self.back_at(i))
    }

    /// Per validator key, the most heights an honest instance of it that is running
    /// and not paused has decided (`None`: no such instance). Computed once per event
    /// for every node's round watch.
    fn validator_status(&self) -> Vec<Option<u64>> {
        let mut status = vec![None; self.sc.validators];
        for (j, n) in self.nodes.iter().enumerate() {
            if n.honest && n.engine.is_some() && self.paused_until(j).is_none() {
                let c = &mut status[n.key];
                *c = Some(c.map_or(n.committed(), |c: u64| c.max(n.committed())));
            }
        }
        status
    }

    /// The block validator `key` last precommitted at `height` before `round`, if any.
    fn locked_on(&self, key: usize, height: u64, round: u32) -> Option<Hash> {
        self.signed
            .range((key, height, 0, 0)..(key, height, round, 0))
            .rev()
            .filter(|((_, _, _, kind), _)| *kind == 1)
            .find_map(|(_, value)| *value)
    }

    /// Updates what node `i`'s current round could do: whether its proposer is out,
    /// and whether a quorum (more than 2/3 of the equal powers) is in.
    fn watch_round(&mut self, i: usize, status: &[Option<u64>]) {
        let Some(w) = self.nodes[i].round.clone() else {
            return;
        };
        // Whether validator `key` takes part in deciding the height now: it is up and
        // has decided every height below (or more).
        let is_in = |key: usize| {
            status
                .get(key)
                .copied()
                .flatten()
                .is_some_and(|c| c + 1 >= w.height)
        };
        let proposer_out = !is_in(w.proposer);
        // A validator that precommitted a block in an earlier round of the height is
        // locked on it, and prevotes a different proposal nil: it counts towards the
        // quorum only when the proposer is locked on the same block (then it proposes
        // it). Without slack in the quorum (one of 3f+1 out), one such lock suffices
        // to make a round fail, as Tendermint allows.
        let proposer_lock = self.locked_on(w.proposer, w.height, w.round);
        let ins = (0..self.sc.validators)
            .filter(|k| is_in(*k))
            .filter(|k| {
                let lock = self.locked_on(*k, w.height, w.round);
                lock.is_none() || lock == proposer_lock
            })
            .count();
        let quorum = 3 * ins > 2 * self.sc.validators;
        let now = self.now;
        if let Some(w) = self.nodes[i].round.as_mut() {
            w.proposer_out |= proposer_out;
            match (quorum, w.missing_since) {
                (false, None) => w.missing_since = Some(now),
                (true, Some(t)) => {
                    w.missing_ms += now.saturating_sub(t);
                    w.missing_since = None;
                }
                _ => {}
            }
        }
    }

    /// When the outage `node` is paused in ends, if it is paused now.
    fn paused_until(&self, node: usize) -> Option<u64> {
        self.sc
            .outages
            .iter()
            .find(|o| {
                o.node == node
                    && o.kind == OutageKind::Pause
                    && o.start <= self.now
                    && self.now < o.end
            })
            .map(|o| o.end)
    }

    /// When `node` last came back from an outage (0 if it never was down).
    fn back_at(&self, node: usize) -> u64 {
        self.sc
            .outages
            .iter()
            .filter(|o| o.node == node && o.end <= self.now)
            .map(|o| o.end)
            .max()
            .unwrap_or(0)
    }

    // ---- node lifecycle ----------------------------------------------------------

    /// Starts (or restarts) an instance from its disk.
    fn boot(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        n.incarnation += 1;
        n.timers.clear();
        n.start_next = false;
        n.bodies = n.disk.bodies.clone();
        n.proposals.clear();
        n.fed.clear();
        let height = Height::new(n.committed() + 1);
        let guard = match &n.disk.guard {
            Some(bytes) => SignGuard::from_bytes(bytes)
                .unwrap_or_else(|e| panic!("guard on disk does not decode: {e}")),
            // Every instance writes its guard when it is created, so a missing guard is
            // lost data: refuse the heights this node may have signed at.
            None => SignGuard::after_data_loss(Height::new(n.committed())),
        };
        // The torn tail, if any, is cut off as the node would truncate its file.
        let replay = wal::replay(&n.disk.wal, MAX_MESSAGE_BYTES + 64);
        n.disk.wal.truncate(replay.valid_len);
        let records: Vec<WalRecord> = replay
            .records
            .iter()
            .filter_map(|r| WalRecord::from_bytes(r).ok())
            .collect();
        let restart = n.incarnation > 1;
        let mut config = EngineConfig::new(self.chain_id.clone());
        config.timeouts = timeouts();
        let key = Keypair::from_seed(self.keys[n.key].to_seed());
        let mut engine = Engine::new(config, Some(key), guard, height, self.cset.clone());
        let mut step = engine.start_height(height, self.cset.clone(), restart);
        if restart {
            step.merge(engine.replay(&records));
        }
        n.engine = Some(engine);
        n.last_progress = self.now;
        n.round = None;
        n.excused_ms = 0;
        let incarnation = n.incarnation;
        let records_len = records.len();
        self.log(|| format!("node {i} boots at height {height} (incarnation {incarnation}, {records_len} WAL records)"));
        let first_tick = self.now + 1 + self.rng.below(STATUS_EVERY);
        self.schedule(
            first_tick,
            Event::Tick {
                node: i,
                incarnation,
            },
        );
        self.apply(i, step);
    }

    fn crash(&mut self, i: usize, why: &str) {
        let n = &mut self.nodes[i];
        n.engine = None;
        n.timers.clear();
        self.report.crashes += 1;
        let restart_at =
            (self.now + self.rng.range(100, 5_000)).min(self.sc.gst.max(self.now + 100));
        self.settle = self.settle.max(restart_at);
        self.log(|| format!("node {i} crashes ({why}); restarts at {restart_at}"));
        self.schedule(restart_at, Event::Restart { node: i });
    }

    fn handle(&mut self, event: Event) {
        let node = match &event {
            Event::Deliver { to, .. } => *to,
            Event::Timer { node, .. }
            | Event::Tick { node, .. }
            | Event::Restart { node }
            | Event::Kill { node, .. } => *node,
        };
        if let Some(end) = self.paused_until(node) {
            // A stopped process handles nothing until it is continued.
            self.schedule(end, event);
            return;
        }
        let _span = tracing::info_span!("sim", t = self.now, node).entered();
        match event {
            Event::Restart { node } => self.boot(node),
            Event::Kill { node, until } => {
                let n = &mut self.nodes[node];
                n.engine = None;
                n.timers.clear();
                self.report.crashes += 1;
                self.log(|| format!("node {node} is killed; restarts at {until}"));
                self.schedule(until, Event::Restart { node });
            }
            Event::Tick { node, incarnation } => {
                if self.nodes[node].engine.is_none() || self.nodes[node].incarnation != incarnation
                {
                    return;
                }
                let h = Height::new(self.nodes[node].committed());
                self.broadcast(node, Payload::Status(h));
                self.schedule(self.now + STATUS_EVERY, Event::Tick { node, incarnation });
            }
            Event::Timer {
                node,
                incarnation,
                timeout,
                generation,
            } => {
                let n = &mut self.nodes[node];
                if n.incarnation != incarnation
                    || n.timers.get(&timeout_key(&timeout)) != Some(&generation)
                {
                    return;
                }
                n.timers.remove(&timeout_key(&timeout));
                if self.sc.lose_timers_from.is_some_and(|t| self.now >= t) {
                    return;
                }
                let n = &mut self.nodes[node];
                let Some(engine) = n.engine.as_mut() else {
                    return;
                };
                let step = engine.timeout_elapsed(timeout);
                self.apply(node, step);
            }
            Event::Deliver { to, from, payload } => {
                if self.nodes[to].engine.is_none() {
                    return;
                }
                self.deliver(to, from, payload);
            }
        }
    }

    fn deliver(&mut self, to: usize, from: usize, payload: Payload) {
        match payload {
            Payload::Consensus(bytes) => {
                let Ok(msg) = ConsensusMessage::from_bytes(&bytes) else {
                    self.fail(Violation::Validity {
                        node: to,
                        height: Height::new(0),
                        reason: "a consensus message did not decode".into(),
                    });
                    return;
                };
                if let ConsensusMessage::Proposal(p) = &msg {
                    let list = self.nodes[to].proposals.entry(p.height).or_default();
                    if list.len() < 64 {
                        list.push((p.round, p.pol_round, p.proposer, p.block));
                    }
                }
                let Some(engine) = self.nodes[to].engine.as_mut() else {
                    return;
                };
                let step = engine.on_message(msg);
                self.apply(to, step);
                self.feed_values(to);
            }
            Payload::Block(block) => {
                self.nodes[to].bodies.insert(block.hash(), block);
                self.feed_values(to);
            }
            Payload::Status(h) => {
                let Some(engine) = self.nodes[to].engine.as_ref() else {
                    return;
                };
                if h >= engine.height() {
                    let want = engine.height();
                    self.send(to, from, Payload::SyncRequest(want));
                } else if h.next() == engine.height() {
                    self.resend_for_peer(to);
                }
            }
            Payload::SyncRequest(h) => {
                let idx = h.get().saturating_sub(1) as usize;
                if let Some((block, cert)) = self.nodes[to].disk.chain.get(idx).cloned() {
                    self.send(to, from, Payload::SyncResponse(block, cert));
                }
            }
            Payload::SyncResponse(block, cert) => {
                let Some(engine) = self.nodes[to].engine.as_mut() else {
                    return;
                };
                if cert.height != engine.height() {
                    return;
                }
                self.report.syncs += 1;
                let before = engine.height();
                let step = engine.sync_response(peer_id(from), codec::encode(&block), &cert);
                self.apply(to, step);
                // As the node does with a batch: ask the same peer for what follows at once.
                if let Some(now) = self.nodes[to].engine.as_ref().map(Engine::height) {
                    if now > before {
                        self.send(to, from, Payload::SyncRequest(now));
                    }
                }
            }
        }
    }

    /// Validates block bodies the node holds against the proposals it saw for its
    /// current height and tells the engine.
    fn feed_values(&mut self, i: usize) {
        let Some(height) = self.nodes[i].engine.as_ref().map(Engine::height) else {
            return;
        };
        let parent = self.nodes[i].last_hash();
        let candidates: Vec<SeenProposal> = self.nodes[i]
            .proposals
            .get(&height)
            .cloned()
            .unwrap_or_default();
        for (round, pol_round, proposer, block) in candidates {
            let n = &mut self.nodes[i];
            let Some(body) = n.bodies.get(&block) else {
                continue;
            };
            if !n.fed.insert((height, round, block)) {
                continue;
            }
            let valid = body.valid && body.height == height && body.parent == parent;
            let body = body.clone();
            n.disk.bodies.insert(block, body);
            let value = ProposedBlock {
                height,
                round,
                pol_round,
                proposer,
                block,
                valid,
            };
            let Some(engine) = n.engine.as_mut() else {
                return;
            };
            let step = engine.proposed_value(value, false);
            self.apply(i, step);
            if self.nodes[i].engine.is_none() {
                return;
            }
        }
    }

    // ---- network -------------------------------------------------------------------

    fn connected(&self, a: usize, b: usize, at: u64) -> bool {
        if at >= self.sc.gst {
            return true;
        }
        for p in &self.sc.partitions {
            if at >= p.start && at < p.end {
                let side = |x: usize| p.groups.iter().position(|g| g.contains(&x));
                if side(a) != side(b) {
                    return false;
                }
            }
        }
        true
    }

    fn send(&mut self, from: usize, to: usize, payload: Payload) {
        self.report.messages += 1;
        let before_gst = self.now < self.sc.gst;
        if !self.connected(from, to, self.now)
            || (before_gst && self.rng.per_mille(self.sc.drop_per_mille))
        {
            self.report.dropped += 1;
            return;
        }
        let copies = if before_gst && self.rng.per_mille(self.sc.dup_per_mille) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = if before_gst {
                self.rng.range(1, self.sc.max_delay_before_gst)
            } else {
                self.rng.range(1, self.sc.delta_after_gst)
            };
            self.schedule(
                self.now + delay,
                Event::Deliver {
                    to,
                    from,
                    payload: payload.clone(),
                },
            );
        }
    }

    fn broadcast(&mut self, from: usize, payload: Payload) {
        for to in 0..self.nodes.len() {
            if to != from {
                self.send(from, to, payload.clone());
            }
        }
    }

    /// The host's rule for a peer at the height in progress (`resend_for_peer_at` in
    /// the node): at most once a second, our proposal of the round in progress (with
    /// its body) and our votes of that round are sent again, since a peer that was down
    /// when they were first sent has no other way to get them.
    fn resend_for_peer(&mut self, i: usize) {
        let n = &self.nodes[i];
        if !n.honest || n.resent_at.is_some_and(|t| self.now < t + 1_000) {
            return;
        }
        let Some((height, round)) = n
            .engine
            .as_ref()
            .and_then(|e| Some((e.height(), e.round()?)))
        else {
            return;
        };
        let me = self.keys[n.key].account();
        let mine: Vec<ConsensusMessage> = wal_records(&n.disk.wal)
            .into_iter()
            .filter_map(|r| match r.entry {
                WalEntry::Proposal(p)
                    if p.proposer == me && p.height == height && p.round == round =>
                {
                    Some(ConsensusMessage::Proposal(p))
                }
                WalEntry::Vote(v)
                    if v.validator == me && v.height == height && v.round == round =>
                {
                    Some(ConsensusMessage::Vote(v))
                }
                _ => None,
            })
            .collect();
        self.nodes[i].resent_at = Some(self.now);
        for msg in mine {
            if let ConsensusMessage::Proposal(p) = &msg {
                if let Some(body) = self.nodes[i].bodies.get(&p.block).cloned() {
                    self.broadcast(i, Payload::Block(body));
                }
            }
            self.broadcast(i, Payload::Consensus(msg.to_bytes()));
        }
    }

    // ---- performing a step ------------------------------------------------------------

    fn crash_point(&mut self, i: usize, step: &Step) -> Option<CrashPoint> {
        if self.now >= self.sc.gst || !self.rng.per_mille(self.sc.crash_per_mille) {
            return None;
        }
        if self.wipes_left > 0 && self.nodes[i].honest && self.rng.below(20) == 0 {
            self.wipes_left -= 1;
            return Some(CrashPoint::Wipe);
        }
        Some(match self.rng.below(4) {
            0 => CrashPoint::BeforePersist,
            1 if step.needs_sync() => CrashPoint::TornPersist,
            2 => CrashPoint::AfterPersist,
            _ => CrashPoint::MidActions(self.rng.below(step.actions.len() as u64 + 1) as usize),
        })
    }

    fn persist(&mut self, i: usize, step: &Step, torn: bool) {
        let mut bytes = Vec::new();
        for record in &step.wal {
            bytes.extend(wal::encode_record(&record.to_bytes()));
        }
        // The node writes a step's WAL records and its guard in one atomic batch; a
        // crash mid-write leaves a torn tail of record bytes (cut off on replay) and the
        // previous guard.
        let guard_written = !torn;
        if torn && !bytes.is_empty() {
            let keep = self.rng.below(bytes.len() as u64) as usize;
            bytes.truncate(keep);
            self.report.torn_tails += 1;
        }
        let n = &mut self.nodes[i];
        n.disk.wal.extend(bytes);
        if guard_written {
            if let Some(g) = &step.guard {
                n.disk.guard = Some(g.to_bytes());
            }
        }
    }

    fn apply(&mut self, i: usize, step: Step) {
        let mut queue = VecDeque::from([step]);
        let mut started = false;
        loop {
            if queue.is_empty() && self.nodes[i].start_next && self.nodes[i].engine.is_some() {
                self.nodes[i].start_next = false;
                let next = Height::new(self.nodes[i].committed() + 1);
                let cset = self.cset.clone();
                if let Some(s) = self.nodes[i]
                    .engine
                    .as_mut()
                    .map(|e| e.start_height(next, cset, false))
                {
                    queue.push_back(s);
                    started = true;
                }
            }
            let Some(step) = queue.pop_front() else { break };
            if self.nodes[i].engine.is_none() || self.violation.is_some() {
                return;
            }
            if let Some(e) = &step.error {
                let e = e.clone();
                self.log(|| format!("node {i} engine error: {e}"));
            }
            let crash = self.crash_point(i, &step);
            match crash {
                Some(CrashPoint::BeforePersist) => return self.crash(i, "before persisting"),
                Some(CrashPoint::TornPersist) => {
                    self.persist(i, &step, true);
                    return self.crash(i, "mid-persist, torn WAL tail");
                }
                Some(CrashPoint::Wipe) => {
                    self.report.wipes += 1;
                    let n = &mut self.nodes[i];
                    n.disk.wal.clear();
                    n.disk.guard = None;
                    return self.crash(i, "lost WAL and guard");
                }
                Some(CrashPoint::AfterPersist) => {
                    self.persist(i, &step, false);
                    return self.crash(i, "after persisting, before sending");
                }
                _ => self.persist(i, &step, false),
            }
            let limit = match crash {
                Some(CrashPoint::MidActions(k)) => k,
                _ => usize::MAX,
            };
            for (k, action) in step.actions.into_iter().enumerate() {
                if k >= limit {
                    return self.crash(i, "part-way through its actions");
                }
                if let Some(next) = self.act(i, action) {
                    queue.push_back(next);
                }
                if self.nodes[i].engine.is_none() || self.violation.is_some() {
                    return;
                }
            }
            if limit != usize::MAX {
                return self.crash(i, "after its actions");
            }
        }
        if started {
            self.feed_values(i);
        }
    }

    fn record_signed(&mut self, i: usize, msg: &ConsensusMessage) {
        if !self.nodes[i].honest {
            return;
        }
        let key = self.nodes[i].key;
        let (h, r, kind, value, name) = match msg {
            ConsensusMessage::Vote(v) => {
                if v.validator != self.keys[key].account() {
                    return;
                }
                let (kind, name) = match v.vote_type {
                    VoteType::Prevote => (0u8, "prevote"),
                    VoteType::Precommit => (1u8, "precommit"),
                };
                (v.height, v.round, kind, v.block, name)
            }
            ConsensusMessage::Proposal(p) => {
                if p.proposer != self.keys[key].account() {
                    return;
                }
                (p.height, p.round, 2u8, Some(p.block), "proposal")
            }
            _ => return,
        };
        match self.signed.get(&(key, h.get(), r, kind)) {
            Some(prev) if *prev != value => self.fail(Violation::DoubleSign {
                key,
                height: h,
                round: r,
                kind: name,
            }),
            Some(_) => {}
            None => {
                self.signed.insert((key, h.get(), r, kind), value);
            }
        }
    }

    fn act(&mut self, i: usize, action: Action) -> Option<Step> {
        match action {
            Action::Broadcast(msg) => {
                self.record_signed(i, &msg);
                if let ConsensusMessage::Proposal(p) = &msg {
                    if let Some(body) = self.nodes[i].bodies.get(&p.block).cloned() {
                        self.broadcast(i, Payload::Block(body));
                    }
                }
                self.broadcast(i, Payload::Consensus(msg.to_bytes()));
                None
            }
            Action::ScheduleTimeout { timeout, after } => {
                self.generation += 1;
                let generation = self.generation;
                let n = &mut self.nodes[i];
                n.timers.insert(timeout_key(&timeout), generation);
                let incarnation = n.incarnation;
                let at = self.now + after.as_millis() as u64;
                self.schedule(
                    at,
                    Event::Timer {
                        node: i,
                        incarnation,
                        timeout,
                        generation,
                    },
                );
                None
            }
            Action::CancelTimeout(t) => {
                self.nodes[i].timers.remove(&timeout_key(&t));
                None
            }
            Action::CancelAllTimeouts => {
                self.nodes[i].timers.clear();
                None
            }
            Action::GetValue { height, round, .. } => {
                // The host's rule after a restart: a proposal this node signed for the
                // (height, round) is in its WAL; it is sent again, never a new block.
                let me = self.keys[self.nodes[i].key].account();
                let signed_before =
                    wal_records(&self.nodes[i].disk.wal)
                        .into_iter()
                        .find_map(|r| match r.entry {
                            WalEntry::Proposal(p)
                                if p.height == height && p.round == round && p.proposer == me =>
                            {
                                Some(p)
                            }
                            _ => None,
                        });
                if let Some(p) = signed_before {
                    self.log(|| format!("node {i} sends again its proposal at {height}/{round}"));
                    return self.act(i, Action::Broadcast(ConsensusMessage::Proposal(p)));
                }
                let valid =
                    !(self.sc.invalid_proposals && !self.nodes[i].honest && self.rng.below(3) == 0);
                let block = SimBlock {
                    height,
                    parent: self.nodes[i].last_hash(),
                    proposer: i as u32,
                    salt: self.rng.next(),
                    valid,
                };
                let hash = block.hash();
                self.built.insert(hash, block.clone());
                self.nodes[i].disk.bodies.insert(hash, block.clone());
                self.nodes[i].bodies.insert(hash, block);
                self.log(|| {
                    format!("node {i} proposes {hash} at {height}/{round} (valid {valid})")
                });
                self.nodes[i]
                    .engine
                    .as_mut()
                    .map(|e| e.propose(height, round, hash))
            }
            Action::RestreamProposal { block, .. } => {
                if let Some(body) = self.nodes[i].bodies.get(&block).cloned() {
                    self.broadcast(i, Payload::Block(body));
                }
                None
            }
            Action::SyncValue {
                height,
                round,
                proposer,
                block,
                block_bytes,
            } => {
                let Ok(body) = codec::decode::<SimBlock>(&block_bytes, 1024) else {
                    return None;
                };
                let parent = self.nodes[i].last_hash();
                let valid = body.hash() == block
                    && body.valid
                    && body.height == height
                    && body.parent == parent;
                self.nodes[i].disk.bodies.insert(body.hash(), body.clone());
                self.nodes[i].bodies.insert(body.hash(), body);
                let value = ProposedBlock {
                    height,
                    round,
                    pol_round: None,
                    proposer,
                    block,
                    valid,
                };
                self.nodes[i]
                    .engine
                    .as_mut()
                    .map(|e| e.proposed_value(value, true))
            }
            Action::SyncRejected {
                height,
                reason,
                peer,
            } => {
                let from = node_of_peer(&peer);
                self.log(|| {
                    format!("node {i} rejected a synced block {height} from {from:?}: {reason}")
                });
                None
            }
            Action::RoundStarted {
                height,
                round,
                proposer,
            } => {
                let since = self.liveness_since(i);
                let n = &mut self.nodes[i];
                if let Some(w) = n.round.take() {
                    n.excused_ms += w.excused(self.now, since);
                }
                let proposer = self
                    .keys
                    .iter()
                    .position(|k| k.account() == proposer)
                    .unwrap_or(usize::MAX);
                self.nodes[i].round = Some(RoundWatch {
                    height: height.get(),
                    round,
                    proposer,
                    start: self.now,
                    proposer_out: false,
                    missing_since: None,
                    missing_ms: 0,
                });
                let status = self.validator_status();
                self.watch_round(i, &status);
                None
            }
            Action::SignRefused(e) => {
                self.report.refused_signatures += 1;
                self.log(|| format!("node {i} refused to sign: {e}"));
                None
            }
            Action::Decided {
                certificate,
                evidence,
            } => {
                if !evidence.is_empty() {
                    self.report.evidence += 1;
                }
                self.commit(i, certificate)
            }
        }
    }

    fn commit(&mut self, i: usize, cert: CommitCertificate) -> Option<Step> {
        let height = cert.height;
        let n = &self.nodes[i];
        if height.get() != n.committed() + 1 {
            self.fail(Violation::Validity {
                node: i,
                height,
                reason: format!("decided height {height} while at {}", n.committed()),
            });
            return None;
        }
        let Some(body) = n.bodies.get(&cert.block).cloned() else {
            self.fail(Violation::Validity {
                node: i,
                height,
                reason: format!("decided {} without its body", cert.block),
            });
            return None;
        };
        if n.honest {
            let reason = if !self.built.contains_key(&cert.block) {
                Some("the block was never proposed".to_string())
            } else if !body.valid {
                Some("the block is invalid".to_string())
            } else if body.height != height || body.parent != n.last_hash() {
                Some("the block does not extend the previous decision".to_string())
            } else if let Err(e) = cert.verify(&self.chain_id, &self.set) {
                Some(format!("the commit certificate does not verify: {e}"))
            } else {
                None
            };
            if let Some(reason) = reason {
                self.fail(Violation::Validity {
                    node: i,
                    height,
                    reason,
                });
                return None;
            }
            match self.decisions.get(&height.get()) {
                Some((other, hash)) if *hash != cert.block => {
                    let v = Violation::Agreement {
                        height,
                        first: (*other, *hash),
                        second: (i, cert.block),
                    };
                    self.fail(v);
                    return None;
                }
                Some(_) => {}
                None => {
                    self.decisions.insert(height.get(), (i, cert.block));
                }
            }
            if self.now >= self.settle {
                let since = n.last_progress.max(self.settle).max(self.back_at(i));
                self.report.max_gap_after_gst_ms =
                    self.report.max_gap_after_gst_ms.max(self.now - since);
            }
        }
        let block_hash = cert.block;
        let n = &mut self.nodes[i];
        n.disk.chain.push((body, cert));
        n.disk.wal.clear();
        n.disk.bodies.retain(|_, b| b.height > height);
        n.last_progress = self.now;
        n.round = None;
        n.excused_ms = 0;
        n.proposals.retain(|h, _| *h > height);
        n.fed.retain(|(h, _, _)| *h > height);
        self.log(|| format!("node {i} commits {height} {block_hash}"));
        // The next height starts once the rest of this step's actions (which belong to
        // the decided height) are done, as the node does.
        self.nodes[i].start_next = true;
        None
    }
}

/// The records of a node's WAL that decode (a torn tail is left out).
fn wal_records(wal: &[u8]) -> Vec<WalRecord> {
    wal::replay(wal, MAX_MESSAGE_BYTES + 64)
        .records
        .iter()
        .filter_map(|r| WalRecord::from_bytes(r).ok())
        .collect()
}

/// Runs one seed of the random scenario mix.
pub fn run_seed(seed: u64) -> Result<Report, Box<Failure>> {
    Sim::new(seed, Scenario::of_seed(seed)).run()
}

pub fn run_scenario(seed: u64, sc: Scenario) -> Result<Report, Box<Failure>> {
    Sim::new(seed, sc).run()
}
