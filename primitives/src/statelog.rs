//! The state log's hash rules and its proof verifier (the store itself is in
//! `atonomi-storage`).
//!
//! State is an append-only log of *entries*. An entry is one state key, its value and
//! the next key present in state (`next`, empty for the last key): every write appends
//! a new entry for its key and marks the key's previous entry inactive, and every key
//! that appears or disappears rewrites the entry of the key before it, so that the
//! active entries always form one sorted chain from the empty *sentinel* key (entry 0,
//! written at genesis, never removed) to the last key. An absent key is proven by the
//! active entry whose key is below it and whose `next` is above it.
//!
//! The log is cut into *twigs* of 2,048 entries. A twig's root hashes the Merkle root
//! of its 2,048 leaves (11 levels) with its 256-byte *active bitmap* (bit `i % 8` of
//! byte `i / 8` set while entry `i` is active); the state root is the Merkle root of a
//! fixed-depth tree of 2^29 twig roots, the unfilled ones null. Every hash is blake3 in
//! keyed mode, with keys derived from the domains below:
//!
//! ```text
//! leaf(entry)    = keyed(LEAF, u32le(len key) ‖ key ‖ u32le(len next) ‖ next ‖ blake3(value))
//! node(l, r)     = keyed(NODE, l ‖ r)                       (twig levels and upper levels)
//! twig(e, bits)  = keyed(TWIG, e ‖ keyed(BITS, bits))
//! null leaf      = 32 zero bytes;  null(k + 1) = node(null(k), null(k))
//! null twig      = twig(null(11), 256 zero bytes);  null upper levels likewise
//! ```
//!
//! A [`LogProof`] carries one entry (`key`, `next`, `value_hash`), its serial, its 11
//! twig siblings, its twig's bitmap and the non-null upper siblings. Nothing else is
//! trusted: [`verify_log`] recomputes the root.

use crate::codec::{self, CodecError};
use crate::hash::Hash;
use borsh::{BorshDeserialize, BorshSerialize};
use std::sync::OnceLock;

/// Entries per twig, as a power of two.
pub const TWIG_BITS: u32 = 11;
/// Entries per twig.
pub const TWIG_SIZE: u64 = 1 << TWIG_BITS;
/// Bytes of a twig's active bitmap.
pub const BITMAP_BYTES: usize = (TWIG_SIZE / 8) as usize;
/// Levels of the tree over twig roots: room for 2^29 twigs, 2^40 entries.
pub const UPPER_DEPTH: u32 = 29;
/// Largest serial an entry can have.
pub const MAX_SERIAL: u64 = (1 << (TWIG_BITS + UPPER_DEPTH)) - 1;
/// Largest key a proof may carry (state keys are a tag and at most a few ids).
pub const MAX_KEY: usize = 1024;

pub mod domain {
    pub const LEAF: &str = "atonomi 2026 state log leaf v1";
    pub const NODE: &str = "atonomi 2026 state log node v1";
    pub const BITS: &str = "atonomi 2026 state log bitmap v1";
    pub const TWIG: &str = "atonomi 2026 state log twig v1";
}

struct Keys {
    leaf: [u8; 32],
    node: [u8; 32],
    bits: [u8; 32],
    twig: [u8; 32],
    /// `null_twig[k]`: root of an empty subtree k levels above the leaves of a twig.
    null_twig: [Hash; TWIG_BITS as usize + 1],
    /// `null_upper[k]`: root of an empty subtree k levels above the twig roots.
    null_upper: [Hash; UPPER_DEPTH as usize + 1],
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut k = Keys {
            leaf: blake3::derive_key(domain::LEAF, &[]),
            node: blake3::derive_key(domain::NODE, &[]),
            bits: blake3::derive_key(domain::BITS, &[]),
            twig: blake3::derive_key(domain::TWIG, &[]),
            null_twig: [Hash::ZERO; TWIG_BITS as usize + 1],
            null_upper: [Hash::ZERO; UPPER_DEPTH as usize + 1],
        };
        for i in 1..k.null_twig.len() {
            k.null_twig[i] = keyed_pair(&k.node, &k.null_twig[i - 1], &k.null_twig[i - 1]);
        }
        let empty_bits = Hash(*blake3::keyed_hash(&k.bits, &[0u8; BITMAP_BYTES]).as_bytes());
        k.null_upper[0] = keyed_pair(&k.twig, &k.null_twig[TWIG_BITS as usize], &empty_bits);
        for i in 1..k.null_upper.len() {
            k.null_upper[i] = keyed_pair(&k.node, &k.null_upper[i - 1], &k.null_upper[i - 1]);
        }
        k
    })
}

