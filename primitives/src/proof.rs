//! The light-client proof verifier: a state proof checked against a state root without
//! any database. All a light client needs is a trusted root (a header with its commit,
//! or an Ethereum checkpoint).
//!
//! State is the *state log* ([`crate::statelog`]): a proof carries one entry — the
//! asked key with its value's hash, or, for an absent key, the key before it whose
//! link to the next key passes over it — and the Merkle path from that entry to the
//! root. A value's hash is blake3 of its borsh-encoded record.

use crate::codec::{self, CodecError};
use crate::hash::Hash;
use crate::state::StateKey;
use crate::statelog::{self, LogProof, LogProofError};
use borsh::BorshDeserialize;

pub use crate::statelog::MAX_LOG_PROOF_BYTES as MAX_PROOF_BYTES;

/// A proof that a key has a given value (or none) under a state root.
pub type StateProof = LogProof;

/// The root of a state with no entries (before genesis).
pub fn empty_root() -> Hash {
    statelog::empty_log_root()
}

/// Why a proof was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("proof does not verify against root {root}: {reason}")]
    Mismatch { root: Hash, reason: LogProofError },
    #[error("the proven value does not decode: {0}")]
    BadValue(CodecError),
}

/// Checks that `key` has exactly `value` (`None`: is absent) under `root`.
pub fn verify_raw(
    root: Hash,
    key: &[u8],
    value: Option<&[u8]>,
    proof: &StateProof,
) -> Result<(), ProofError> {
    statelog::verify_log(root, key, value, proof)
        .map_err(|reason| ProofError::Mismatch { root, reason })
}

/// Checks the proof for a typed key and decodes the proven record.
pub fn verify<T: BorshDeserialize>(
    root: Hash,
    key: &StateKey,
    value: Option<&[u8]>,
    proof: &StateProof,
) -> Result<Option<T>, ProofError> {
    verify_raw(root, &key.to_bytes(), value, proof)?;
    match value {
        None => Ok(None),
        Some(v) => codec::decode(v, usize::MAX)
            .map(Some)
            .map_err(ProofError::BadValue),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A proof's bytes are bounded before they are decoded.
    #[test]
    fn oversized_and_garbage_proofs_are_refused() {
        assert!(StateProof::from_bytes(&[0xff; 40]).is_err());
        assert!(StateProof::from_bytes(&vec![0u8; MAX_PROOF_BYTES + 1]).is_err());
    }
}
