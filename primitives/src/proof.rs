//! The authenticated-state hash function and the light-client proof verifier.
//!
//! State is a Jellyfish Merkle tree (the `jmt` crate) hashed with blake3. A leaf's key
//! is plain `blake3(key bytes)` — no domain: every state key starts with its one-byte
//! tag ([`crate::state::tag`]), and the tree hashes nothing else under that function —
//! and its value hash is blake3 of the borsh-encoded record. [`verify`] checks a proof against a state root without any
//! database: all a light client needs is a trusted root (a header with its commit, or
//! an Ethereum checkpoint).

use crate::codec::{self, CodecError};
use crate::hash::Hash;
use crate::state::StateKey;
use borsh::{BorshDeserialize, BorshSerialize};
use jmt::proof::SparseMerkleProof;
use jmt::{KeyHash, RootHash, SimpleHasher};

/// blake3 as the tree's hash function.
#[derive(Clone, Debug, Default)]
pub struct Blake3Hasher(blake3::Hasher);

impl SimpleHasher for Blake3Hasher {
    fn new() -> Self {
        Blake3Hasher(blake3::Hasher::new())
    }

    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    fn finalize(self) -> [u8; 32] {
        *self.0.finalize().as_bytes()
    }
}

/// The tree key of a raw state key.
pub fn key_hash(key: &[u8]) -> KeyHash {
    KeyHash::with::<Blake3Hasher>(key)
}

/// The root of an empty tree (jmt's placeholder: the bytes of "SPARSE_MERKLE_PLACEHOLDER_HASH").
pub fn empty_root() -> Hash {
    Hash(*b"SPARSE_MERKLE_PLACEHOLDER_HASH__")
}

/// Encoded proofs are bounded: at most 256 siblings of 33 bytes plus a leaf.
pub const MAX_PROOF_BYTES: usize = 16 * 1024;

/// A proof that a key has a given value (or none) under a state root.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct StateProof(pub SparseMerkleProof<Blake3Hasher>);

impl StateProof {
    pub fn to_bytes(&self) -> Vec<u8> {
        codec::encode(self)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<StateProof, CodecError> {
        codec::decode(bytes, MAX_PROOF_BYTES)
    }
}

/// Why a proof was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("proof does not verify against root {root}: {reason}")]
    Mismatch { root: Hash, reason: String },
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
    proof
        .0
        .verify(RootHash(root.0), key_hash(key), value)
        .map_err(|e| ProofError::Mismatch {
            root,
            reason: e.to_string(),
        })
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

    /// What the module docs say a leaf key is: plain blake3 of the key bytes.
    #[test]
    fn a_leaf_key_is_plain_blake3_of_the_state_key() {
        let key = StateKey::Params.to_bytes();
        assert_eq!(key_hash(&key).0, *blake3::hash(&key).as_bytes());
    }
}