fn keyed_pair(key: &[u8; 32], l: &Hash, r: &Hash) -> Hash {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(&l.0);
    buf[32..].copy_from_slice(&r.0);
    Hash(*blake3::keyed_hash(key, &buf).as_bytes())
}

/// The leaf hash of an entry.
pub fn leaf_hash(key: &[u8], next: &[u8], value_hash: &Hash) -> Hash {
    let mut h = blake3::Hasher::new_keyed(&keys().leaf);
    h.update(&(key.len() as u32).to_le_bytes());
    h.update(key);
    h.update(&(next.len() as u32).to_le_bytes());
    h.update(next);
    h.update(&value_hash.0);
    Hash(*h.finalize().as_bytes())
}

/// An inner node, in a twig or above the twigs.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    keyed_pair(&keys().node, left, right)
}

/// A twig's root from its leaves' root and its active bitmap.
pub fn twig_hash(entries_root: &Hash, bits: &[u8; BITMAP_BYTES]) -> Hash {
    let k = keys();
    let bits_hash = Hash(*blake3::keyed_hash(&k.bits, bits).as_bytes());
    keyed_pair(&k.twig, entries_root, &bits_hash)
}

/// The hash of a value, as a leaf commits to it.
pub fn value_hash(value: &[u8]) -> Hash {
    Hash::of(value)
}

/// Root of an empty subtree `level` levels above a twig's leaves (0: the null leaf).
pub fn null_twig_node(level: u32) -> Hash {
    keys().null_twig[level.min(TWIG_BITS) as usize]
}

/// Root of an empty subtree `level` levels above the twig roots (0: an empty twig).
pub fn null_upper_node(level: u32) -> Hash {
    keys().null_upper[level.min(UPPER_DEPTH) as usize]
}

/// The root of a state with no entries at all (before genesis writes the sentinel).
pub fn empty_log_root() -> Hash {
    null_upper_node(UPPER_DEPTH)
}

/// A proof that a key has a value under a state root, or that it is absent.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct LogProof {
    /// Position of the proven entry in the log.
    pub serial: u64,
    /// The proven entry's key: the asked key, or for an absent key the one before it.
    pub key: Vec<u8>,
    /// The key after `key` in state (empty: none).
    pub next: Vec<u8>,
    /// blake3 of the entry's value.
    pub value_hash: Hash,
    /// Sibling hashes inside the twig, leaf level first.
    pub twig: [Hash; TWIG_BITS as usize],
    /// The twig's active bitmap.
    pub bits: [u8; BITMAP_BYTES],
    /// Bit `i` set: the sibling at upper level `i` is the empty subtree.
    pub null_upper: u32,
    /// The other upper siblings, lowest level first.
    pub upper: Vec<Hash>,
}

/// Encoded proofs are bounded: two keys, the bitmap and 41 hashes.
pub const MAX_LOG_PROOF_BYTES: usize = 2 * MAX_KEY + BITMAP_BYTES + 64 * 32;

impl LogProof {
    pub fn to_bytes(&self) -> Vec<u8> {
        codec::encode(self)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<LogProof, CodecError> {
        codec::decode(bytes, MAX_LOG_PROOF_BYTES)
    }

    /// The state root this proof leads to (whatever it proves).
    pub fn root(&self) -> Result<Hash, &'static str> {
        if self.serial > MAX_SERIAL {
            return Err("serial beyond the log's capacity");
        }
        if self.upper.len() + self.null_upper.count_ones() as usize != UPPER_DEPTH as usize
            || self.null_upper >> UPPER_DEPTH != 0
        {
            return Err("wrong number of upper siblings");
        }
        let pos = self.serial & (TWIG_SIZE - 1);
        if self.bits[(pos / 8) as usize] >> (pos % 8) & 1 == 0 {
            return Err("the proven entry is not active");
        }
        let mut cur = leaf_hash(&self.key, &self.next, &self.value_hash);
        for (i, sib) in self.twig.iter().enumerate() {
            cur = if pos >> i & 1 == 1 {
                node_hash(sib, &cur)
            } else {
                node_hash(&cur, sib)
            };
        }
        cur = twig_hash(&cur, &self.bits);
        let twig = self.serial >> TWIG_BITS;
        let mut upper = self.upper.iter();
        for i in 0..UPPER_DEPTH {
            let sib = if self.null_upper >> i & 1 == 1 {
                null_upper_node(i)
            } else {
                *upper.next().ok_or("wrong number of upper siblings")?
            };
            cur = if twig >> i & 1 == 1 {
                node_hash(&sib, &cur)
            } else {
                node_hash(&cur, &sib)
            };
        }
        Ok(cur)
    }
}

