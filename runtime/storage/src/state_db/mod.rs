//! The state store: the *state log*, an append-only authenticated store on RocksDB
//! (hash rules and proof format in [`atonomi_primitives::statelog`]; the design and the
//! measured comparison with the Jellyfish tree it replaced in ARCHITECTURE.md,
//! *Authenticated state*).
//!
//! On disk, in one `WriteBatch` per block:
//! - `state`: raw key → its latest value (one read for a point lookup, key order for
//!   prefix scans);
//! - `links`: raw key → serial of its active entry ‖ value hash ‖ next key (key order
//!   finds a new key's neighbours);
//! - `log`: the entries a block appended, one row per twig it wrote into, keyed by the
//!   row's first serial: their leaf hashes, then their keys (proofs of twig neighbours
//!   and compaction of old twigs need them);
//! - `twigs`: twig → entries root ‖ active bitmap, rewritten every [`FLUSH_EVERY`]
//!   versions for the twigs that changed (a restart replays the versions since);
//! - `log_history`: version → first serial, serials deactivated, keys deleted, tail;
//! - `undo`: version ‖ key → what the key was before that version ([`history`]).
//!
//! In memory: every twig's entries root and bitmap (288 bytes per 2,048 entries), the
//! head twig's leaves and the tree over twig roots. A block's effect is first computed
//! into a [`Staged`] change (several may be prepared for one height, as consensus
//! executes proposals) and applied once its batch is written.
//!
//! *Compaction* keeps the log at most about twice the number of live keys: each block
//! re-appends a bounded number of the oldest active entries so that whole twigs at the
//! tail become inactive and can be pruned.

use crate::error::{Result, StorageError};
use crate::kv::{Cf, KvStore, WriteBatch};
use atonomi_primitives::statelog::{
    self as sl, LogProof, BITMAP_BYTES, TWIG_BITS, TWIG_SIZE, UPPER_DEPTH,
};
use atonomi_primitives::{codec, Hash};
use borsh::{BorshDeserialize, BorshSerialize};
use std::collections::{BTreeMap, BTreeSet};
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, RwLock, RwLockReadGuard};

mod commit;
mod history;
mod records;
pub(crate) mod snapshot;

use records::{corrupt, undo_key, Record, Undo, View};

/// A block's effect on state: raw key → new value (`None` deletes).
pub type StateDiff = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

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
    /// Versions below this are pruned.
    oldest: u64,
    /// `log` rows below this serial are pruned.
    log_pruned_below: u64,
}

/// What a block changed, kept per version (restart replay, historical proofs).
#[derive(Clone, Debug, Default, BorshSerialize, BorshDeserialize)]
struct History {
    first_serial: u64,
    deactivated: Vec<u64>,
    /// Keys the block removed (historical absence proofs look for them).
    deleted: Vec<Vec<u8>>,
    /// The compaction tail after the block.
    tail: u64,
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

/// Consecutive log slots written by one block within one twig, one `log` row keyed by
/// the first serial.
#[derive(Debug)]
struct Run {
    first: u64,
    slots: Vec<(Hash, Vec<u8>)>,
}

impl Run {
    /// Encodes slots: u32le count ‖ the leaf hashes ‖ for each, u32le key length ‖ key.
    fn encode(leaves: &[Hash], keys: &[&[u8]]) -> Vec<u8> {
        let key_bytes: usize = keys.iter().map(|k| 4 + k.len()).sum();
        let mut row = Vec::with_capacity(4 + 32 * leaves.len() + key_bytes);
        row.extend_from_slice(&(leaves.len() as u32).to_le_bytes());
        for l in leaves {
            row.extend_from_slice(&l.0);
        }
        for k in keys {
            row.extend_from_slice(&(k.len() as u32).to_le_bytes());
            row.extend_from_slice(k);
        }
        row
    }

