//! Snapshots of the state at a kept version, and building a store from one: only the
//! root is trusted, every entry is checked against its leaf and bitmap.

use super::*;

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
