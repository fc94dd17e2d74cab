//! The state log: an append-only authenticated store on RocksDB (hash rules and proof
//! format in [`atonomi_primitives::statelog`]).
//!
//! On disk, in one `WriteBatch` per block:
//! - `state`: raw key → its latest record `serial ‖ next key ‖ value` (one read for a
//!   point lookup, key order for prefix scans and for finding a key's neighbours);
//! - `log`: serial → the entry's leaf hash ‖ key (what proofs of its twig neighbours and
//!   the compaction of old twigs need; values live only in `state`);
//! - `twigs`: twig → entries root ‖ active bitmap, rewritten every [`FLUSH_EVERY`]
//!   versions for the twigs that changed (a restart replays the blocks since);
//! - `log_history`: version → the serials the block deactivated and its first serial.
//!
//! In memory: every twig's entries root and bitmap (288 bytes per 2,048 entries), the
//! head twig's leaves and the tree over twig roots. A block's effect is first computed
//! into a [`Staged`] change (several may be prepared for one height, as consensus
//! executes proposals) and applied once its batch is written.
//!
//! *Compaction* keeps the log at most about twice the number of live keys: each block
//! re-appends a bounded number of the oldest active entries so that whole twigs at the
//! tail become inactive and can be pruned.

use crate::kv::{Cf, KvStore, WriteBatch};
use crate::{Result, StorageError};
use atonomi_primitives::statelog::{
    self as sl, LogProof, BITMAP_BYTES, TWIG_BITS, TWIG_SIZE, UPPER_DEPTH,
};
use atonomi_primitives::{codec, Hash};
use borsh::{BorshDeserialize, BorshSerialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{RwLock, RwLockReadGuard};

/// A block's effect on state: raw key → new value (`None` deletes).
pub type Diff = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// Twigs are written to `twigs` every this many versions.
pub const FLUSH_EVERY: u64 = 64;

const META_HEAD: &[u8] = b"log/head";
const META_ROOT: &[u8] = b"log/root/";
const MAX_RECORD: usize = 64 << 20;

/// Where the log stands after a version.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
struct Head {
    version: u64,
    root: Hash,
    /// Serial of the next entry appended.
    next_serial: u64,
    /// Oldest serial compaction has not passed yet.
    tail: u64,
    /// Active entries (live keys, the sentinel included).
    active: u64,
    /// The version whose twigs `twigs` holds, and the log's length then.
    flushed_version: u64,
    flushed_next_serial: u64,
}

/// What a block changed, kept per version (restart replay, historical proofs).
#[derive(Clone, Debug, Default, BorshSerialize, BorshDeserialize)]
struct History {
    first_serial: u64,
    deactivated: Vec<u64>,
}

#[derive(Clone, Debug)]
struct Twig {
    entries_root: Hash,
    bits: [u8; BITMAP_BYTES],
}

impl Twig {
    fn empty() -> Twig {
        Twig {
            entries_root: sl::null_twig_node(TWIG_BITS),
            bits: [0; BITMAP_BYTES],
        }
    }

    fn set(&mut self, pos: u64, on: bool) {
        let (byte, bit) = ((pos / 8) as usize, pos % 8);
        if let Some(b) = self.bits.get_mut(byte) {
            if on {
                *b |= 1 << bit;
            } else {
                *b &= !(1 << bit);
            }
        }
    }

    fn get(&self, pos: u64) -> bool {
        self.bits
            .get((pos / 8) as usize)
            .is_some_and(|b| b >> (pos % 8) & 1 == 1)
    }

    fn root(&self) -> Hash {
        sl::twig_hash(&self.entries_root, &self.bits)
    }

    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(32 + BITMAP_BYTES);
        v.extend_from_slice(&self.entries_root.0);
        v.extend_from_slice(&self.bits);
        v
    }

    fn decode(b: &[u8]) -> Result<Twig> {
        if b.len() != 32 + BITMAP_BYTES {
            return Err(corrupt("twigs", "a twig row of the wrong length"));
        }
        let mut t = Twig::empty();
        t.entries_root.0.copy_from_slice(&b[..32]);
        t.bits.copy_from_slice(&b[32..]);
        Ok(t)
    }
}

#[derive(Debug, Default)]
struct Mem {
    head: Option<Head>,
    /// One per twig holding at least one entry.
    twigs: Vec<Twig>,
    /// Leaves of the last twig when it is not full.
    leaves: Vec<Hash>,
    /// `upper[l][i]`: node `i` at level `l` above the twig roots (level 0: twig roots).
    upper: Vec<Vec<Hash>>,
    /// Twigs changed since the last flush.
    unflushed: BTreeSet<u64>,
}

/// A latest-value record in `state`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Record {
    serial: u64,
    next: Vec<u8>,
    value: Vec<u8>,
}

