//! The Ethereum side of the bridge.
//!
//! Validators hold a secp256k1 *bridge key* (an Ethereum address) beside their ed25519
//! consensus key: verifying ed25519 on Ethereum costs hundreds of thousands of gas per
//! signature, `ecrecover` 3,000. A [`Checkpoint`] — epoch (strictly sequential), height,
//! block hash, state root, hash of the next validator set — is signed by each
//! validator's bridge key over a digest bound to the Atonomi chain id, the Ethereum
//! chain id and the contract address ([`checkpoint_digest`]), exactly as
//! `bridge/contracts/AtonomiCheckpoints.sol` recomputes it. The contract accepts a
//! checkpoint with low-s signatures of more than 2/3 of the trusted set's power and
//! rotates the set when the next-set hash differs.
//!
//! [`contract`] has the Rust bindings and deployment from the compiled artifacts
//! (`scripts/eth-tools.sh` compiles them with the pinned npm `solc`).

pub mod checkpoint;
pub mod contract;

pub use checkpoint::{checkpoint_digest, sign_digest, BridgeSet, Checkpoint};
