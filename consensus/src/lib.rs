//! Consensus for the Atonomi ledger.
//!
//! The BFT algorithm itself is Tendermint from Malachite's sans-I/O core crates,
//! driven by [`engine::Engine`]: the node feeds it messages, timeouts and block
//! values, and performs the durable steps and actions it returns. This crate holds
//! what we own around Malachite, all pure (no I/O, no clock, no randomness):
//!
//! - [`engine`]: the sans-I/O engine (one height at a time, WAL records and guard
//!   updates in each step, sync of decided blocks with certificates);
//! - [`context`]: Malachite's `Context` for our types (blocks as values by hash,
//!   ed25519, power-weighted proposer selection);
//! - [`message`] and [`net`]: the wire formats of consensus gossip, transaction
//!   batches and block sync, each decoded under a size bound;
//! - [`validate`]: the chain-side checks of a proposed block's header;
//! - [`vote`]: signed prevotes/precommits with domain-separated signing bytes;
//! - [`certificate`]: commit certificates any node verifies with the validator set of
//!   that height (more than 2/3 of the voting power, distinct signers, valid
//!   signatures, all for the same block);
//! - [`guard`]: the double-sign guard — the last (height, round, step) signed and what
//!   was signed; a validator asks it before every signature and persists its new state
//!   before the signed message leaves the node;
//! - [`wal`]: the write-ahead log record format with per-record checksums, replayed up
//!   to the first torn or corrupt record.
//!
//! Safety argument (the part this crate enforces): a validator never signs two
//! different messages for the same (height, round, step), and never signs at a
//! (height, round, step) lower than one it already signed. The guard state is made
//! durable before any signature is released, so after `kill -9` at any point the
//! recovered guard is at least as advanced as anything a peer may have seen. If the
//! guard is lost but blocks exist, [`guard::SignGuard::after_data_loss`] refuses every
//! height up to the highest one the node may have voted on.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod certificate;
pub mod context;
pub mod engine;
pub mod guard;
pub mod message;
pub mod net;
pub mod validate;
pub mod vote;
pub mod wal;

pub use certificate::{CertificateError, CommitCertificate};
pub use guard::{GuardError, SignGuard};
pub use vote::{Round, SignedVote, Vote, VoteType};