impl Record {
    fn encode(serial: u64, next: &[u8], value: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(12 + next.len() + value.len());
        v.extend_from_slice(&serial.to_be_bytes());
        v.extend_from_slice(&(next.len() as u32).to_le_bytes());
        v.extend_from_slice(next);
        v.extend_from_slice(value);
        v
    }

    fn decode(b: &[u8]) -> Result<Record> {
        let bad = || corrupt("state", "a record shorter than its header");
        let serial = u64::from_be_bytes(b.get(..8).ok_or_else(bad)?.try_into().map_err(|_| bad())?);
        let n = u32::from_le_bytes(
            b.get(8..12)
                .ok_or_else(bad)?
                .try_into()
                .map_err(|_| bad())?,
        ) as usize;
        let next = b.get(12..12 + n).ok_or_else(bad)?.to_vec();
        let value = b.get(12 + n..).ok_or_else(bad)?.to_vec();
        Ok(Record {
            serial,
            next,
            value,
        })
    }

    /// The value part of an encoded record, without copying the rest.
    fn value_of(b: &[u8]) -> Result<&[u8]> {
        let bad = || corrupt("state", "a record shorter than its header");
        let n = u32::from_le_bytes(
            b.get(8..12)
                .ok_or_else(bad)?
                .try_into()
                .map_err(|_| bad())?,
        ) as usize;
        b.get(12 + n..).ok_or_else(bad)
    }
}

fn corrupt(cf: &'static str, what: &str) -> StorageError {
    StorageError::Invalid(format!("corrupt state log ({cf}): {what}"))
}

fn serial_key(s: u64) -> [u8; 8] {
    s.to_be_bytes()
}

fn root_key(version: u64) -> Vec<u8> {
    let mut k = META_ROOT.to_vec();
    k.extend_from_slice(&version.to_be_bytes());
    k
}

/// The Merkle root of a twig's leaves, the missing ones null.
fn entries_root(leaves: &[Hash]) -> Hash {
    let mut level: Vec<Hash> = leaves.to_vec();
    for l in 0..TWIG_BITS {
        let null = sl::null_twig_node(l);
        level = level
            .chunks(2)
            .map(|p| sl::node_hash(&p[0], p.get(1).unwrap_or(&null)))
            .collect();
    }
    level
        .first()
        .copied()
        .unwrap_or(sl::null_twig_node(TWIG_BITS))
}

/// The sibling hashes of leaf `pos` in a twig with these leaves.
fn twig_siblings(leaves: &[Hash], pos: u64) -> [Hash; TWIG_BITS as usize] {
    let mut out = [Hash::ZERO; TWIG_BITS as usize];
    let mut level: Vec<Hash> = leaves.to_vec();
    let mut i = pos as usize;
    for (l, slot) in out.iter_mut().enumerate() {
        let null = sl::null_twig_node(l as u32);
        *slot = *level.get(i ^ 1).unwrap_or(&null);
        level = level
            .chunks(2)
            .map(|p| sl::node_hash(&p[0], p.get(1).unwrap_or(&null)))
            .collect();
        i >>= 1;
    }
    out
}

/// A twig as the block leaves it: copied from memory on first change.
fn twig_mut<'a>(staged: &'a mut BTreeMap<u64, Twig>, base: &[Twig], t: u64) -> &'a mut Twig {
    staged
        .entry(t)
        .or_insert_with(|| base.get(t as usize).cloned().unwrap_or_else(Twig::empty))
}

/// Nodes at `level` above the twig roots when there are `twigs` twigs.
fn level_len(twigs: u64, level: u32) -> u64 {
    if twigs == 0 {
        0
    } else {
        ((twigs - 1) >> level) + 1
    }
}

/// A prepared commit's change to memory.
#[derive(Debug)]
pub struct Staged {
    head: Head,
    base_version: Option<u64>,
    twigs: BTreeMap<u64, Twig>,
    leaves: Vec<Hash>,
    upper: Vec<BTreeMap<u64, Hash>>,
    flushed: bool,
}

impl Staged {
    pub fn root(&self) -> Hash {
        self.head.root
    }
}

/// Counters of what commits wrote (for benchmarks).
#[derive(Clone, Copy, Debug, Default)]
pub struct WriteStats {
    pub keys: u64,
    pub bytes: u64,
    pub appended: u64,
    pub moved: u64,
}

/// The authenticated state over any [`KvStore`].
#[derive(Debug)]
pub struct StateLog<S> {
    kv: S,
    mem: RwLock<Mem>,
    stats: RwLock<WriteStats>,
}

/// A key's neighbourhood while a block's links are worked out.
#[derive(Debug)]
struct Near {
    /// The key's record before the block, when it existed and was read.
    pre: Option<Record>,
    pre_exists: bool,
    post_exists: bool,
}

/// A neighbour found while reading a block's keys.
#[derive(Debug)]
enum Link {
    /// A live key (with its record) that comes before a key the block adds or removes.
    Before(Vec<u8>, Record),
    /// The key after a key the block removes.
    After(Vec<u8>),
}

