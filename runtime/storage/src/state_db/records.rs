//! The records the log keeps per key and per version: a key's link ([`Record`]), what a
//! version changed ([`Undo`]) and a past version's tree ([`View`]). Plain data with
//! their encodings; nothing here reads the store.

use crate::error::{Result, StorageError};
use atonomi_primitives::statelog::BITMAP_BYTES;
use atonomi_primitives::Hash;
use std::collections::HashMap;

/// A key's link record in `links`: where its active entry is and what it commits to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Record {
    pub(super) serial: u64,
    pub(super) value_hash: Hash,
    pub(super) next: Vec<u8>,
}

impl Record {
    pub(super) fn encode(serial: u64, value_hash: &Hash, next: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(40 + next.len());
        v.extend_from_slice(&serial.to_be_bytes());
        v.extend_from_slice(&value_hash.0);
        v.extend_from_slice(next);
        v
    }

    pub(super) fn decode(b: &[u8]) -> Result<Record> {
        if b.len() < 40 {
            return Err(corrupt("links", "a record shorter than its header"));
        }
        let mut serial = [0u8; 8];
        serial.copy_from_slice(&b[..8]);
        let mut value_hash = Hash::ZERO;
        value_hash.0.copy_from_slice(&b[8..40]);
        Ok(Record {
            serial: u64::from_be_bytes(serial),
            value_hash,
            next: b[40..].to_vec(),
        })
    }
}

pub(super) fn corrupt(cf: &'static str, what: &str) -> StorageError {
    StorageError::Invalid(format!("corrupt state log ({cf}): {what}"))
}

/// The tree at a past version: its length, the tree over its twig roots, and the
/// bitmaps (as they were then) of every twig that changed since.
#[derive(Debug)]
pub(super) struct View {
    pub(super) version: u64,
    pub(super) len: u64,
    pub(super) upper: Vec<Vec<Hash>>,
    pub(super) bits: HashMap<u64, [u8; BITMAP_BYTES]>,
}

/// What a key was before a version changed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Undo {
    /// Its link then (`None`: absent).
    pub(super) link: Option<Record>,
    /// Its value then, when the version changed the value.
    pub(super) value: Option<Vec<u8>>,
}

impl Undo {
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut v = Vec::new();
        match &self.link {
            None => v.push(0),
            Some(r) => {
                v.push(1);
                let rec = Record::encode(r.serial, &r.value_hash, &r.next);
                v.extend_from_slice(&(rec.len() as u32).to_le_bytes());
                v.extend_from_slice(&rec);
                match &self.value {
                    None => v.push(0),
                    Some(val) => {
                        v.push(1);
                        v.extend_from_slice(val);
                    }
                }
            }
        }
        v
    }

    pub(super) fn decode(b: &[u8]) -> Result<Undo> {
        let bad = || corrupt("undo", "a truncated record");
        match b.first() {
            Some(0) => Ok(Undo {
                link: None,
                value: None,
            }),
            Some(1) => {
                let n =
                    u32::from_le_bytes(b.get(1..5).ok_or_else(bad)?.try_into().map_err(|_| bad())?)
                        as usize;
                let link = Record::decode(b.get(5..5 + n).ok_or_else(bad)?)?;
                let value = match b.get(5 + n) {
                    Some(0) => None,
                    Some(1) => Some(b.get(6 + n..).ok_or_else(bad)?.to_vec()),
                    _ => return Err(bad()),
                };
                Ok(Undo {
                    link: Some(link),
                    value,
                })
            }
            _ => Err(bad()),
        }
    }
}

pub(super) fn undo_key(version: u64, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + key.len());
    k.extend_from_slice(&version.to_be_bytes());
    k.extend_from_slice(key);
    k
}
