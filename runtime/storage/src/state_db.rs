//! The state store: the *state log*, an append-only authenticated store on RocksDB (hash rules and proof
//! format in [`atonomi_primitives::statelog`]).
//!
//! On disk, in one `WriteBatch` per block:
//! - `state`: raw key → its latest record `serial ‖ next key ‖ value` (one read for a
//!   point lookup, key order for prefix scans and for finding a key's neighbours);
//! - `log`: the entries a block appended, one row per twig it wrote into, keyed by
//!   the row's first serial: the entries' leaf hashes, then their keys (what proofs of its twig neighbours and the compaction of
//!   old twigs need; values live only in `state`);
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
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, RwLock, RwLockReadGuard};

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

/// A key's link record in `links`: where its active entry is and what it commits to.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Record {
    serial: u64,
    value_hash: Hash,
    next: Vec<u8>,
}

impl Record {
    fn encode(serial: u64, value_hash: &Hash, next: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(40 + next.len());
        v.extend_from_slice(&serial.to_be_bytes());
        v.extend_from_slice(&value_hash.0);
        v.extend_from_slice(next);
        v
    }

    fn decode(b: &[u8]) -> Result<Record> {
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

/// How many past versions keep a built view in memory.
const VIEWS: usize = 4;

/// The tree at a past version: its length, the tree over its twig roots, and the
/// bitmaps (as they were then) of every twig that changed since.
#[derive(Debug)]
struct View {
    version: u64,
    len: u64,
    upper: Vec<Vec<Hash>>,
    bits: HashMap<u64, [u8; BITMAP_BYTES]>,
}

/// What a key was before a version changed it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Undo {
    /// Its link then (`None`: absent).
    link: Option<Record>,
    /// Its value then, when the version changed the value.
    value: Option<Vec<u8>>,
}

impl Undo {
    fn encode(&self) -> Vec<u8> {
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

    fn decode(b: &[u8]) -> Result<Undo> {
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

fn undo_key(version: u64, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + key.len());
    k.extend_from_slice(&version.to_be_bytes());
    k.extend_from_slice(key);
    k
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
    value_hash: Hash,
    /// A new value for `state` (`None`: unchanged, the entry only moves or relinks).
    value: Option<Vec<u8>>,
    deleted: bool,
    old: Option<u64>,
    /// The key's link before the block (for its undo record).
    pre: Option<Record>,
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

    /// The leaf hashes of twig `t`'s entries (the log holds `len` entries). Rows never
    /// cross a twig's boundary, so the twig's rows are one range.
    fn twig_leaves(&self, t: u64, len: u64) -> Result<Vec<Hash>> {
        let from = t << TWIG_BITS;
        let to = (from + TWIG_SIZE).min(len);
        let mut out = Vec::with_capacity(to.saturating_sub(from) as usize);
        for (k, v) in self
            .kv
            .range(Cf::Log, &serial_key(from), &serial_key(from + TWIG_SIZE))?
        {
            let first = u64::from_be_bytes(k.try_into().map_err(|_| corrupt("log", "a row key"))?);
            if first != from + out.len() as u64 {
                return Err(corrupt("log", "a gap in the log"));
            }
            out.extend(Run::leaves(&v)?);
        }
        out.truncate(to.saturating_sub(from) as usize);
        if out.len() as u64 != to.saturating_sub(from) {
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
        let mem = self.mem();
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
        let proof = self.build_proof(&mem, None, k, rec)?;
        Ok((value, proof))
    }

    /// The value of `key` at a retained `version` with a proof against that version's
    /// root.
    pub fn prove(&self, key: &[u8], version: u64) -> Result<(Option<Vec<u8>>, LogProof)> {
        if key.is_empty() {
            return Err(StorageError::Invalid(
                "the empty key is the log's sentinel".into(),
            ));
        }
        let mem = self.mem();
        let head = self.check_version(&mem, version)?;
        if version == head.version {
            drop(mem);
            return self.prove_latest(key);
        }
        let (k, rec, value) = match self.record_at(key, version, head.version)? {
            Some((rec, v)) => (key.to_vec(), rec, Some(v)),
            None => {
                let (k, rec) = self.predecessor_at(key, version, head.version)?;
                (k, rec, None)
            }
        };
        self.ensure_view(&mem, version)?;
        let proof = self.build_proof(&mem, Some(version), k, rec)?;
        Ok((value, proof))
    }

    /// The value of `key` at a retained `version`.
    pub fn get_at(&self, key: &[u8], version: u64) -> Result<Option<Vec<u8>>> {
        if key.is_empty() {
            return Ok(None);
        }
        let mem = self.mem();
        let head = self.check_version(&mem, version)?;
        drop(mem);
        Ok(self.record_at(key, version, head.version)?.map(|(_, v)| v))
    }

    /// The oldest version still provable.
    pub fn oldest(&self) -> Option<u64> {
        self.mem().head.map(|h| h.oldest)
    }

    fn check_version(&self, mem: &Mem, version: u64) -> Result<Head> {
        let head = mem.head.ok_or(StorageError::MissingVersion {
            requested: version,
            latest: None,
        })?;
        if version > head.version {
            return Err(StorageError::MissingVersion {
                requested: version,
                latest: Some(head.version),
            });
        }
        if version < head.oldest {
            return Err(StorageError::Pruned {
                requested: version,
                oldest: head.oldest,
                latest: head.version,
            });
        }
        Ok(head)
    }

    /// A key's link and value at `version` (`None`: absent then): the latest, unless
    /// a later version changed it, in which case the first such version's undo
    /// record says what it was. Keys that appear leave no undo record: a link whose
    /// entry was appended after `version` means the key was absent then.
    fn record_at(
        &self,
        key: &[u8],
        version: u64,
        latest: u64,
    ) -> Result<Option<(Record, Vec<u8>)>> {
        let keys: Vec<Vec<u8>> = (version + 1..=latest).map(|v| undo_key(v, key)).collect();
        let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        let mut link: Option<Option<Record>> = None;
        let mut value: Option<Vec<u8>> = None;
        for u in self.kv.get_many(Cf::Undo, &refs)?.into_iter().flatten() {
            let u = Undo::decode(&u)?;
            if link.is_none() {
                let absent = u.link.is_none();
                link = Some(u.link);
                if absent {
                    break;
                }
            }
            if u.value.is_some() {
                value = u.value;
                break;
            }
        }
        let link = match link {
            Some(l) => l,
            None => self
                .kv
                .get(Cf::Links, key)?
                .map(|b| Record::decode(&b))
                .transpose()?,
        };
        let Some(link) = link else { return Ok(None) };
        if version < latest && link.serial >= self.history(version + 1)?.first_serial {
            // Appended after `version` with no change recorded since: it appeared then.
            return Ok(None);
        }
        let value = match value {
            Some(v) => v,
            None if key.is_empty() => Vec::new(),
            None => self
                .kv
                .get(Cf::State, key)?
                .ok_or_else(|| corrupt("state", "a linked key has no value"))?,
        };
        Ok(Some((link, value)))
    }

    /// The key before `key` at `version`, with its link then: the nearest key below it
    /// that is live now and was then, or a key removed since that lay between.
    fn predecessor_at(&self, key: &[u8], version: u64, latest: u64) -> Result<(Vec<u8>, Record)> {
        let mut cursor = key.to_vec();
        let mut best = loop {
            let (k, _) = self
                .kv
                .floor_batch(Cf::Links, &[&cursor], true)?
                .into_iter()
                .next()
                .flatten()
                .ok_or_else(|| corrupt("links", "the sentinel is missing"))?;
            if let Some((rec, _)) = self.record_at(&k, version, latest)? {
                break (k, rec);
            }
            if k.is_empty() {
                return Err(corrupt("links", "the sentinel did not exist"));
            }
            cursor = k;
        };
        for v in version + 1..=latest {
            for d in self.history(v)?.deleted {
                if d.as_slice() > best.0.as_slice() && d.as_slice() < key {
                    if let Some((rec, _)) = self.record_at(&d, version, latest)? {
                        best = (d, rec);
                    }
                }
            }
        }
        if !(best.1.next.is_empty() || key < best.1.next.as_slice()) {
            return Err(corrupt(
                "links",
                "the chain of keys is broken at a past version",
            ));
        }
        Ok(best)
    }

    fn history(&self, version: u64) -> Result<History> {
        match self.kv.get(Cf::LogHistory, &version.to_be_bytes())? {
            Some(b) => decode(&b),
            None => Err(corrupt("log_history", "a retained version is missing")),
        }
    }

    /// Builds (or finds) the view of a past version.
    fn ensure_view(&self, mem: &Mem, version: u64) -> Result<()> {
        let mut views = self.views.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = views.iter().position(|v| v.version == version) {
            let v = views.remove(i);
            views.extend(v);
            views.rotate_right(1);
            return Ok(());
        }
        let head = mem.head.ok_or_else(|| corrupt("meta", "no head"))?;
        let len = self.history(version + 1)?.first_serial;
        let twig = |t: u64| {
            mem.twigs
                .get(t as usize)
                .ok_or_else(|| corrupt("twigs", "a twig past the end"))
        };
        let mut bits: HashMap<u64, [u8; BITMAP_BYTES]> = HashMap::new();
        for v in version + 1..=head.version {
            for s in self.history(v)?.deactivated {
                if s >= len {
                    continue;
                }
                let t = s >> TWIG_BITS;
                let b = match bits.entry(t) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => e.insert(twig(t)?.bits),
                };
                let pos = s & (TWIG_SIZE - 1);
                b[(pos / 8) as usize] |= 1 << (pos % 8);
            }
        }
        let count = level_len(len, TWIG_BITS);
        let mut head_root = None;
        if len % TWIG_SIZE != 0 {
            let t0 = len >> TWIG_BITS;
            let mut b = match bits.get(&t0) {
                Some(b) => *b,
                None => twig(t0)?.bits,
            };
            let mut tw = Twig::empty();
            tw.bits = b;
            for pos in len % TWIG_SIZE..TWIG_SIZE {
                tw.set(pos, false);
            }
            b = tw.bits;
            bits.insert(t0, b);
            head_root = Some((t0, entries_root(&self.twig_leaves(t0, len)?)));
        }
        let mut changed: BTreeSet<u64> = bits.keys().copied().filter(|t| *t < count).collect();
        if count > 0 {
            changed.insert(count - 1);
        }
        let current = |l: u32, n: u64| -> Result<Vec<Hash>> {
            mem.upper
                .get(l as usize)
                .and_then(|lv| lv.get(..n as usize))
                .map(<[Hash]>::to_vec)
                .ok_or_else(|| corrupt("twigs", "the upper tree is shorter than a past one"))
        };
        let mut level = current(0, count)?;
        for &t in &changed {
            let entries = match head_root {
                Some((t0, r)) if t0 == t => r,
                _ => twig(t)?.entries_root,
            };
            let b = match bits.get(&t) {
                Some(b) => b,
                None => &twig(t)?.bits,
            };
            if let Some(slot) = level.get_mut(t as usize) {
                *slot = sl::twig_hash(&entries, b);
            }
        }
        let mut upper = vec![level];
        for l in 0..UPPER_DEPTH {
            let n = level_len(count, l + 1);
            let mut next = current(l + 1, n)?;
            let mut parents: BTreeSet<u64> = changed.iter().map(|i| i >> 1).collect();
            if n > 0 {
                parents.insert(n - 1);
            }
            let below = &upper[l as usize];
            let null = sl::null_upper_node(l);
            for &p in &parents {
                let left = below.get(2 * p as usize).unwrap_or(&null);
                let right = below.get(2 * p as usize + 1).unwrap_or(&null);
                if let Some(slot) = next.get_mut(p as usize) {
                    *slot = sl::node_hash(left, right);
                }
            }
            upper.push(next);
            changed = parents;
        }
        let root = upper
            .last()
            .and_then(|l| l.first())
            .copied()
            .unwrap_or(sl::empty_log_root());
        if root != self.root_at(version)? {
            return Err(corrupt(
                "log_history",
                "a past version's tree does not match its root",
            ));
        }
        views.push_front(View {
            version,
            len,
            upper,
            bits,
        });
        views.truncate(VIEWS);
        Ok(())
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
        let mut upper = Vec::new();
        let mut null_upper = 0u32;
        let (leaves, bits) = match past {
            None => {
                let leaves = if t + 1 == mem.twigs.len() as u64 && !mem.leaves.is_empty() {
                    mem.leaves.clone()
                } else {
                    self.twig_leaves(t, mem.head.map_or(0, |h| h.next_serial))?
                };
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
                (leaves, twig.bits)
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
                for l in 0..UPPER_DEPTH {
                    match view
                        .upper
                        .get(l as usize)
                        .and_then(|lv| lv.get(((t >> l) ^ 1) as usize))
                    {
                        Some(h) => upper.push(*h),
                        None => null_upper |= 1 << l,
                    }
                }
                let bits = view.bits.get(&t).copied().unwrap_or(twig.bits);
                let len = view.len;
                drop(views);
                (self.twig_leaves(t, len)?, bits)
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

    /// Drops what the oldest kept version no longer needs: undo and history records,
    /// old roots, and the log rows of twigs that were wholly inactive at every kept
    /// version. Range deletes cost the commit nothing measurable; RocksDB reclaims the
    /// space in its background compactions.
    fn prune(&self, batch: &mut WriteBatch, head: &mut Head) -> Result<()> {
        let oldest = (head.version + 1).saturating_sub(self.retention);
        if oldest <= head.oldest {
            return Ok(());
        }
        let tail_then = self.history(oldest)?.tail;
        let below = (tail_then >> TWIG_BITS) << TWIG_BITS;
        if below > head.log_pruned_below {
            batch.delete_range(
                Cf::Log,
                serial_key(head.log_pruned_below).to_vec(),
                serial_key(below).to_vec(),
            );
            head.log_pruned_below = below;
        }
        batch.delete_range(
            Cf::Undo,
            undo_key(head.oldest, &[]),
            undo_key(oldest + 1, &[]),
        );
        batch.delete_range(
            Cf::LogHistory,
            head.oldest.to_be_bytes().to_vec(),
            oldest.to_be_bytes().to_vec(),
        );
        batch.delete_range(Cf::Meta, root_key(head.oldest), root_key(oldest));
        head.oldest = oldest;
        Ok(())
    }

    /// Works out the block's root and every write it needs, as `version` (0 for
    /// genesis, then latest + 1). Nothing changes until the batch is written and the
    /// staged change [`applied`](Self::apply).
    pub fn prepare_commit(&self, diff: &StateDiff, version: u64) -> Result<(Staged, WriteBatch)> {
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

        let sentinel = || Record {
            serial: u64::MAX,
            value_hash: sl::value_hash(&[]),
            next: Vec::new(),
        };
        // 1. Each key's record (one batched read), then the key before each key that
        //    appears or disappears (a seek each).
        let keys: Vec<&[u8]> = diff.keys().map(Vec::as_slice).collect();
        let records = self.kv.get_many(Cf::Links, &keys)?;
        let mut near: BTreeMap<Vec<u8>, Near> = BTreeMap::new();
        let mut touched: BTreeMap<Vec<u8>, Touch> = BTreeMap::new();
        let mut links: Vec<Link> = Vec::new();
        let mut changes: Vec<&[u8]> = Vec::new();
        let mut deletes: Vec<&[u8]> = Vec::new();
        for ((key, value), rec) in diff.iter().zip(records) {
            let rec = rec.map(|b| Record::decode(&b)).transpose()?;
            match (value, rec) {
                (Some(v), Some(rec)) => {
                    touched.insert(
                        key.clone(),
                        Touch {
                            next: rec.next.clone(),
                            value_hash: sl::value_hash(v),
                            value: Some(v.clone()),
                            deleted: false,
                            old: Some(rec.serial),
                            pre: Some(rec),
                        },
                    );
                }
                (None, Some(rec)) => {
                    changes.push(key);
                    deletes.push(key);
                    links.push(Link::After(rec.next.clone()));
                    touched.insert(
                        key.clone(),
                        Touch {
                            next: Vec::new(),
                            value_hash: Hash::ZERO,
                            value: None,
                            deleted: true,
                            old: Some(rec.serial),
                            pre: Some(rec.clone()),
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
                (Some(v), None) => {
                    changes.push(key);
                    touched.insert(
                        key.clone(),
                        Touch {
                            next: Vec::new(),
                            value_hash: sl::value_hash(v),
                            value: Some(v.clone()),
                            deleted: false,
                            old: None,
                            pre: None,
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
                (None, None) => {}
            }
        }
        if fresh {
            links.push(Link::Before(Vec::new(), sentinel()));
        }
        for floor in self.kv.floor_batch(Cf::Links, &changes, true)? {
            match floor {
                Some((k, v)) => links.push(Link::Before(k, Record::decode(&v)?)),
                None if fresh => {}
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
                            value_hash: pre.value_hash,
                            value: None,
                            deleted: false,
                            old: (pre.serial != u64::MAX).then_some(pre.serial),
                            pre: (pre.serial != u64::MAX).then(|| pre.clone()),
                        },
                    );
                }
            }
        }

        // 4. Compaction: re-append the oldest active entries while the log is more than
        //    twice the live keys, a bounded number per block.
        let mut tail = head.tail;
        let mut moved = 0u64;
        let mut run: Option<Run> = None;
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
                if !run.as_ref().is_some_and(|r| r.covers(tail)) {
                    run = self.read_run(tail)?;
                }
                let key = run
                    .as_ref()
                    .and_then(|r| r.slots.get((tail - r.first) as usize))
                    .map(|(_, k)| k.clone())
                    .ok_or_else(|| corrupt("log", "an active slot is missing"))?;
                if let std::collections::btree_map::Entry::Vacant(slot) = touched.entry(key) {
                    let rec = self
                        .kv
                        .get(Cf::Links, slot.key())?
                        .ok_or_else(|| corrupt("links", "an active entry's key is missing"))?;
                    let rec = Record::decode(&rec)?;
                    if rec.serial != tail {
                        return Err(corrupt("state", "an active slot's key points elsewhere"));
                    }
                    slot.insert(Touch {
                        next: rec.next.clone(),
                        value_hash: rec.value_hash,
                        value: None,
                        deleted: false,
                        old: Some(tail),
                        pre: Some(rec),
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
            deactivated: Vec::new(),
        };
        let mut serial = head.next_serial;
        let mut active = head.active;
        let mut history = History {
            first_serial: serial,
            ..History::default()
        };
        // Undo records: each touched key as it was, with its old value when the block
        // changes the value.
        let value_changes: Vec<&[u8]> = touched
            .iter()
            .filter(|(_, t)| t.pre.is_some() && (t.deleted || t.value.is_some()))
            .map(|(k, _)| k.as_slice())
            .collect();
        let old_values = self.kv.get_many(Cf::State, &value_changes)?;
        let mut old_values: BTreeMap<&[u8], Option<Vec<u8>>> =
            value_changes.into_iter().zip(old_values).collect();
        for (key, t) in &touched {
            // A key that appears needs no record: its entry's serial, at or past the
            // log's length at any earlier version, says it was absent then.
            if t.pre.is_some() {
                let undo = Undo {
                    link: t.pre.clone(),
                    value: old_values.remove(key.as_slice()).flatten(),
                };
                batch.put(Cf::Undo, undo_key(version, key), undo.encode());
            }
            if t.deleted {
                history.deleted.push(key.clone());
            }
        }
        let (mut row_first, mut row_leaves, mut row_keys) = (serial, Vec::new(), Vec::new());
        for (key, t) in &touched {
            if let Some(old) = t.old {
                twig_mut(&mut staged.twigs, &mem.twigs, old >> TWIG_BITS)
                    .set(old & (TWIG_SIZE - 1), false);
                history.deactivated.push(old);
                active = active.saturating_sub(1);
            }
            if t.deleted {
                batch.delete(Cf::State, key.clone());
                batch.delete(Cf::Links, key.clone());
            } else {
                {
                    let leaf = sl::leaf_hash(key, &t.next, &t.value_hash);
                    if let Some(v) = &t.value {
                        batch.put(Cf::State, key.clone(), v.clone());
                    }
                    batch.put(
                        Cf::Links,
                        key.clone(),
                        Record::encode(serial, &t.value_hash, &t.next),
                    );
                    if serial.is_multiple_of(TWIG_SIZE) && !row_leaves.is_empty() {
                        batch.put(
                            Cf::Log,
                            serial_key(row_first).to_vec(),
                            Run::encode(&row_leaves, &row_keys),
                        );
                        (row_first, row_leaves, row_keys) = (serial, Vec::new(), Vec::new());
                    }
                    row_leaves.push(leaf);
                    row_keys.push(key.as_slice());
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
        if !row_leaves.is_empty() {
            batch.put(
                Cf::Log,
                serial_key(row_first).to_vec(),
                Run::encode(&row_leaves, &row_keys),
            );
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
        history.tail = tail;
        self.prune(&mut batch, &mut staged.head)?;
        batch.put(
            Cf::LogHistory,
            version.to_be_bytes().to_vec(),
            codec::encode(&history),
        );
        staged.deactivated = history.deactivated;
        batch.put(Cf::Meta, META_HEAD, codec::encode(&staged.head));
        batch.put(Cf::Meta, root_key(version), codec::encode(&root));
        {
            let mut st = self.stats.write().unwrap_or_else(|e| e.into_inner());
            st.keys += batch.len() as u64;
            st.bytes += batch.bytes() as u64;
            st.appended += serial - head.next_serial;
            st.moved += moved;
        }
        Ok((staged, batch))
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

/// Where a snapshot's log stands: what [`StateDb::import`] rebuilds and checks.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SnapshotHead {
    pub version: u64,
    pub root: Hash,
    /// Entries in the log at `version`.
    pub len: u64,
    pub tail: u64,
    pub active: u64,
}

/// One twig of a snapshot: its bitmap at the version, and its leaf hashes, or only its
/// entries root for a twig whose leaves were pruned (allowed only when no entry of it
/// is active).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SnapshotTwig {
    pub bits: [u8; BITMAP_BYTES],
    pub body: TwigBody,
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum TwigBody {
    Pruned(Hash),
    Leaves(Vec<Hash>),
}

/// An active entry of a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SnapshotEntry {
    pub serial: u64,
    pub key: Vec<u8>,
    pub next: Vec<u8>,
    pub value: Vec<u8>,
}

/// Consecutive twigs with their active entries, in serial order.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SnapshotChunk {
    pub first_twig: u64,
    pub twigs: Vec<SnapshotTwig>,
    pub entries: Vec<SnapshotEntry>,
}

impl<S: KvStore> StateDb<S> {
    /// Writes the state at a kept `version` as chunks of `twigs_per_chunk` twigs, in
    /// order, to `sink`; returns the head that [`StateDb::import`] checks them against.
    pub fn snapshot(
        &self,
        version: u64,
        twigs_per_chunk: u64,
        mut sink: impl FnMut(SnapshotChunk) -> Result<()>,
    ) -> Result<SnapshotHead> {
        let mem = self.mem();
        let head = self.check_version(&mem, version)?;
        let past = version < head.version;
        let (len, tail) = if past {
            (
                self.history(version + 1)?.first_serial,
                self.history(version)?.tail,
            )
        } else {
            (head.next_serial, head.tail)
        };
        if past {
            self.ensure_view(&mem, version)?;
        }
        // What changed since: each key's link and value then, from the first undo
        // record after `version` (the value from the first one that changed it).
        let mut links: HashMap<Vec<u8>, Option<Record>> = HashMap::new();
        let mut values: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        if past {
            for (k, v) in self.kv.range(
                Cf::Undo,
                &undo_key(version + 1, &[]),
                &undo_key(head.version + 1, &[]),
            )? {
                let key = k
                    .get(8..)
                    .ok_or_else(|| corrupt("undo", "a short key"))?
                    .to_vec();
                let u = Undo::decode(&v)?;
                if let Some(val) = u.value {
                    values.entry(key.clone()).or_insert(val);
                }
                links.entry(key).or_insert(u.link);
            }
        }
        let twigs = level_len(len, TWIG_BITS);
        let pruned_twigs = head.log_pruned_below >> TWIG_BITS;
        let mut active = 0u64;
        let mut t = 0u64;
        while t < twigs {
            let mut chunk = SnapshotChunk {
                first_twig: t,
                twigs: Vec::new(),
                entries: Vec::new(),
            };
            for t in t..(t + twigs_per_chunk.max(1)).min(twigs) {
                let cur = mem
                    .twigs
                    .get(t as usize)
                    .ok_or_else(|| corrupt("twigs", "a twig past the end"))?;
                let bits = if past {
                    let views = self.views.lock().unwrap_or_else(|e| e.into_inner());
                    views
                        .iter()
                        .find(|v| v.version == version)
                        .and_then(|v| v.bits.get(&t).copied())
                        .unwrap_or(cur.bits)
                } else {
                    cur.bits
                };
                let mut tw = Twig::empty();
                tw.bits = bits;
                if t < pruned_twigs {
                    if bits.iter().any(|b| *b != 0) {
                        return Err(corrupt("log", "a pruned twig has active entries"));
                    }
                    chunk.twigs.push(SnapshotTwig {
                        bits,
                        body: TwigBody::Pruned(cur.entries_root),
                    });
                    continue;
                }
                let slots = self.twig_slots(t, len)?;
                for (pos, (_, key)) in slots.iter().enumerate() {
                    if !tw.get(pos as u64) {
                        continue;
                    }
                    let serial = (t << TWIG_BITS) + pos as u64;
                    let link = match links.get(key) {
                        Some(l) => l.clone(),
                        None => self
                            .kv
                            .get(Cf::Links, key)?
                            .map(|b| Record::decode(&b))
                            .transpose()?,
                    }
                    .ok_or_else(|| corrupt("links", "an active entry's key has no link"))?;
                    if link.serial != serial {
                        return Err(corrupt("links", "an active entry's key links elsewhere"));
                    }
                    let value = match values.get(key) {
                        Some(v) => v.clone(),
                        None if key.is_empty() => Vec::new(),
                        None => self
                            .kv
                            .get(Cf::State, key)?
                            .ok_or_else(|| corrupt("state", "a linked key has no value"))?,
                    };
                    chunk.entries.push(SnapshotEntry {
                        serial,
                        key: key.clone(),
                        next: link.next,
                        value,
                    });
                    active += 1;
                }
                chunk.twigs.push(SnapshotTwig {
                    bits,
                    body: TwigBody::Leaves(slots.into_iter().map(|(l, _)| l).collect()),
                });
            }
            t = (t + twigs_per_chunk.max(1)).min(twigs);
            sink(chunk)?;
        }
        Ok(SnapshotHead {
            version,
            root: self.root_at(version)?,
            len,
            tail,
            active,
        })
    }

    /// The leaf hashes and keys of twig `t`'s entries (the log holds `len`).
    fn twig_slots(&self, t: u64, len: u64) -> Result<Vec<(Hash, Vec<u8>)>> {
        let from = t << TWIG_BITS;
        let to = (from + TWIG_SIZE).min(len);
        let mut out = Vec::new();
        for (k, v) in self
            .kv
            .range(Cf::Log, &serial_key(from), &serial_key(from + TWIG_SIZE))?
        {
            let first = u64::from_be_bytes(k.try_into().map_err(|_| corrupt("log", "a row key"))?);
            if first != from + out.len() as u64 {
                return Err(corrupt("log", "a gap in the log"));
            }
            out.extend(Run::decode(first, &v)?.slots);
        }
        out.truncate(to.saturating_sub(from) as usize);
        if out.len() as u64 != to.saturating_sub(from) {
            return Err(corrupt("log", "a twig's entries are missing"));
        }
        Ok(out)
    }

    /// Builds a store at the snapshot's version from its chunks, in order, checking
    /// each entry against its leaf and the whole against `head.root`: nothing is
    /// trusted but the root. `kv` must be empty. The head is written last, with
    /// `extra` (the caller's own records), so an import cut short leaves no state.
    pub fn import(
        kv: S,
        head: &SnapshotHead,
        chunks: impl IntoIterator<Item = Result<SnapshotChunk>>,
        extra: WriteBatch,
        config: LogConfig,
    ) -> Result<StateDb<S>> {
        if kv.get(Cf::Meta, META_HEAD)?.is_some() {
            return Err(StorageError::Invalid(
                "the store to import into is not empty".into(),
            ));
        }
        let bad = |what: String| StorageError::Invalid(format!("snapshot: {what}"));
        let twigs = level_len(head.len, TWIG_BITS);
        let mut roots: Vec<Hash> = Vec::with_capacity(twigs as usize);
        let mut active = 0u64;
        let mut sentinel_seen = false;
        for chunk in chunks {
            let chunk = chunk?;
            if chunk.first_twig != roots.len() as u64 {
                return Err(bad(format!(
                    "a chunk starts at twig {}, expected {}",
                    chunk.first_twig,
                    roots.len()
                )));
            }
            let mut batch = WriteBatch::new();
            let mut entries = chunk.entries.iter().peekable();
            for (i, st) in chunk.twigs.iter().enumerate() {
                let t = chunk.first_twig + i as u64;
                if t >= twigs {
                    return Err(bad(format!("twig {t} is past the log's {twigs} twigs")));
                }
                let mut tw = Twig::empty();
                tw.bits = st.bits;
                let expected = ((t + 1) << TWIG_BITS).min(head.len) - (t << TWIG_BITS);
                match &st.body {
                    TwigBody::Pruned(root) => {
                        if st.bits.iter().any(|b| *b != 0) {
                            return Err(bad(format!(
                                "twig {t} comes without leaves but has active entries"
                            )));
                        }
                        tw.entries_root = *root;
                    }
                    TwigBody::Leaves(leaves) => {
                        if leaves.len() as u64 != expected {
                            return Err(bad(format!(
                                "twig {t} has {} leaves, expected {expected}",
                                leaves.len()
                            )));
                        }
                        let mut keys: Vec<&[u8]> = vec![&[]; leaves.len()];
                        let mut seen = Twig::empty();
                        let mut listed = 0usize;
                        while let Some(e) = entries.next_if(|e| e.serial >> TWIG_BITS == t) {
                            let pos = e.serial & (TWIG_SIZE - 1);
                            let vh = sl::value_hash(&e.value);
                            if !tw.get(pos)
                                || leaves.get(pos as usize)
                                    != Some(&sl::leaf_hash(&e.key, &e.next, &vh))
                            {
                                return Err(bad(format!(
                                    "entry {} does not match its leaf and bitmap",
                                    e.serial
                                )));
                            }
                            if seen.get(pos) || (e.key.is_empty() && sentinel_seen) {
                                return Err(bad(format!("entry {} is given twice", e.serial)));
                            }
                            seen.set(pos, true);
                            listed += 1;
                            sentinel_seen |= e.key.is_empty();
                            keys[pos as usize] = &e.key;
                            if !e.key.is_empty() {
                                batch.put(Cf::State, e.key.clone(), e.value.clone());
                            }
                            batch.put(
                                Cf::Links,
                                e.key.clone(),
                                Record::encode(e.serial, &vh, &e.next),
                            );
                            active += 1;
                        }
                        let given = (0..expected).filter(|p| tw.get(*p)).count();
                        if given != listed {
                            return Err(bad(format!(
                                "twig {t} marks {given} entries active but the snapshot gives {listed}"
                            )));
                        }
                        tw.entries_root = entries_root(leaves);
                        batch.put(
                            Cf::Log,
                            serial_key(t << TWIG_BITS).to_vec(),
                            Run::encode(leaves, &keys),
                        );
                    }
                }
                batch.put(Cf::Twigs, t.to_be_bytes().to_vec(), tw.encode());
                roots.push(tw.root());
            }
            if entries.next().is_some() {
                return Err(bad("a chunk has entries outside its twigs".into()));
            }
            kv.write(batch)?;
        }
        if roots.len() as u64 != twigs {
            return Err(bad(format!(
                "{} twigs given, the log has {twigs}",
                roots.len()
            )));
        }
        if active != head.active {
            return Err(bad(format!(
                "{active} active entries, the head says {}",
                head.active
            )));
        }
        let mut level = roots;
        for l in 0..UPPER_DEPTH {
            let null = sl::null_upper_node(l);
            level = level
                .chunks(2)
                .map(|p| sl::node_hash(&p[0], p.get(1).unwrap_or(&null)))
                .collect();
        }
        let root = level.first().copied().unwrap_or(sl::empty_log_root());
        if root != head.root {
            return Err(bad(format!(
                "the entries lead to root {root}, not {}",
                head.root
            )));
        }
        let first_live_twig = (head.tail >> TWIG_BITS) << TWIG_BITS;
        let log_head = Head {
            version: head.version,
            root,
            next_serial: head.len,
            tail: head.tail,
            active,
            flushed_version: head.version,
            flushed_next_serial: head.len,
            oldest: head.version,
            log_pruned_below: first_live_twig.min(head.len),
        };
        let mut batch = extra;
        batch.put(
            Cf::LogHistory,
            head.version.to_be_bytes().to_vec(),
            codec::encode(&History {
                first_serial: head.len,
                tail: head.tail,
                ..History::default()
            }),
        );
        batch.put(Cf::Meta, root_key(head.version), codec::encode(&root));
        batch.put(Cf::Meta, META_HEAD, codec::encode(&log_head));
        kv.write(batch)?;
        StateDb::open_with(kv, config)
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
    fn check_all(log: &StateDb<impl KvStore>, model: &BTreeMap<Vec<u8>, Vec<u8>>) {
        let root = log.root();
        for i in 0..64u16 {
            let k = key(i);
            let (v, p) = log.prove_latest(&k).unwrap();
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

    /// What `check_all` checks, at a past version.
    fn check_at(log: &StateDb<impl KvStore>, version: u64, then: &BTreeMap<Vec<u8>, Vec<u8>>) {
        let root = log.root_at(version).unwrap();
        for i in 0..64u16 {
            let k = key(i);
            let (v, p) = log.prove(&k, version).unwrap();
            assert_eq!(v.as_ref(), then.get(&k), "value of {k:?} at {version}");
            assert_eq!(log.get_at(&k, version).unwrap().as_ref(), then.get(&k));
            verify_log(root, &k, v.as_deref(), &p).unwrap();
        }
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
            let mem = StateDb::open(MemoryStore::new()).unwrap();
            let mut rocks = StateDb::open(RocksStore::open(dir.path(), &cfg).unwrap()).unwrap();
            let mut model = BTreeMap::new();
            let mut models = vec![model.clone()];
            mem.commit(&StateDiff::new(), 0).unwrap();
            rocks.commit(&StateDiff::new(), 0).unwrap();
            for (h, block) in blocks.iter().enumerate() {
                let mut diff = StateDiff::new();
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
                models.push(model.clone());
            }
            check_all(&rocks, &model);
            // Every past version proves what was true then.
            for (v, then) in models.iter().enumerate() {
                check_at(&rocks, v as u64, then);
                check_at(&mem, v as u64, then);
            }
            let root = rocks.root();
            drop(rocks);
            rocks = StateDb::open(RocksStore::open(dir.path(), &cfg).unwrap()).unwrap();
            prop_assert_eq!(rocks.root(), root);
            check_all(&rocks, &model);
        }
    }

    #[test]
    fn pruning_keeps_every_retained_version_provable_and_drops_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = RocksConfig {
            sync_writes: false,
            ..RocksConfig::default()
        };
        let config = LogConfig {
            retention: MIN_RETENTION,
        };
        let log = StateDb::open_with(RocksStore::open(dir.path(), &cfg).unwrap(), config).unwrap();
        log.commit(&StateDiff::new(), 0).unwrap();
        // 400 keys rewritten over and over: compaction moves the tail, pruning drops
        // what no kept version needs.
        let mut models = vec![BTreeMap::new()];
        let mut model = BTreeMap::new();
        let rows =
            |log: &StateDb<RocksStore>, cf| log.kv().range(cf, &[], &[0xff; 9]).unwrap().len();
        let mut log_rows = Vec::new();
        for v in 1..=600u64 {
            let mut d = StateDiff::new();
            if v == 1 {
                // Keys never written again: compaction carries them along.
                for i in 1000..4000u64 {
                    model.insert(i.to_be_bytes().to_vec(), vec![1]);
                    d.insert(i.to_be_bytes().to_vec(), Some(vec![1]));
                }
            }
            for i in 0..40u64 {
                let k = ((i * 13 + v * 7) % 400).to_be_bytes().to_vec();
                let val = (v * 1000 + i).to_le_bytes().to_vec();
                model.insert(k.clone(), val.clone());
                d.insert(k, Some(val));
            }
            if v % 50 == 0 {
                // A delete now and then.
                let k = (v % 400).to_be_bytes().to_vec();
                model.remove(&k);
                d.insert(k, None);
            }
            log.commit(&d, v).unwrap();
            models.push(model.clone());
            log_rows.push(rows(&log, Cf::Log));
        }
        let oldest = log.oldest().unwrap();
        assert_eq!(oldest, 601 - MIN_RETENTION);
        for v in [0, 100, oldest - 1] {
            assert!(matches!(
                log.prove(b"k", v),
                Err(StorageError::Pruned { requested, .. }) if requested == v
            ));
        }
        for v in (oldest..=600).step_by(9).chain([oldest, 600]) {
            let root = log.root_at(v).unwrap();
            let then = &models[v as usize];
            for i in (0..400u64).step_by(7).chain([0, 50]) {
                let k = i.to_be_bytes();
                let (got, p) = log.prove(&k, v).unwrap();
                assert_eq!(got.as_ref(), then.get(&k[..]), "key {i} at {v}");
                verify_log(root, &k, got.as_deref(), &p).unwrap();
            }
        }
        // Old undo and history rows are gone; the log stopped growing with age.
        let undo = log
            .kv()
            .range(Cf::Undo, &[], &oldest.to_be_bytes())
            .unwrap();
        assert!(undo.is_empty(), "undo rows of pruned versions remain");
        let hist = log
            .kv()
            .range(Cf::LogHistory, &[], &(oldest - 1).to_be_bytes())
            .unwrap();
        assert!(hist.is_empty(), "history rows of pruned versions remain");
        // A view built for a past version stays right while later blocks change the
        // bitmaps it shares with the present.
        let check = |log: &StateDb<RocksStore>, v: u64, then: &BTreeMap<Vec<u8>, Vec<u8>>| {
            let root = log.root_at(v).unwrap();
            for i in (0..400u64).chain((1000..4000).step_by(7)) {
                let k = i.to_be_bytes();
                let (got, p) = log.prove(&k, v).unwrap();
                assert_eq!(got.as_ref(), then.get(&k[..]), "key {i} at {v}");
                verify_log(root, &k, got.as_deref(), &p).unwrap();
            }
        };
        let mut one = StateDiff::new();
        one.insert(5u64.to_be_bytes().to_vec(), Some(vec![5]));
        log.commit(&one, 601).unwrap();
        check(&log, 600, &models[600]);
        for v in 602..=611u64 {
            let d: StateDiff = (0..400u64)
                .map(|i| (i.to_be_bytes().to_vec(), Some(v.to_le_bytes().to_vec())))
                .collect();
            log.commit(&d, v).unwrap();
        }
        check(&log, 600, &models[600]);
        let head = log.mem().head.unwrap();
        assert!(head.log_pruned_below > 0, "no log row was pruned");
        assert!(log
            .kv()
            .range(Cf::Log, &[], &serial_key(head.log_pruned_below))
            .unwrap()
            .is_empty());
        assert!(
            log_rows[599] <= log_rows[300],
            "log rows {} at the end, {} midway",
            log_rows[599],
            log_rows[300]
        );
    }

    /// Export at the latest and at a past version, import into an empty store: the same
    /// root, values and proofs; a changed value, a dropped entry or a flipped bit is
    /// refused.
    #[test]
    fn a_snapshot_round_trip_reproduces_the_root_and_tampering_is_refused() {
        let log = StateDb::open(MemoryStore::new()).unwrap();
        log.commit(&StateDiff::new(), 0).unwrap();
        let mut models = vec![BTreeMap::new()];
        let mut model = BTreeMap::new();
        for v in 1..=40u64 {
            let mut d = StateDiff::new();
            for i in 0..300u64 {
                if (i + v) % 5 == 0 {
                    let k = i.to_be_bytes().to_vec();
                    let val = (v, i).0.to_le_bytes().to_vec();
                    model.insert(k.clone(), val.clone());
                    d.insert(k, Some(val));
                }
            }
            if v % 7 == 0 {
                let k = (v * 3).to_be_bytes().to_vec();
                model.remove(&k);
                d.insert(k, None);
            }
            log.commit(&d, v).unwrap();
            models.push(model.clone());
        }
        for version in [40u64, 25] {
            let mut chunks = Vec::new();
            let head = log
                .snapshot(version, 1, |c| {
                    chunks.push(c);
                    Ok(())
                })
                .unwrap();
            assert_eq!(head.root, log.root_at(version).unwrap());
            let imported = StateDb::import(
                MemoryStore::new(),
                &head,
                chunks.clone().into_iter().map(Ok),
                WriteBatch::new(),
                LogConfig::default(),
            )
            .unwrap();
            assert_eq!(imported.root(), head.root);
            for i in 0..300u64 {
                let k = i.to_be_bytes();
                let (v, p) = imported.prove_latest(&k).unwrap();
                assert_eq!(
                    v.as_ref(),
                    models[version as usize].get(&k[..]),
                    "key {i} at {version}"
                );
                verify_log(head.root, &k, v.as_deref(), &p).unwrap();
            }
            // The imported store goes on committing like the original.
            let mut d = StateDiff::new();
            d.insert(b"new".to_vec(), Some(b"1".to_vec()));
            imported.commit(&d, version + 1).unwrap();

            let import = |chunks: Vec<SnapshotChunk>| {
                StateDb::import(
                    MemoryStore::new(),
                    &head,
                    chunks.into_iter().map(Ok),
                    WriteBatch::new(),
                    LogConfig::default(),
                )
            };
            let with_entries = chunks.iter().position(|c| c.entries.len() > 1).unwrap();
            let mut bad = chunks.clone();
            bad[with_entries].entries[1].value.push(0);
            assert!(import(bad).is_err(), "a changed value was accepted");
            let mut bad = chunks.clone();
            bad[with_entries].entries.remove(1);
            assert!(import(bad).is_err(), "a dropped entry was accepted");
            let mut bad = chunks.clone();
            let e = bad[with_entries].entries.remove(1);
            let t = ((e.serial >> TWIG_BITS) - bad[with_entries].first_twig) as usize;
            let pos = e.serial & (TWIG_SIZE - 1);
            bad[with_entries].twigs[t].bits[(pos / 8) as usize] &= !(1 << (pos % 8));
            assert!(
                import(bad).is_err(),
                "an entry hidden by its bit was accepted"
            );
            let mut bad = chunks.clone();
            bad.pop();
            assert!(import(bad).is_err(), "a missing chunk was accepted");
        }
    }

    #[test]
    fn genesis_writes_the_sentinel_and_empty_key_is_refused() {
        let log = StateDb::open(MemoryStore::new()).unwrap();
        assert_eq!(log.root(), sl::empty_log_root());
        let r0 = log.commit(&StateDiff::new(), 0).unwrap();
        assert_ne!(r0, sl::empty_log_root());
        let (v, p) = log.prove_latest(b"a").unwrap();
        assert_eq!(v, None);
        assert!(p.key.is_empty(), "absence is proven by the sentinel");
        verify_log(r0, b"a", None, &p).unwrap();
        let mut d = StateDiff::new();
        d.insert(vec![], Some(vec![1]));
        assert!(log.commit(&d, 1).is_err());
        assert!(log.commit(&StateDiff::new(), 5).is_err());
        assert!(matches!(
            verify_log(r0, b"", None, &p),
            Err(LogProofError::Malformed(_))
        ));
    }

    #[test]
    fn a_prepared_change_that_is_not_applied_changes_nothing() {
        let log = StateDb::open(MemoryStore::new()).unwrap();
        log.commit(&StateDiff::new(), 0).unwrap();
        let root = log.root();
        let mut d = StateDiff::new();
        d.insert(b"k".to_vec(), Some(b"v".to_vec()));
        let (first, _) = log.prepare_commit(&d, 1).unwrap();
        // Another proposal for the same height, the one that is committed.
        let mut d2 = StateDiff::new();
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
        let log = StateDb::open(RocksStore::open(dir.path(), &cfg).unwrap()).unwrap();
        log.commit(&StateDiff::new(), 0).unwrap();
        // 3,000 keys, then rewrite a few hundred of them for many blocks.
        let mut d = StateDiff::new();
        for i in 0..3000u32 {
            d.insert(i.to_be_bytes().to_vec(), Some(vec![1]));
        }
        log.commit(&d, 1).unwrap();
        for v in 2..200u64 {
            let mut d = StateDiff::new();
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
            let (v, p) = log.prove_latest(&k).unwrap();
            verify_log(log.root(), &k, v.as_deref(), &p).unwrap();
        }
        drop(log);
        let log = StateDb::open(RocksStore::open(dir.path(), &cfg).unwrap()).unwrap();
        assert_eq!(log.mem().head.unwrap(), head);
    }
}