/// A key whose entry the block appends (or deletes).
#[derive(Debug)]
struct Touch {
    next: Vec<u8>,
    value: Option<Vec<u8>>,
    old: Option<u64>,
}

impl<S: KvStore> StateLog<S> {
    /// Opens the store, rebuilding its memory from disk and checking it against the
    /// recorded root.
    pub fn open(kv: S) -> Result<StateLog<S>> {
        let log = StateLog {
            kv,
            mem: RwLock::new(Mem::default()),
            stats: RwLock::new(WriteStats::default()),
        };
        let Some(bytes) = log.kv.get(Cf::Meta, META_HEAD)? else {
            return Ok(log);
        };
        let head: Head = decode(&bytes)?;
        let mem = log.rebuild(head)?;
        *log.mem.write().unwrap_or_else(|e| e.into_inner()) = mem;
        Ok(log)
    }

    fn rebuild(&self, head: Head) -> Result<Mem> {
        let mut mem = Mem {
            head: Some(head),
            ..Mem::default()
        };
        let twig_count = level_len(head.next_serial, TWIG_BITS);
        for (k, v) in self.kv.scan(Cf::Twigs, b"", b"", usize::MAX)? {
            let idx = u64::from_be_bytes(k.try_into().map_err(|_| corrupt("twigs", "a key"))?);
            if idx != mem.twigs.len() as u64 || idx >= twig_count {
                return Err(corrupt("twigs", "twigs out of order"));
            }
            mem.twigs.push(Twig::decode(&v)?);
        }
        mem.twigs.resize(twig_count as usize, Twig::empty());
        // Entries appended since the flush: their twigs' leaves and bits from the log.
        let from_twig = head.flushed_next_serial >> TWIG_BITS;
        for t in from_twig..twig_count {
            let leaves = self.twig_leaves(t)?;
            let first = t << TWIG_BITS;
            let twig = mem
                .twigs
                .get_mut(t as usize)
                .ok_or_else(|| corrupt("twigs", "missing twig"))?;
            for s in first.max(head.flushed_next_serial)..(first + leaves.len() as u64) {
                twig.set(s - first, true);
            }
            twig.entries_root = entries_root(&leaves);
            if leaves.len() < TWIG_SIZE as usize {
                mem.leaves = leaves;
            }
        }
        for v in head.flushed_version + 1..=head.version {
            let h: History = match self.kv.get(Cf::LogHistory, &v.to_be_bytes())? {
                Some(b) => decode(&b)?,
                None => {
                    return Err(corrupt(
                        "log_history",
                        "a version since the flush is missing",
                    ))
                }
            };
            for s in h.deactivated {
                if let Some(t) = mem.twigs.get_mut((s >> TWIG_BITS) as usize) {
                    t.set(s & (TWIG_SIZE - 1), false);
                    mem.unflushed.insert(s >> TWIG_BITS);
                }
            }
        }
        // Everything since the flush is unflushed (a superset is harmless).
        mem.unflushed.extend(from_twig..twig_count);
        let mut level: Vec<Hash> = mem.twigs.iter().map(Twig::root).collect();
        for l in 0..=UPPER_DEPTH {
            let next = level
                .chunks(2)
                .map(|p| sl::node_hash(&p[0], p.get(1).unwrap_or(&sl::null_upper_node(l))))
                .collect();
            mem.upper.push(level);
            level = next;
        }
        let got = mem
            .upper
            .last()
            .and_then(|l| l.first())
            .copied()
            .unwrap_or(sl::empty_log_root());
        if got != head.root {
            return Err(corrupt(
                "twigs",
                &format!(
                    "rebuilt root {got} differs from the recorded root {} of version {}",
                    head.root, head.version
                ),
            ));
        }
        Ok(mem)
    }

    fn twig_leaves(&self, t: u64) -> Result<Vec<Hash>> {
        let start = serial_key(t << TWIG_BITS);
        let rows = self.kv.scan(Cf::Log, b"", &start, TWIG_SIZE as usize)?;
        let mut out = Vec::with_capacity(rows.len());
        for (i, (k, v)) in rows.into_iter().enumerate() {
            let s = u64::from_be_bytes(k.try_into().map_err(|_| corrupt("log", "a key"))?);
            if s >> TWIG_BITS != t {
                break;
            }
            if s != (t << TWIG_BITS) + i as u64 || v.len() < 32 {
                return Err(corrupt("log", "a gap in the log"));
            }
            let mut h = Hash::ZERO;
            h.0.copy_from_slice(&v[..32]);
            out.push(h);
        }
        Ok(out)
    }

    fn mem(&self) -> RwLockReadGuard<'_, Mem> {
        self.mem.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn kv(&self) -> &S {
        &self.kv
    }

