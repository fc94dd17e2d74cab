//! Reads and proofs at past versions, and pruning. A past version's key comes from its
//! latest link and the first later undo record; its tree from the current one and the
//! deactivations since, built once per version and kept (see [`View`]).

use super::*;

/// How many past versions keep a built view in memory.
pub(super) const VIEWS: usize = 4;

impl<S: KvStore> StateDb<S> {
    /// The value of `key` at a retained `version` with a proof against that version's
    /// root.
    pub fn prove(&self, key: &[u8], version: u64) -> Result<(Option<Vec<u8>>, LogProof)> {
        if key.is_empty() {
            return Err(StorageError::Invalid(
                "the empty key is the log's sentinel".into(),
            ));
        }
        // The memory's read guard is held to the end: a commit in between would
        // otherwise move the head past the undo records this read consults.
        let mem = self.mem();
        let head = self.check_version(&mem, version)?;
        if version == head.version {
            return self.prove_latest_in(&mem, key);
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
        // Held across the read (see `prove`): a value of `version`, never a later one.
        let mem = self.mem();
        let head = self.check_version(&mem, version)?;
        let found = self.record_at(key, version, head.version)?;
        drop(mem);
        Ok(found.map(|(_, v)| v))
    }

    /// The oldest version still provable.
    pub fn oldest(&self) -> Option<u64> {
        self.mem().head.map(|h| h.oldest)
    }

    pub(super) fn check_version(&self, mem: &Mem, version: u64) -> Result<Head> {
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

    pub(super) fn history(&self, version: u64) -> Result<History> {
        match self.kv.get(Cf::LogHistory, &version.to_be_bytes())? {
            Some(b) => decode(&b),
            None => Err(corrupt("log_history", "a retained version is missing")),
        }
    }

    /// Builds (or finds) the view of a past version.
    pub(super) fn ensure_view(&self, mem: &Mem, version: u64) -> Result<()> {
        let mut views = self.views.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = views.iter().position(|v| v.version == version) {
            // Most recently used first.
            if let Some(v) = views.remove(i) {
                views.push_front(v);
            }
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

    /// Drops what the oldest kept version no longer needs: undo and history records,
    /// old roots, and the log rows of twigs that were wholly inactive at every kept
    /// version. Range deletes cost the commit nothing measurable; RocksDB reclaims the
    /// space in its background compactions.
    pub(super) fn prune(&self, batch: &mut WriteBatch, head: &mut Head) -> Result<()> {
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
}