/// Why a log proof was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogProofError {
    #[error("the proof is malformed: {0}")]
    Malformed(&'static str),
    #[error("the proof is for another key or value")]
    WrongEntry,
    #[error("the proof does not lead to root {0}")]
    WrongRoot(Hash),
}

/// Checks that `key` has exactly `value` (`None`: is absent) under `root`.
pub fn verify_log(
    root: Hash,
    key: &[u8],
    value: Option<&[u8]>,
    proof: &LogProof,
) -> Result<(), LogProofError> {
    if key.is_empty() {
        return Err(LogProofError::Malformed("the empty key is the sentinel"));
    }
    let entry_fits = match value {
        Some(v) => proof.key == key && proof.value_hash == value_hash(v),
        None => {
            proof.key.as_slice() < key && (proof.next.is_empty() || key < proof.next.as_slice())
        }
    };
    if !entry_fits {
        return Err(LogProofError::WrongEntry);
    }
    let got = proof.root().map_err(LogProofError::Malformed)?;
    if got != root {
        return Err(LogProofError::WrongRoot(root));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_entry_root(key: &[u8], next: &[u8], value: &[u8], serial: u64) -> (Hash, LogProof) {
        // A log whose only active entry is `serial` (all other leaves null).
        let pos = serial & (TWIG_SIZE - 1);
        let mut bits = [0u8; BITMAP_BYTES];
        bits[(pos / 8) as usize] |= 1 << (pos % 8);
        let proof = LogProof {
            serial,
            key: key.to_vec(),
            next: next.to_vec(),
            value_hash: value_hash(value),
            twig: std::array::from_fn(|i| null_twig_node(i as u32)),
            bits,
            null_upper: (1 << UPPER_DEPTH) - 1,
            upper: vec![],
        };
        (proof.root().unwrap(), proof)
    }

    #[test]
    fn inclusion_and_absence_by_the_chain_of_keys() {
        let (root, p) = one_entry_root(b"b", b"d", b"v", 5);
        verify_log(root, b"b", Some(b"v"), &p).unwrap();
        assert_eq!(
            verify_log(root, b"b", Some(b"w"), &p),
            Err(LogProofError::WrongEntry)
        );
        // b's link to d proves that c is absent, but not that b, d or e are.
        verify_log(root, b"c", None, &p).unwrap();
        for k in [&b"b"[..], b"d", b"e", b"a"] {
            assert_eq!(
                verify_log(root, k, None, &p),
                Err(LogProofError::WrongEntry)
            );
        }
        let other = Hash::of(b"other");
        assert_eq!(
            verify_log(other, b"b", Some(b"v"), &p),
            Err(LogProofError::WrongRoot(other))
        );
    }

    #[test]
    fn tampering_breaks_the_proof() {
        let (root, p) = one_entry_root(b"k", b"", b"v", 4097);
        verify_log(root, b"k", Some(b"v"), &p).unwrap();
        let mut q = p.clone();
        q.serial ^= 1;
        assert!(verify_log(root, b"k", Some(b"v"), &q).is_err());
        let mut q = p.clone();
        q.bits[0] ^= 0x80;
        assert!(verify_log(root, b"k", Some(b"v"), &q).is_err());
        let mut q = p.clone();
        q.twig[3].0[0] ^= 1;
        assert!(verify_log(root, b"k", Some(b"v"), &q).is_err());
        let mut q = p.clone();
        q.null_upper &= !1;
        q.upper.push(null_upper_node(0));
        assert_eq!(
            q.root().unwrap(),
            root,
            "an explicit null sibling is the same tree"
        );
        q.upper[0].0[5] ^= 1;
        assert!(verify_log(root, b"k", Some(b"v"), &q).is_err());
        let mut q = p.clone();
        q.null_upper &= !1;
        assert_eq!(
            verify_log(root, b"k", Some(b"v"), &q),
            Err(LogProofError::Malformed("wrong number of upper siblings"))
        );
        // An inactive entry proves nothing.
        let mut q = p.clone();
        q.bits = [0; BITMAP_BYTES];
        assert!(verify_log(root, b"k", Some(b"v"), &q).is_err());
        // Round trip through bytes.
        assert_eq!(LogProof::from_bytes(&p.to_bytes()).unwrap(), p);
    }
}