    pub fn stats(&self) -> WriteStats {
        *self.stats.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The latest version, `None` before genesis.
    pub fn version(&self) -> Option<u64> {
        self.mem().head.map(|h| h.version)
    }

    /// The latest root.
    pub fn root(&self) -> Hash {
        self.mem()
            .head
            .map(|h| h.root)
            .unwrap_or(sl::empty_log_root())
    }

    /// The root at `version`.
    pub fn root_at(&self, version: u64) -> Result<Hash> {
        match self.kv.get(Cf::Meta, &root_key(version))? {
            Some(b) => decode(&b),
            None => Err(StorageError::MissingVersion {
                requested: version,
                latest: self.version(),
            }),
        }
    }

    /// Bytes of memory the log's summaries hold.
    pub fn memory_bytes(&self) -> usize {
        let m = self.mem();
        m.twigs.len() * std::mem::size_of::<Twig>()
            + m.leaves.len() * 32
            + m.upper.iter().map(|l| l.len() * 32).sum::<usize>()
    }

    /// The latest value of a key.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if key.is_empty() {
            return Ok(None);
        }
        match self.kv.get(Cf::State, key)? {
            None => Ok(None),
            Some(b) => Ok(Some(Record::value_of(&b)?.to_vec())),
        }
    }

    /// Up to `limit` latest entries whose keys start with `prefix`, from `start`.
    pub fn scan(
        &self,
        prefix: &[u8],
        start: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        for (k, v) in self
            .kv
            .scan(Cf::State, prefix, start, limit.saturating_add(1))?
        {
            if k.is_empty() {
                continue;
            }
            if out.len() == limit {
                break;
            }
            out.push((k, Record::value_of(&v)?.to_vec()));
        }
        Ok(out)
    }

    /// The latest value of `key` with a proof of it, or of its absence, against the
    /// latest root.
    pub fn prove(&self, key: &[u8]) -> Result<(Option<Vec<u8>>, LogProof)> {
        if key.is_empty() {
            return Err(StorageError::Invalid(
                "the empty key is the log's sentinel".into(),
            ));
        }
        let mem = self.mem();
        let found = self.kv.floor_batch(Cf::State, &[key], false)?;
        let (k, rec) = match found.into_iter().next().flatten() {
            Some((k, v)) => (k, Record::decode(&v)?),
            None => return Err(StorageError::Invalid("the state log is empty".into())),
        };
        let value = (k == key).then(|| rec.value.clone());
        let t = rec.serial >> TWIG_BITS;
        let pos = rec.serial & (TWIG_SIZE - 1);
        let twig = mem
            .twigs
            .get(t as usize)
            .ok_or_else(|| corrupt("state", "a record past the log's end"))?;
        let leaves = if t + 1 == mem.twigs.len() as u64 && !mem.leaves.is_empty() {
            mem.leaves.clone()
        } else {
            self.twig_leaves(t)?
        };
        let mut upper = Vec::new();
        let mut null_upper = 0u32;
        for l in 0..UPPER_DEPTH {
            match mem
                .upper
                .get(l as usize)
                .and_then(|lv| lv.get(((t >> l) ^ 1) as usize))
            {
                Some(h) => upper.push(*h),
                None => null_upper |= 1 << l,
            }
        }
        let proof = LogProof {
            serial: rec.serial,
            key: k,
            next: rec.next,
            value_hash: sl::value_hash(&rec.value),
            twig: twig_siblings(&leaves, pos),
            bits: twig.bits,
            null_upper,
            upper,
        };
        Ok((value, proof))
    }

    /// Works out the block's root and every write it needs, as `version` (0 for
    /// genesis, then latest + 1). Nothing changes until the batch is written and the
    /// staged change [`applied`](Self::apply).
    pub fn prepare(&self, diff: &Diff, version: u64) -> Result<(Staged, WriteBatch)> {
        let mem = self.mem();
        let expected = mem.head.map_or(0, |h| h.version + 1);
        if version != expected {
            return Err(StorageError::Invalid(format!(
                "commit of state version {version}, expected {expected}"
            )));
        }
        if diff.contains_key(&[][..]) {
            return Err(StorageError::Invalid(
                "the empty key is the log's sentinel".into(),
            ));
        }
        let fresh = mem.head.is_none();
        let head = mem.head.unwrap_or_default();

        // 1. Each key's record, or the record of the key before it.
        let keys: Vec<&[u8]> = diff.keys().map(Vec::as_slice).collect();
        let floors = self.kv.floor_batch(Cf::State, &keys, false)?;
        let sentinel = || Record {
            serial: u64::MAX,
            next: Vec::new(),
            value: Vec::new(),
        };
        let mut near: BTreeMap<Vec<u8>, Near> = BTreeMap::new();
        let mut touched: BTreeMap<Vec<u8>, Touch> = BTreeMap::new();
        let mut deletes: Vec<&[u8]> = Vec::new();
        let mut links: Vec<Link> = Vec::new();
        for ((key, value), floor) in diff.iter().zip(floors) {
            let floor = match floor {
                Some((k, v)) => Some((k, Record::decode(&v)?)),
                None if fresh => None,
                None => return Err(corrupt("state", "the sentinel is missing")),
            };
            let (exists, pre) = match floor {
                Some((k, rec)) if &k == key => (true, Some(rec)),
                Some((k, rec)) => {
                    links.push(Link::Before(k, rec));
                    (false, None)
                }
                None => {
                    links.push(Link::Before(Vec::new(), sentinel()));
                    (false, None)
                }
            };
            match (exists, value, pre) {
                (true, Some(v), Some(rec)) => {
                    touched.insert(
                        key.clone(),
                        Touch {
                            next: rec.next.clone(),
                            value: Some(v.clone()),
                            old: Some(rec.serial),
                        },
                    );
                }
                (true, None, Some(rec)) => {
                    deletes.push(key);
                    links.push(Link::After(rec.next.clone()));
                    touched.insert(
                        key.clone(),
                        Touch {
                            next: Vec::new(),
                            value: None,
                            old: Some(rec.serial),
                        },
                    );
                    near.insert(
                        key.clone(),
                        Near {
                            pre: Some(rec),
                            pre_exists: true,
                            post_exists: false,
                        },
                    );
                }
                (false, Some(v), _) => {
                    touched.insert(
                        key.clone(),
                        Touch {
                            next: Vec::new(),
                            value: Some(v.clone()),
                            old: None,
                        },
                    );
                    near.insert(
                        key.clone(),
                        Near {
                            pre: None,
                            pre_exists: false,
                            post_exists: true,
                        },
                    );
                }
                _ => {}
            }
        }
        if fresh {
            links.push(Link::Before(Vec::new(), sentinel()));
        }
        // The key before each deleted key.
        for floor in self.kv.floor_batch(Cf::State, &deletes, true)? {
            match floor {
                Some((k, v)) => links.push(Link::Before(k, Record::decode(&v)?)),
                None => return Err(corrupt("state", "the sentinel is missing")),
            }
        }
        // 2. The neighbours: predecessors (with records) and the keys after them.
        let deleted: BTreeSet<&[u8]> = deletes.iter().copied().collect();
        let mut successors = Vec::new();
        for link in links {
            let (k, rec) = match link {
                // The key after a deleted key: only its existence matters.
                Link::After(k) => {
                    if !k.is_empty() {
                        successors.push(k);
                    }
                    continue;
                }
                Link::Before(k, rec) => (k, rec),
            };
            if !rec.next.is_empty() {
                successors.push(rec.next.clone());
            }
            near.entry(k.clone()).or_insert(Near {
                post_exists: !deleted.contains(k.as_slice()),
                pre: Some(rec),
                pre_exists: true,
            });
        }
        for k in successors {
            let post = !deleted.contains(k.as_slice());
            near.entry(k).or_insert(Near {
                pre: None,
                pre_exists: true,
                post_exists: post,
            });
        }
        // 3. New links: each live key's next is the next live key among its neighbours.
        let order: Vec<(&Vec<u8>, &Near)> = near.iter().collect();
        let mut next_live: Vec<Option<&Vec<u8>>> = vec![None; order.len()];
        let mut after: Option<&Vec<u8>> = None;
        for i in (0..order.len()).rev() {
            next_live[i] = after;
            if order[i].1.post_exists {
                after = Some(order[i].0);
            }
        }
        for (i, (key, n)) in order.iter().enumerate() {
            if !n.post_exists {
                continue;
            }
            let new_next = next_live[i].cloned().unwrap_or_default();
            if !n.pre_exists {
                if let Some(t) = touched.get_mut(*key) {
                    t.next = new_next;
                }
                continue;
            }
            let Some(pre) = &n.pre else { continue };
            if !near.contains_key(&pre.next) && !pre.next.is_empty() {
                continue;
            }
            if new_next == pre.next && pre.serial != u64::MAX {
                continue;
            }
            match touched.get_mut(*key) {
                Some(t) => t.next = new_next,
                None => {
                    touched.insert(
                        (*key).clone(),
                        Touch {
                            next: new_next,
                            value: Some(pre.value.clone()),
                            old: (pre.serial != u64::MAX).then_some(pre.serial),
                        },
                    );
                }
            }
        }

        // 4. Compaction: re-append the oldest active entries while the log is more than
        //    twice the live keys, a bounded number per block.
        let mut tail = head.tail;
        let mut moved = 0u64;
        let live_after = head.active + touched.values().filter(|t| t.old.is_none()).count() as u64;
        let budget = touched.len() as u64 / 2 + 16;
        let bit = |s: u64| {
            mem.twigs
                .get((s >> TWIG_BITS) as usize)
                .is_some_and(|t| t.get(s & (TWIG_SIZE - 1)))
        };
        while tail < head.next_serial
            && moved < budget
            && head.next_serial - tail > 2 * live_after + TWIG_SIZE
        {
            if bit(tail) {
                let slot = self
                    .kv
                    .get(Cf::Log, &serial_key(tail))?
                    .ok_or_else(|| corrupt("log", "an active slot is missing"))?;
                let key = slot
                    .get(32..)
                    .ok_or_else(|| corrupt("log", "a short slot"))?
                    .to_vec();
                if let std::collections::btree_map::Entry::Vacant(slot) = touched.entry(key) {
                    let rec = self
                        .kv
                        .get(Cf::State, slot.key())?
                        .ok_or_else(|| corrupt("state", "an active entry's key is missing"))?;
                    let rec = Record::decode(&rec)?;
                    if rec.serial != tail {
                        return Err(corrupt("state", "an active slot's key points elsewhere"));
                    }
                    slot.insert(Touch {
                        next: rec.next,
                        value: Some(rec.value),
                        old: Some(tail),
                    });
                    moved += 1;
                }
            }
            tail += 1;
        }

        // 5. Append, in key order.
        let mut batch = WriteBatch::new();
        let mut staged = Staged {
            head,
            base_version: mem.head.map(|h| h.version),
            twigs: BTreeMap::new(),
            leaves: mem.leaves.clone(),
            upper: vec![BTreeMap::new(); UPPER_DEPTH as usize + 1],
            flushed: false,
        };
        let mut serial = head.next_serial;
        let mut active = head.active;
        let mut history = History {
            first_serial: serial,
            deactivated: Vec::new(),
        };
        for (key, t) in &touched {
            if let Some(old) = t.old {
                twig_mut(&mut staged.twigs, &mem.twigs, old >> TWIG_BITS)
                    .set(old & (TWIG_SIZE - 1), false);
                history.deactivated.push(old);
                active = active.saturating_sub(1);
            }
            match &t.value {
                None => batch.delete(Cf::State, key.clone()),
                Some(v) => {
                    let leaf = sl::leaf_hash(key, &t.next, &sl::value_hash(v));
                    batch.put(Cf::State, key.clone(), Record::encode(serial, &t.next, v));
                    let mut slot = Vec::with_capacity(32 + key.len());
                    slot.extend_from_slice(&leaf.0);
                    slot.extend_from_slice(key);
                    batch.put(Cf::Log, serial_key(serial).to_vec(), slot);
                    let tw = serial >> TWIG_BITS;
                    twig_mut(&mut staged.twigs, &mem.twigs, tw).set(serial & (TWIG_SIZE - 1), true);
                    staged.leaves.push(leaf);
                    if staged.leaves.len() == TWIG_SIZE as usize {
                        twig_mut(&mut staged.twigs, &mem.twigs, tw).entries_root =
                            entries_root(&staged.leaves);
                        staged.leaves.clear();
                    }
                    serial += 1;
                    active += 1;
                }
            }
        }
        if serial > sl::MAX_SERIAL {
            return Err(StorageError::Invalid("the state log is full".into()));
        }
        if !staged.leaves.is_empty() && serial > head.next_serial {
            let tw = serial >> TWIG_BITS;
            let root = entries_root(&staged.leaves);
            twig_mut(&mut staged.twigs, &mem.twigs, tw).entries_root = root;
        }

        // 6. The tree over twig roots.
        let twig_count = level_len(serial, TWIG_BITS);
        let mut dirty: BTreeSet<u64> = staged.twigs.keys().copied().collect();
        for (&t, twig) in &staged.twigs {
            staged.upper[0].insert(t, twig.root());
        }
        for l in 0..UPPER_DEPTH {
            let len = level_len(twig_count, l);
            let parents: BTreeSet<u64> = dirty.iter().map(|i| i >> 1).collect();
            for &p in &parents {
                let get = |i: u64| -> Hash {
                    if i >= len {
                        return sl::null_upper_node(l);
                    }
                    staged.upper[l as usize]
                        .get(&i)
                        .or_else(|| mem.upper.get(l as usize).and_then(|v| v.get(i as usize)))
                        .copied()
                        .unwrap_or(sl::null_upper_node(l))
                };
                let h = sl::node_hash(&get(2 * p), &get(2 * p + 1));
                staged.upper[l as usize + 1].insert(p, h);
            }
            dirty = parents;
        }
        let root = staged.upper[UPPER_DEPTH as usize]
            .get(&0)
            .copied()
            .or_else(|| mem.upper.last().and_then(|l| l.first()).copied())
            .unwrap_or(sl::empty_log_root());

        // 7. Metadata, history and (every FLUSH_EVERY versions) the twigs.
        staged.head = Head {
            version,
            root,
            next_serial: serial,
            tail,
            active,
            ..head
        };
        if version.is_multiple_of(FLUSH_EVERY) {
            let mut all: BTreeSet<u64> = mem.unflushed.clone();
            all.extend(staged.twigs.keys());
            for t in all {
                let tw = staged
                    .twigs
                    .get(&t)
                    .or_else(|| mem.twigs.get(t as usize))
                    .ok_or_else(|| corrupt("twigs", "a dirty twig is missing"))?;
                batch.put(Cf::Twigs, t.to_be_bytes().to_vec(), tw.encode());
            }
            staged.head.flushed_version = version;
            staged.head.flushed_next_serial = serial;
            staged.flushed = true;
        }
        batch.put(
            Cf::LogHistory,
            version.to_be_bytes().to_vec(),
            codec::encode(&history),
        );
        batch.put(Cf::Meta, META_HEAD, codec::encode(&staged.head));
        batch.put(Cf::Meta, root_key(version), codec::encode(&root));
        {
            let mut st = self.stats.write().unwrap_or_else(|e| e.into_inner());
            st.keys += batch.len() as u64;
            st.bytes += batch
                .ops
                .iter()
                .map(|(_, k, v)| (k.len() + v.as_ref().map_or(0, Vec::len)) as u64)
                .sum::<u64>();
            st.appended += serial - head.next_serial;
            st.moved += moved;
        }
        Ok((staged, batch))
    }

    /// Applies a prepared change after its batch was written.
    pub fn apply(&self, staged: Staged) -> Result<()> {
        let mut mem = self.mem.write().unwrap_or_else(|e| e.into_inner());
        if mem.head.map(|h| h.version) != staged.base_version {
            return Err(StorageError::Invalid(format!(
                "staged commit of version {} does not follow version {:?}",
                staged.head.version,
                mem.head.map(|h| h.version)
            )));
        }
        for (t, twig) in staged.twigs {
            mem.unflushed.insert(t);
            let i = t as usize;
            if i < mem.twigs.len() {
                mem.twigs[i] = twig;
            } else if i == mem.twigs.len() {
                mem.twigs.push(twig);
            } else {
                return Err(corrupt("twigs", "a twig beyond the end"));
            }
        }
        if staged.flushed {
            mem.unflushed.clear();
        }
        mem.leaves = staged.leaves;
        if mem.upper.len() < staged.upper.len() {
            mem.upper.resize(staged.upper.len(), Vec::new());
        }
        for (l, nodes) in staged.upper.into_iter().enumerate() {
            let level = &mut mem.upper[l];
            for (i, h) in nodes {
                let i = i as usize;
                if i < level.len() {
                    level[i] = h;
                } else if i == level.len() {
                    level.push(h);
                } else {
                    return Err(corrupt("twigs", "an upper node beyond the end"));
                }
            }
        }
        mem.head = Some(staged.head);
        Ok(())
    }

    /// Prepares, writes and applies a commit (tests, benchmarks, genesis).
    pub fn commit(&self, diff: &Diff, version: u64) -> Result<Hash> {
        let (staged, batch) = self.prepare(diff, version)?;
        self.kv.write(batch)?;
        let root = staged.root();
        self.apply(staged)?;
        Ok(root)
    }
}

