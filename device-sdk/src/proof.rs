//! Light-client checks without an allocator: a block header against a trusted hash,
//! and a device record's state-log proof against the header's state root.
//!
//! The state log (the node's `atonomi_primitives::statelog`): every state key has one
//! active *entry* `(key, next key, blake3(value))` in an append-only log cut into
//! twigs of 2,048 entries. Hashes are blake3 in keyed mode with keys derived from
//! domain strings: a leaf `keyed(LEAF, u32le len key ‖ key ‖ u32le len next ‖ next ‖
//! value hash)`, an inner node `keyed(NODE, left ‖ right)`, a twig root
//! `keyed(TWIG, entries root ‖ keyed(BITS, 256-byte active bitmap))`; the root is a
//! fixed-depth tree of 2^29 twig roots, empty subtrees built up from a zero leaf. A
//! proof (borsh) is `serial u64 ‖ key ‖ next ‖ value hash ‖ 11 twig siblings ‖ bitmap ‖
//! u32 null-sibling flags ‖ the other upper siblings`. An absent key is proven by the
//! active entry whose key is below it and whose next key is above it (or none).
//! The verifier streams the siblings and keeps a few hashes on the stack.

use crate::{domain, Error};

const DEVICE_TAG: u8 = 0x30;
const TWIG_BITS: u32 = 11;
const UPPER_DEPTH: u32 = 29;
const BITMAP_BYTES: usize = 256;
const MAX_KEY: usize = 1024;
const LEAF: &str = "atonomi 2026 state log leaf v1";
const NODE: &str = "atonomi 2026 state log node v1";
const BITS: &str = "atonomi 2026 state log bitmap v1";
const TWIG: &str = "atonomi 2026 state log twig v1";

/// A device's lifecycle status (the record's `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    Registered = 0,
    Active = 1,
    Suspended = 2,
    Revoked = 3,
}

/// What a verified device record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceView {
    /// `None`: the proof shows the device is not registered.
    pub status: Option<DeviceStatus>,
    pub manufacturer: u32,
    pub public_key: [u8; 32],
    pub owner: Option<[u8; 32]>,
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.0.len() < n {
            return Err(Error::Malformed);
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }

    fn array(&mut self) -> Result<[u8; 32], Error> {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.take(32)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, Error> {
        Ok(*self.take(1)?.first().ok_or(Error::Malformed)?)
    }

    fn u64(&mut self) -> Result<u64, Error> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }

    /// A length-prefixed byte string of at most `max` bytes.
    fn bytes(&mut self, max: usize) -> Result<&'a [u8], Error> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(Error::Malformed);
        }
        self.take(n)
    }

    fn u32(&mut self) -> Result<u32, Error> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(b))
    }

    /// A length-prefixed byte string of at most `max` bytes, skipped.
    fn skip_bytes(&mut self, max: usize) -> Result<(), Error> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(Error::Malformed);
        }
        self.take(n).map(|_| ())
    }
}

fn hash(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    for p in parts {
        h.update(p);
    }
    *h.finalize().as_bytes()
}

fn keyed(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_keyed(key);
    for p in parts {
        h.update(p);
    }
    *h.finalize().as_bytes()
}

/// Checks that `header` (its borsh bytes, as `atonomi_getProof` returns them in
/// `header_bytes`) hashes to `trusted_hash` and returns its state root.
pub fn header_state_root(header: &[u8], trusted_hash: &[u8; 32]) -> Result<[u8; 32], Error> {
    if crate::domain_hash(domain::BLOCK_HASH, &[header]) != *trusted_hash {
        return Err(Error::HeaderMismatch);
    }
    let mut r = Reader(header);
    r.skip_bytes(crate::encode::MAX_CHAIN_ID)?; // chain id
    r.take(8 + 32 + 8 + 32 + 32)?; // height, parent, timestamp, proposer, tx root
    r.array()
}

