//! Light-client checks without an allocator: a block header against a trusted hash,
//! and a device record's Jellyfish-Merkle proof against the header's state root.
//!
//! The tree (the node's `jmt` with blake3): a key's path is `blake3(key)`, a value's
//! hash `blake3(value)`, a leaf `blake3("JMT::LeafNode" ‖ key hash ‖ value hash)`, an
//! inner node `blake3("JMT::IntrnalNode" ‖ left ‖ right)`, an empty subtree the
//! placeholder `"SPARSE_MERKLE_PLACEHOLDER_HASH__"`. A proof (borsh) is an optional leaf
//! and up to 256 siblings from the bottom up; sibling `i` pairs with bit `n-1-i` of the
//! key path (most significant bit first).

use crate::{domain, Error};

const LEAF: &[u8] = b"JMT::LeafNode";
const INTERNAL: &[u8] = b"JMT::IntrnalNode";
const PLACEHOLDER: [u8; 32] = *b"SPARSE_MERKLE_PLACEHOLDER_HASH__";
const DEVICE_TAG: u8 = 0x30;

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
    let key_hash = hash(&[&key]);

    let mut r = Reader(proof);
    let leaf = match r.u8()? {
        0 => None,
        1 => Some((r.array()?, r.array()?)),
        _ => return Err(Error::Malformed),
    };
    let siblings = r.u32()? as usize;
    if siblings > 256 {
        return Err(Error::Malformed);
    }
    let mut current = match (record, leaf) {
        (Some(value), Some((leaf_key, leaf_value))) => {
            if leaf_key != key_hash || leaf_value != hash(&[value]) {
                return Err(Error::ProofMismatch);
            }
            hash(&[LEAF, &leaf_key, &leaf_value])
        }
        (Some(_), None) => return Err(Error::ProofMismatch),
        (None, Some((leaf_key, leaf_value))) => {
            // Absence: another key is alone in the subtree the device's key would be in.
            if leaf_key == key_hash || common_prefix_bits(&leaf_key, &key_hash) < siblings {
                return Err(Error::ProofMismatch);
            }
            hash(&[LEAF, &leaf_key, &leaf_value])
        }
        (None, None) => PLACEHOLDER,
    };
    for i in 0..siblings {
        let sibling = match r.u8()? {
            0 => PLACEHOLDER,
            1 => {
                let (left, right) = (r.array()?, r.array()?);
                hash(&[INTERNAL, &left, &right])
            }
            2 => {
                let (k, v) = (r.array()?, r.array()?);
                hash(&[LEAF, &k, &v])
            }
            _ => return Err(Error::Malformed),
        };
        current = if bit(&key_hash, siblings - 1 - i) {
            hash(&[INTERNAL, &sibling, &current])
        } else {
            hash(&[INTERNAL, &current, &sibling])
        };
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

/// Bit `i` of a 256-bit path, most significant first.
fn bit(path: &[u8; 32], i: usize) -> bool {
    path.get(i / 8).is_some_and(|b| (b >> (7 - i % 8)) & 1 == 1)
}

fn common_prefix_bits(a: &[u8; 32], b: &[u8; 32]) -> usize {
    (0..256).take_while(|&i| bit(a, i) == bit(b, i)).count()
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