    /// The leaf hashes of a row, without reading its keys.
    fn leaves(b: &[u8]) -> Result<impl Iterator<Item = Hash> + '_> {
        let bad = || corrupt("log", "a truncated row");
        let n =
            u32::from_le_bytes(b.get(..4).ok_or_else(bad)?.try_into().map_err(|_| bad())?) as usize;
        let hashes = b.get(4..4 + 32 * n).ok_or_else(bad)?;
        Ok(hashes.chunks_exact(32).map(|c| {
            let mut h = Hash::ZERO;
            h.0.copy_from_slice(c);
            h
        }))
    }

    fn decode(first: u64, b: &[u8]) -> Result<Run> {
        let bad = || corrupt("log", "a truncated row");
        let leaves: Vec<Hash> = Run::leaves(b)?.collect();
        let mut rest = b.get(4 + 32 * leaves.len()..).ok_or_else(bad)?;
        let mut slots = Vec::with_capacity(leaves.len());
        for leaf in leaves {
            let n = u32::from_le_bytes(
                rest.get(..4)
                    .ok_or_else(bad)?
                    .try_into()
                    .map_err(|_| bad())?,
            ) as usize;
            let key = rest.get(4..4 + n).ok_or_else(bad)?.to_vec();
            slots.push((leaf, key));
            rest = rest.get(4 + n..).ok_or_else(bad)?;
        }
        if !rest.is_empty() {
            return Err(corrupt("log", "trailing bytes in a row"));
        }
        Ok(Run { first, slots })
    }

    fn covers(&self, s: u64) -> bool {
        s >= self.first && s < self.first + self.slots.len() as u64
    }
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

/// The upper siblings of twig `t` in a tree over twig roots: a flag per level whose
/// sibling is the empty subtree, and the others, lowest level first.
fn upper_siblings(upper: &[Vec<Hash>], t: u64) -> (u32, Vec<Hash>) {
    let mut null = 0u32;
    let mut given = Vec::new();
    for l in 0..UPPER_DEPTH {
        match upper
            .get(l as usize)
            .and_then(|lv| lv.get(((t >> l) ^ 1) as usize))
        {
            Some(h) => given.push(*h),
            None => null |= 1 << l,
        }
    }
    (null, given)
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
    /// Serials the block deactivates (cached historical views keep their old bits).
    deactivated: Vec<u64>,
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

/// How much history the log keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// Versions kept provable: the latest and the `retention - 1` before it. At least
    /// [`MIN_RETENTION`].
    pub retention: u64,
}

/// The default retention: 2,048 blocks, more than the bridge's signing window for
/// retired validators (1,000 blocks) and twenty default checkpoint intervals.
pub const DEFAULT_RETENTION: u64 = 2048;
/// The least retention: a restart replays up to [`FLUSH_EVERY`] versions of history.
pub const MIN_RETENTION: u64 = 2 * FLUSH_EVERY;

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            retention: DEFAULT_RETENTION,
        }
    }
}

/// The authenticated state over any [`KvStore`].
#[derive(Debug)]
pub struct StateDb<S> {
    kv: S,
    mem: RwLock<Mem>,
    stats: RwLock<WriteStats>,
    retention: u64,
    /// Recently built views of past versions, newest first.
    views: Mutex<VecDeque<View>>,
}

impl<S: KvStore> StateDb<S> {
    /// Opens the store, rebuilding its memory from disk and checking it against the
    /// recorded root.
    pub fn open(kv: S) -> Result<StateDb<S>> {
        StateDb::open_with(kv, LogConfig::default())
    }