/// Verifies `proof` (borsh bytes of the node's `StateProof`) for the record of
/// `device_id` under `state_root`: `record` is the record's bytes (`value` of
/// `atonomi_getProof`), or `None` when the node says the device does not exist — the
/// proof must then prove its absence. Returns what the record says.
pub fn verify_device(
    state_root: &[u8; 32],
    device_id: &[u8; 32],
    record: Option<&[u8]>,
    proof: &[u8],
) -> Result<DeviceView, Error> {
    let mut key = [0u8; 33];
    key[0] = DEVICE_TAG;
    key[1..].copy_from_slice(device_id);
    let (leaf_key, node_key, bits_key, twig_key) = (
        blake3::derive_key(LEAF, &[]),
        blake3::derive_key(NODE, &[]),
        blake3::derive_key(BITS, &[]),
        blake3::derive_key(TWIG, &[]),
    );

    let mut r = Reader(proof);
    let serial = r.u64()?;
    if serial >> (TWIG_BITS + UPPER_DEPTH) != 0 {
        return Err(Error::Malformed);
    }
    let entry_key = r.bytes(MAX_KEY)?;
    let next = r.bytes(MAX_KEY)?;
    let value_hash = r.array()?;
    // The entry must be the device's own, or the one whose link passes over it.
    let fits = match record {
        Some(v) => entry_key == key.as_slice() && value_hash == hash(&[v]),
        None => entry_key < key.as_slice() && (next.is_empty() || key.as_slice() < next),
    };
    if !fits {
        return Err(Error::ProofMismatch);
    }
    let mut current = keyed(
        &leaf_key,
        &[
            &(entry_key.len() as u32).to_le_bytes(),
            entry_key,
            &(next.len() as u32).to_le_bytes(),
            next,
            &value_hash,
        ],
    );
    let pos = serial & ((1 << TWIG_BITS) - 1);
    // The empty subtrees, built up alongside.
    let mut null = [0u8; 32];
    for i in 0..TWIG_BITS {
        let sibling = r.array()?;
        current = if pos >> i & 1 == 1 {
            keyed(&node_key, &[&sibling, &current])
        } else {
            keyed(&node_key, &[&current, &sibling])
        };
        null = keyed(&node_key, &[&null, &null]);
    }
    let bits = r.take(BITMAP_BYTES)?;
    let active = bits
        .get((pos / 8) as usize)
        .is_some_and(|b| b >> (pos % 8) & 1 == 1);
    if !active {
        return Err(Error::ProofMismatch);
    }
    current = keyed(&twig_key, &[&current, &keyed(&bits_key, &[bits])]);
    null = keyed(
        &twig_key,
        &[&null, &keyed(&bits_key, &[&[0u8; BITMAP_BYTES]])],
    );
    let null_flags = r.u32()?;
    let given = r.u32()?;
    if null_flags >> UPPER_DEPTH != 0 || given + null_flags.count_ones() != UPPER_DEPTH {
        return Err(Error::Malformed);
    }
    let twig = serial >> TWIG_BITS;
    for i in 0..UPPER_DEPTH {
        let sibling = if null_flags >> i & 1 == 1 {
            null
        } else {
            r.array()?
        };
        current = if twig >> i & 1 == 1 {
            keyed(&node_key, &[&sibling, &current])
        } else {
            keyed(&node_key, &[&current, &sibling])
        };
        null = keyed(&node_key, &[&null, &null]);
    }
    if !r.0.is_empty() {
        return Err(Error::Malformed);
    }
    if current != *state_root {
        return Err(Error::ProofMismatch);
    }
    match record {
        None => Ok(DeviceView {
            status: None,
            manufacturer: 0,
            public_key: [0; 32],
            owner: None,
        }),
        Some(v) => parse_device(v),
    }
}

/// The leading fields of a borsh `Device` record, up to its owner.
fn parse_device(v: &[u8]) -> Result<DeviceView, Error> {
    let mut r = Reader(v);
    r.take(32)?; // id
    let mut m = [0u8; 4];
    m.copy_from_slice(r.take(4)?);
    let manufacturer = u32::from_le_bytes(m);
    let public_key = r.array()?;
    let protocols = r.u32()? as usize;
    if protocols > 8 {
        return Err(Error::Malformed);
    }
    for _ in 0..protocols {
        r.skip_bytes(32)?;
    }
    r.skip_bytes(1024)?; // metadata
    let status = match r.u8()? {
        0 => DeviceStatus::Registered,
        1 => DeviceStatus::Active,
        2 => DeviceStatus::Suspended,
        3 => DeviceStatus::Revoked,
        _ => return Err(Error::Malformed),
    };
    let owner = match r.u8()? {
        0 => None,
        1 => Some(r.array()?),
        _ => return Err(Error::Malformed),
    };
    Ok(DeviceView {
        status: Some(status),
        manufacturer,
        public_key,
        owner,
    })
}
