//! Preparing a block's commit ([`StateDb::prepare_commit`]): from a state diff to the
//! new root and every write the block needs, in the seven steps below, each a function
//! of its own. Nothing here changes the store; the caller writes the batch and applies
//! the [`Staged`] change.

use super::records::{undo_key, Undo};
use super::{
    corrupt, entries_root, level_len, root_key, serial_key, twig_mut, Head, History, Mem, Record,
    Run, Staged, StateDb, StateDiff, FLUSH_EVERY, META_HEAD,
};
use crate::error::{Result, StorageError};
use crate::kv::{Cf, KvStore, WriteBatch};
use atonomi_primitives::statelog::{self as sl, TWIG_BITS, TWIG_SIZE, UPPER_DEPTH};
use atonomi_primitives::{codec, Hash};
use std::collections::{BTreeMap, BTreeSet};

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

/// What step 1 read: each key the block writes, the neighbourhood known so far, the
/// neighbours still to place, and the keys the block deletes.
struct Read<'d> {
    touched: BTreeMap<Vec<u8>, Touch>,
    near: BTreeMap<Vec<u8>, Near>,
    links: Vec<Link>,
    deleted: BTreeSet<&'d [u8]>,
}

/// What step 5 left: the log's new length, its active entries, the version's history.
struct Appended {
    serial: u64,
    active: u64,
    history: History,
}

impl<S: KvStore> StateDb<S> {
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

        let Read {
            mut touched,
            mut near,
            links,
            deleted,
        } = self.read_keys(diff, fresh)?;
        Self::place_neighbours(&mut near, links, &deleted);
        Self::relink(&near, &mut touched);
        let (tail, moved) = self.compact(&mem, &head, &mut touched)?;
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
        let Appended {
            serial,
            active,
            mut history,
        } = self.append(&mem, &head, version, &touched, &mut batch, &mut staged)?;
        let root = Self::upper_root(&mem, &mut staged, serial);

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

    /// 1. Each key's record (one batched read), then the key before each key that
    ///    appears or disappears (a seek each).
    fn read_keys<'d>(&self, diff: &'d StateDiff, fresh: bool) -> Result<Read<'d>> {
        let sentinel = || Record {
            serial: u64::MAX,
            value_hash: sl::value_hash(&[]),
            next: Vec::new(),
        };
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
        Ok(Read {
            touched,
            near,
            links,
            deleted: deletes.into_iter().collect(),
        })
    }

    /// 2. The neighbours: predecessors (with records) and the keys after them.
    fn place_neighbours(
        near: &mut BTreeMap<Vec<u8>, Near>,
        links: Vec<Link>,
        deleted: &BTreeSet<&[u8]>,
    ) {
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
    }

    /// 3. New links: each live key's next is the next live key among its neighbours.
    fn relink(near: &BTreeMap<Vec<u8>, Near>, touched: &mut BTreeMap<Vec<u8>, Touch>) {
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
            // Every key with a record here has its old next among the neighbours too
            // (step 2), so the walk above saw whatever lies between.
            let Some(pre) = &n.pre else { continue };
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
    }

    /// 4. Compaction: re-append the oldest active entries while the log is more than
    ///    twice the live keys, a bounded number per block. Returns the new tail and how
    ///    many entries moved.
    fn compact(
        &self,
        mem: &Mem,
        head: &Head,
        touched: &mut BTreeMap<Vec<u8>, Touch>,
    ) -> Result<(u64, u64)> {
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
        Ok((tail, moved))
    }

    /// 5. Append, in key order: each touched key's undo record, its deactivated old
    ///    entry, and its new entry (state, link, log row, twig bit and leaf).
    fn append(
        &self,
        mem: &Mem,
        head: &Head,
        version: u64,
        touched: &BTreeMap<Vec<u8>, Touch>,
        batch: &mut WriteBatch,
        staged: &mut Staged,
    ) -> Result<Appended> {
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
        for (key, t) in touched {
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
        for (key, t) in touched {
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
        Ok(Appended {
            serial,
            active,
            history,
        })
    }

    /// 6. The tree over twig roots: the upper levels the staged twigs change, and the
    ///    root.
    fn upper_root(mem: &Mem, staged: &mut Staged, serial: u64) -> Hash {
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
        staged.upper[UPPER_DEPTH as usize]
            .get(&0)
            .copied()
            .or_else(|| mem.upper.last().and_then(|l| l.first()).copied())
            .unwrap_or(sl::empty_log_root())
    }
}
