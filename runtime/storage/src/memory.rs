//! An in-memory store for unit tests of pure logic.

use crate::error::Result;
use crate::kv::{Cf, KvRead, KvStore, WriteBatch};
use std::collections::BTreeMap;
use std::sync::RwLock;

type Table = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Debug, Default)]
pub struct MemoryStore {
    cfs: RwLock<BTreeMap<Cf, Table>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn read<T>(&self, f: impl FnOnce(&BTreeMap<Cf, Table>) -> T) -> T {
        // A poisoned lock only means another test thread panicked mid-write of a
        // BTreeMap operation that cannot leave it inconsistent; keep reading.
        let guard = self.cfs.read().unwrap_or_else(|e| e.into_inner());
        f(&guard)
    }
}

impl KvRead for MemoryStore {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.read(|m| m.get(&cf).and_then(|t| t.get(key).cloned())))
    }

    fn get_at_or_before(
        &self,
        cf: Cf,
        key: &[u8],
        prefix: &[u8],
    ) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        Ok(self.read(|m| {
            m.get(&cf).and_then(|t| {
                t.range(..=key.to_vec())
                    .next_back()
                    .filter(|(k, _)| k.starts_with(prefix))
                    .map(|(k, v)| (k.clone(), v.clone()))
            })
        }))
    }

    fn get_many(&self, cf: Cf, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>> {
        keys.iter().map(|k| self.get(cf, k)).collect()
    }

    fn floor_batch(
        &self,
        cf: Cf,
        keys: &[&[u8]],
        strict: bool,
    ) -> Result<Vec<Option<crate::kv::Entry>>> {
        use std::ops::Bound;
        Ok(self.read(|m| {
            keys.iter()
                .map(|key| {
                    let upper = if strict {
                        Bound::Excluded(key.to_vec())
                    } else {
                        Bound::Included(key.to_vec())
                    };
                    m.get(&cf).and_then(|t| {
                        t.range((Bound::Unbounded, upper))
                            .next_back()
                            .map(|(k, v)| (k.clone(), v.clone()))
                    })
                })
                .collect()
        }))
    }

    fn range(&self, cf: Cf, from: &[u8], to: &[u8]) -> Result<Vec<crate::kv::Entry>> {
        if from >= to {
            return Ok(Vec::new());
        }
        Ok(self.read(|m| {
            m.get(&cf)
                .map(|t| {
                    t.range(from.to_vec()..to.to_vec())
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default()
        }))
    }

    fn scan(
        &self,
        cf: Cf,
        prefix: &[u8],
        start: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let from = if start.is_empty() {
            prefix.to_vec()
        } else {
            start.to_vec()
        };
        Ok(self.read(|m| {
            m.get(&cf)
                .map(|t| {
                    t.range(from..)
                        .take_while(|(k, _)| k.starts_with(prefix))
                        .take(limit)
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default()
        }))
    }
}

impl KvStore for MemoryStore {
    fn write(&self, batch: WriteBatch) -> Result<()> {
        let mut guard = self.cfs.write().unwrap_or_else(|e| e.into_inner());
        let ranges = batch.ranges;
        for (cf, k, v) in batch.ops {
            let t = guard.entry(cf).or_default();
            match v {
                Some(v) => {
                    t.insert(k, v);
                }
                None => {
                    t.remove(&k);
                }
            }
        }
        for (cf, from, to) in ranges {
            if from < to {
                let t = guard.entry(cf).or_default();
                let doomed: Vec<Vec<u8>> = t.range(from..to).map(|(k, _)| k.clone()).collect();
                for k in doomed {
                    t.remove(&k);
                }
            }
        }
        Ok(())
    }
}