    /// Opens the store with a retention of its own.
    pub fn open_with(kv: S, config: LogConfig) -> Result<StateDb<S>> {
        if config.retention < MIN_RETENTION {
            return Err(StorageError::Invalid(format!(
                "a state retention of {} versions is below the least, {MIN_RETENTION}",
                config.retention
            )));
        }
        let log = StateDb {
            kv,
            mem: RwLock::new(Mem::default()),
            stats: RwLock::new(WriteStats::default()),
            retention: config.retention,
            views: Mutex::new(VecDeque::new()),
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
            let leaves = self.twig_leaves(t, head.next_serial)?;
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

    /// The leaf hashes of twig `t`'s entries (the log holds `len` entries).
    fn twig_leaves(&self, t: u64, len: u64) -> Result<Vec<Hash>> {
        self.twig_rows(t, len, |_, row| Ok(Run::leaves(row)?.collect()))
    }

    /// The leaf hashes and keys of twig `t`'s entries (the log holds `len`).
    fn twig_slots(&self, t: u64, len: u64) -> Result<Vec<(Hash, Vec<u8>)>> {
        self.twig_rows(t, len, |first, row| Ok(Run::decode(first, row)?.slots))
    }

    /// Twig `t`'s entries (the log holds `len`), each `log` row read by `parse` (its
    /// first serial and bytes). Rows never cross a twig's boundary, so the twig's rows
    /// are one range.
    fn twig_rows<T>(
        &self,
        t: u64,
        len: u64,
        parse: impl Fn(u64, &[u8]) -> Result<Vec<T>>,
    ) -> Result<Vec<T>> {
        let from = t << TWIG_BITS;
        let want = ((from + TWIG_SIZE).min(len)).saturating_sub(from) as usize;
        let mut out = Vec::with_capacity(want);
        for (k, v) in self
            .kv
            .range(Cf::Log, &serial_key(from), &serial_key(from + TWIG_SIZE))?
        {
            let first = u64::from_be_bytes(k.try_into().map_err(|_| corrupt("log", "a row key"))?);
            if first != from + out.len() as u64 {
                return Err(corrupt("log", "a gap in the log"));
            }
            out.extend(parse(first, &v)?);
        }
        out.truncate(want);
        if out.len() != want {
            return Err(corrupt("log", "a twig's entries are missing"));
        }
        Ok(out)
    }

    /// The `log` row holding serial `s`.
    fn read_run(&self, s: u64) -> Result<Option<Run>> {
        let Some((k, v)) = self
            .kv
            .floor_batch(Cf::Log, &[&serial_key(s)], false)?
            .into_iter()
            .next()
            .flatten()
        else {
            return Ok(None);
        };
        let first = u64::from_be_bytes(k.try_into().map_err(|_| corrupt("log", "a row key"))?);
        let run = Run::decode(first, &v)?;
        Ok((s < first + run.slots.len() as u64).then_some(run))
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
        self.kv.get(Cf::State, key)
    }

    /// Up to `limit` latest entries whose keys start with `prefix`, from `start`.
    pub fn scan(
        &self,
        prefix: &[u8],
        start: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.kv.scan(Cf::State, prefix, start, limit)
    }

    /// The latest value of `key` with a proof of it, or of its absence, against the
    /// latest root.
    pub fn prove_latest(&self, key: &[u8]) -> Result<(Option<Vec<u8>>, LogProof)> {
        if key.is_empty() {
            return Err(StorageError::Invalid(
                "the empty key is the log's sentinel".into(),
            ));
        }
        self.prove_latest_in(&self.mem(), key)
    }

    /// [`StateDb::prove_latest`] under a read guard the caller holds.
    fn prove_latest_in(&self, mem: &Mem, key: &[u8]) -> Result<(Option<Vec<u8>>, LogProof)> {
        let found = self.kv.floor_batch(Cf::Links, &[key], false)?;
        let (k, rec) = match found.into_iter().next().flatten() {
            Some((k, v)) => (k, Record::decode(&v)?),
            None => return Err(StorageError::Invalid("the state log is empty".into())),
        };
        let value = if k == key {
            Some(
                self.kv
                    .get(Cf::State, key)?
                    .ok_or_else(|| corrupt("state", "a linked key has no value"))?,
            )
        } else {
            None
        };
        let proof = self.build_proof(mem, None, k, rec)?;
        Ok((value, proof))
    }

    /// The proof for the entry of `key` (its link given) at the latest version, or
    /// at a past one whose view is built.
    fn build_proof(
        &self,
        mem: &Mem,
        past: Option<u64>,
        key: Vec<u8>,
        rec: Record,
    ) -> Result<LogProof> {
        let t = rec.serial >> TWIG_BITS;
        let pos = rec.serial & (TWIG_SIZE - 1);
        let twig = mem
            .twigs
            .get(t as usize)
            .ok_or_else(|| corrupt("links", "a record past the log's end"))?;
        let (leaves, bits, (null_upper, upper)) = match past {
            None => {
                let leaves = if t + 1 == mem.twigs.len() as u64 && !mem.leaves.is_empty() {
                    mem.leaves.clone()
                } else {
                    self.twig_leaves(t, mem.head.map_or(0, |h| h.next_serial))?
                };
                (leaves, twig.bits, upper_siblings(&mem.upper, t))
            }
            Some(version) => {
                let views = self.views.lock().unwrap_or_else(|e| e.into_inner());
                let view = views
                    .iter()
                    .find(|v| v.version == version)
                    .ok_or_else(|| StorageError::Invalid("a past view was dropped".into()))?;
                if rec.serial >= view.len {
                    return Err(corrupt("undo", "a past entry after the log's end then"));
                }
                let siblings = upper_siblings(&view.upper, t);
                let bits = view.bits.get(&t).copied().unwrap_or(twig.bits);
                let len = view.len;
                drop(views);
                (self.twig_leaves(t, len)?, bits, siblings)
            }
        };
        Ok(LogProof {
            serial: rec.serial,
            key,
            next: rec.next,
            value_hash: rec.value_hash,
            twig: twig_siblings(&leaves, pos),
            bits,
            null_upper,
            upper,
        })
    }

    /// Writes a prepared commit's batch (with whatever the caller added to it) and
    /// applies its change, readers held off in between so that no proof mixes the two
    /// versions.
    pub fn write_and_apply(&self, batch: WriteBatch, staged: Staged) -> Result<()> {
        let mut mem = self.mem.write().unwrap_or_else(|e| e.into_inner());
        if mem.head.map(|h| h.version) != staged.base_version {
            return Err(StorageError::Invalid(format!(
                "staged commit of version {} does not follow version {:?}",
                staged.head.version,
                mem.head.map(|h| h.version)
            )));
        }
        self.kv.write(batch)?;
        self.apply_locked(&mut mem, staged)
    }

    /// Applies a prepared change after its batch was written.
    pub fn apply(&self, staged: Staged) -> Result<()> {
        let mut mem = self.mem.write().unwrap_or_else(|e| e.into_inner());
        self.apply_locked(&mut mem, staged)
    }

    fn apply_locked(&self, mem: &mut Mem, staged: Staged) -> Result<()> {
        if mem.head.map(|h| h.version) != staged.base_version {
            return Err(StorageError::Invalid(format!(
                "staged commit of version {} does not follow version {:?}",
                staged.head.version,
                mem.head.map(|h| h.version)
            )));
        }
        // Views of past versions keep the bitmaps this block changes as they were.
        {
            let mut views = self.views.lock().unwrap_or_else(|e| e.into_inner());
            for view in views.iter_mut() {
                for &s in &staged.deactivated {
                    let t = s >> TWIG_BITS;
                    if s < view.len && !view.bits.contains_key(&t) {
                        if let Some(tw) = mem.twigs.get(t as usize) {
                            view.bits.insert(t, tw.bits);
                        }
                    }
                }
            }
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
    pub fn commit(&self, diff: &StateDiff, version: u64) -> Result<Hash> {
        let (staged, batch) = self.prepare_commit(diff, version)?;
        let root = staged.root();
        self.write_and_apply(batch, staged)?;
        Ok(root)
    }
}

fn decode<T: BorshDeserialize>(bytes: &[u8]) -> Result<T> {
    codec::decode(bytes, MAX_RECORD).map_err(|source| StorageError::Corrupt { cf: "meta", source })
}

#[cfg(test)]
mod tests;
