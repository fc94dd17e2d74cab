//! The state log's tests: every rule here fails its test when it is removed.

use super::snapshot::SnapshotChunk;
use super::*;
use crate::{KvRead, MemoryStore, RocksConfig, RocksStore};
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
    let rows = |log: &StateDb<RocksStore>, cf| log.kv().range(cf, &[], &[0xff; 9]).unwrap().len();
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