fn decode<T: BorshDeserialize>(bytes: &[u8]) -> Result<T> {
    codec::decode(bytes, MAX_RECORD).map_err(|source| StorageError::Corrupt { cf: "meta", source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemoryStore, RocksConfig, RocksStore};
    use atonomi_primitives::statelog::{verify_log, LogProofError};
    use proptest::prelude::*;

    fn key(i: u16) -> Vec<u8> {
        // Spread keys over two tags so links cross tag boundaries.
        vec![0x10 + (i % 2) as u8, (i >> 8) as u8, i as u8]
    }

    /// Every key present proves its value, every absent one its absence, and nothing
    /// else verifies.
    fn check_all(log: &StateLog<impl KvStore>, model: &BTreeMap<Vec<u8>, Vec<u8>>) {
        let root = log.root();
        for i in 0..64u16 {
            let k = key(i);
            let (v, p) = log.prove(&k).unwrap();
            assert_eq!(v.as_ref(), model.get(&k), "value of {k:?}");
            verify_log(root, &k, v.as_deref(), &p).unwrap();
            let wrong = match &v {
                Some(_) => None,
                None => Some(&b"x"[..]),
            };
            assert!(verify_log(root, &k, wrong, &p).is_err());
            assert_eq!(log.get(&k).unwrap().as_ref(), model.get(&k));
        }
        let scanned: Vec<_> = log.scan(&[0x10], &[], 1000).unwrap();
        let expected: Vec<_> = model
            .iter()
            .filter(|(k, _)| k[0] == 0x10)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(scanned, expected);
    }

    fn op() -> impl Strategy<Value = (u16, Option<u8>)> {
        (0..64u16, prop::option::weighted(0.8, any::<u8>()))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Inserts, updates and deletes in any order: the memory and RocksDB backends
        /// agree on every root, every proof verifies, and a reopened store rebuilds the
        /// same root from disk.
        #[test]
        fn any_history_proves_and_reopens(blocks in prop::collection::vec(prop::collection::vec(op(), 0..24), 1..12)) {
            let dir = tempfile::tempdir().unwrap();
            let cfg = RocksConfig { sync_writes: false, ..RocksConfig::default() };
            let mem = StateLog::open(MemoryStore::new()).unwrap();
            let mut rocks = StateLog::open(RocksStore::open(dir.path(), &cfg).unwrap()).unwrap();
            let mut model = BTreeMap::new();
            mem.commit(&Diff::new(), 0).unwrap();
            rocks.commit(&Diff::new(), 0).unwrap();
            for (h, block) in blocks.iter().enumerate() {
                let mut diff = Diff::new();
                for (i, v) in block {
                    diff.insert(key(*i), v.map(|b| vec![b; 3]));
                }
                for (k, v) in &diff {
                    match v {
                        Some(v) => { model.insert(k.clone(), v.clone()); }
                        None => { model.remove(k); }
                    }
                }
                let version = h as u64 + 1;
                let a = mem.commit(&diff, version).unwrap();
                let b = rocks.commit(&diff, version).unwrap();
                prop_assert_eq!(a, b);
                prop_assert_eq!(rocks.root_at(version).unwrap(), b);
                check_all(&mem, &model);
            }
            check_all(&rocks, &model);
            let root = rocks.root();
            drop(rocks);
            rocks = StateLog::open(RocksStore::open(dir.path(), &cfg).unwrap()).unwrap();
            prop_assert_eq!(rocks.root(), root);
            check_all(&rocks, &model);
        }
    }

    #[test]
    fn genesis_writes_the_sentinel_and_empty_key_is_refused() {
        let log = StateLog::open(MemoryStore::new()).unwrap();
        assert_eq!(log.root(), sl::empty_log_root());
        let r0 = log.commit(&Diff::new(), 0).unwrap();
        assert_ne!(r0, sl::empty_log_root());
        let (v, p) = log.prove(b"a").unwrap();
        assert_eq!(v, None);
        assert!(p.key.is_empty(), "absence is proven by the sentinel");
        verify_log(r0, b"a", None, &p).unwrap();
        let mut d = Diff::new();
        d.insert(vec![], Some(vec![1]));
        assert!(log.commit(&d, 1).is_err());
        assert!(log.commit(&Diff::new(), 5).is_err());
        assert!(matches!(
            verify_log(r0, b"", None, &p),
            Err(LogProofError::Malformed(_))
        ));
    }

    #[test]
    fn a_prepared_change_that_is_not_applied_changes_nothing() {
        let log = StateLog::open(MemoryStore::new()).unwrap();
        log.commit(&Diff::new(), 0).unwrap();
        let root = log.root();
        let mut d = Diff::new();
        d.insert(b"k".to_vec(), Some(b"v".to_vec()));
        let (first, _) = log.prepare(&d, 1).unwrap();
        // Another proposal for the same height, the one that is committed.
        let mut d2 = Diff::new();
        d2.insert(b"j".to_vec(), Some(b"w".to_vec()));
        assert_eq!(log.root(), root);
        let r = log.commit(&d2, 1).unwrap();
        assert!(log.apply(first).is_err(), "a stale change is refused");
        assert_eq!(log.root(), r);
        assert_eq!(log.get(b"k").unwrap(), None);
    }

    #[test]
    fn compaction_keeps_the_log_near_twice_the_live_keys() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = RocksConfig {
            sync_writes: false,
            ..RocksConfig::default()
        };
        let log = StateLog::open(RocksStore::open(dir.path(), &cfg).unwrap()).unwrap();
        log.commit(&Diff::new(), 0).unwrap();
        // 3,000 keys, then rewrite a few hundred of them for many blocks.
        let mut d = Diff::new();
        for i in 0..3000u32 {
            d.insert(i.to_be_bytes().to_vec(), Some(vec![1]));
        }
        log.commit(&d, 1).unwrap();
        for v in 2..200u64 {
            let mut d = Diff::new();
            for i in 0..300u32 {
                let k = (i * 7 + v as u32 * 13) % 3000;
                d.insert(k.to_be_bytes().to_vec(), Some(v.to_le_bytes().to_vec()));
            }
            log.commit(&d, v).unwrap();
        }
        let head = log.mem().head.unwrap();
        assert_eq!(head.active, 3001);
        let len = head.next_serial - head.tail;
        assert!(
            len <= 2 * head.active + 2 * TWIG_SIZE,
            "log of {len} entries for {} live keys",
            head.active
        );
        assert!(log.stats().moved > 0);
        for i in (0..3000u32).step_by(37) {
            let k = i.to_be_bytes();
            let (v, p) = log.prove(&k).unwrap();
            verify_log(log.root(), &k, v.as_deref(), &p).unwrap();
        }
        drop(log);
        let log = StateLog::open(RocksStore::open(dir.path(), &cfg).unwrap()).unwrap();
        assert_eq!(log.mem().head.unwrap(), head);
    }
}
