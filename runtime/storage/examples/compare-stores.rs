//! Issue 16's micro-benchmark: the authenticated-state candidates side by side, in one
//! process on RocksDB on disk.
//!
//! ```sh
//! cargo run -p atonomi-storage --example compare-stores -- --store log --devices 10000000
//! cargo run -p atonomi-storage --example compare-stores -- --store jmt-pruned --devices 10000000
//! cargo run -p atonomi-storage --example compare-stores -- --store jmt --devices 1000000
//! ```
//!
//! Phase 1 registers `--devices` devices in batches of 1,000, ten batches per block
//! (each device one 33-byte key and a 140-byte record, 64 bytes of it random, like a
//! `Device`), with the manufacturer's record and the fee payer's account rewritten per
//! batch. At 100k, 1M, 10M (and the end) it flushes the memtables and reports the
//! segment's devices/s, keys and bytes written per device, bytes on disk per device,
//! point-lookup and proof latency, proof size and resident memory. Phase 2 runs
//! `--mixed-blocks` blocks of 10,000 operations: a third activations (a device record
//! rewritten), a third reputation writes (an entry and an aggregate), a third
//! transfers (two of 100,000 accounts).
//!
//! Stores: `jmt` is the node's store before the state log (a Jellyfish Merkle tree,
//! every version kept, values twice); `jmt-pruned` is the same tree with the top three
//! levels cached in memory, stale nodes deleted at once (no history kept: the most
//! favourable case for it) and no versioned value copy; `log` is the state log, the
//! node's store (`StateDb`, its default retention of 2,048 versions).

use atonomi_primitives::{codec, Hash};
use atonomi_storage::{Cf, KvRead, KvStore, RocksConfig, RocksStore, StateDb, WriteBatch};
use clap::{Parser, ValueEnum};
use jmt::storage::{LeafNode, Node, NodeKey, TreeReader};
use jmt::{JellyfishMerkleTree, KeyHash, OwnedValue, SimpleHasher, Version};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

type Diff = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Kind {
    Jmt,
    JmtPruned,
    Log,
}

/// Compare authenticated-state stores on RocksDB (issue 16).
#[derive(Parser, Debug)]
struct Args {
    /// Which store to measure.
    #[arg(long, value_enum)]
    store: Kind,
    /// Devices to register in phase 1.
    #[arg(long, default_value_t = 1_000_000)]
    devices: u64,
    /// Blocks of 10,000 mixed operations in phase 2.
    #[arg(long, default_value_t = 30)]
    mixed_blocks: u64,
    /// Directory for the database (a fresh temporary one by default).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Stop when the disk holding the database has less free space than this (GiB).
    #[arg(long, default_value_t = 10)]
    min_free_gib: u64,
}

trait Store {
    fn commit(&mut self, diff: &Diff, version: u64) -> anyhow::Result<Hash>;
    fn get(&self, key: &[u8]) -> anyhow::Result<Option<Vec<u8>>>;
    /// Bytes of the proof of `key` at the latest version.
    fn proof_len(&self, key: &[u8]) -> anyhow::Result<usize>;
    fn rocks(&self) -> &RocksStore;
    /// Keys and bytes written so far.
    fn written(&self) -> (u64, u64);
    /// Memory the store holds beyond RocksDB's caches.
    fn memory(&self) -> usize;
}

struct Written(u64, u64);

impl Written {
    fn add(&mut self, b: &WriteBatch) {
        self.0 += b.len() as u64;
        self.1 += b.bytes() as u64;
    }
}

/// blake3 for the Jellyfish tree (as the node hashed it before the state log).
#[derive(Clone, Debug, Default)]
struct Blake3Hasher(blake3::Hasher);

impl SimpleHasher for Blake3Hasher {
    fn new() -> Self {
        Blake3Hasher(blake3::Hasher::new())
    }
    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    fn finalize(self) -> [u8; 32] {
        *self.0.finalize().as_bytes()
    }
}

fn key_hash(key: &[u8]) -> KeyHash {
    KeyHash::with::<Blake3Hasher>(key)
}

/// The Jellyfish Merkle store. `pruned: false` is the node's store before the state
/// log: every node version and every value version kept. `pruned: true` caches the
/// top levels, deletes stale nodes at once and keeps values only in `state`.
struct Jmt {
    kv: RocksStore,
    pruned: bool,
    cache: Mutex<HashMap<NodeKey, Node>>,
    /// The raw key a proof is being made for (jmt asks for its value by hash).
    asking: Mutex<Option<(KeyHash, Vec<u8>)>>,
    version: Option<u64>,
    w: Written,
}

const CACHED_NIBBLES: usize = 3;

fn value_key(kh: &KeyHash, version: Version) -> Vec<u8> {
    let mut k = kh.0.to_vec();
    k.extend_from_slice(&version.to_be_bytes());
    k
}

impl TreeReader for Jmt {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        if let Some(n) = self.cache.lock().unwrap().get(node_key) {
            return Ok(Some(n.clone()));
        }
        match self.kv.get(Cf::TreeNodes, &codec::encode(node_key))? {
            None => Ok(None),
            Some(b) => Ok(Some(codec::decode(&b, 64 << 20)?)),
        }
    }
    fn get_value_option(&self, v: Version, kh: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
        if !self.pruned {
            // As the node's Jellyfish store read it: the newest version at or before `v`.
            return match self
                .kv
                .get_at_or_before(Cf::TreeValues, &value_key(&kh, v), &kh.0)?
            {
                Some((_, b)) => Ok(codec::decode::<Option<Vec<u8>>>(&b, 64 << 20)?),
                None => Ok(None),
            };
        }
        match &*self.asking.lock().unwrap() {
            Some((h, raw)) if *h == kh => Ok(self.kv.get(Cf::State, raw)?),
            _ => anyhow::bail!("values are read from the state column"),
        }
    }
    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        anyhow::bail!("not used")
    }
}

impl Store for Jmt {
    fn commit(&mut self, diff: &Diff, version: u64) -> anyhow::Result<Hash> {
        let tree = JellyfishMerkleTree::<_, Blake3Hasher>::new(&*self);
        let (root, update) = if !diff.is_empty() && diff.values().all(Option::is_some) {
            let kvs: Vec<(KeyHash, OwnedValue)> = diff
                .iter()
                .filter_map(|(k, v)| v.clone().map(|v| (key_hash(k), v)))
                .collect();
            let (roots, b) = tree.batch_put_value_sets(vec![kvs], None, version)?;
            (roots[0], b)
        } else {
            tree.put_value_set(diff.iter().map(|(k, v)| (key_hash(k), v.clone())), version)?
        };
        let mut batch = WriteBatch::new();
        let mut cache = self.cache.lock().unwrap();
        for (k, n) in update.node_batch.nodes() {
            batch.put(Cf::TreeNodes, codec::encode(k), codec::encode(n));
            if self.pruned && k.nibble_path().num_nibbles() < CACHED_NIBBLES {
                cache.insert(k.clone(), n.clone());
            }
        }
        if self.pruned {
            for stale in &update.stale_node_index_batch {
                batch.delete(Cf::TreeNodes, codec::encode(&stale.node_key));
                cache.remove(&stale.node_key);
            }
        } else {
            for ((v, kh), value) in update.node_batch.values() {
                batch.put(Cf::TreeValues, value_key(kh, *v), codec::encode(value));
            }
        }
        drop(cache);
        for (k, v) in diff {
            match v {
                Some(v) => batch.put(Cf::State, k.clone(), v.clone()),
                None => batch.delete(Cf::State, k.clone()),
            }
        }
        self.w.add(&batch);
        self.kv.write(batch)?;
        self.version = Some(version);
        Ok(Hash(root.0))
    }
    fn get(&self, key: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self.kv.get(Cf::State, key)?)
    }
    fn proof_len(&self, key: &[u8]) -> anyhow::Result<usize> {
        *self.asking.lock().unwrap() = Some((key_hash(key), key.to_vec()));
        let tree = JellyfishMerkleTree::<_, Blake3Hasher>::new(self);
        let (_, p) = tree.get_with_proof(key_hash(key), self.version.unwrap_or(0))?;
        Ok(borsh::to_vec(&p)?.len())
    }
    fn rocks(&self) -> &RocksStore {
        &self.kv
    }
    fn written(&self) -> (u64, u64) {
        (self.w.0, self.w.1)
    }
    fn memory(&self) -> usize {
        // Cached internal nodes: 16 children of ~40 bytes each.
        self.cache.lock().unwrap().len() * 16 * 40
    }
}

struct Log(StateDb<RocksStore>);

impl Store for Log {
    fn commit(&mut self, diff: &Diff, version: u64) -> anyhow::Result<Hash> {
        Ok(self.0.commit(diff, version)?)
    }
    fn get(&self, key: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self.0.get(key)?)
    }
    fn proof_len(&self, key: &[u8]) -> anyhow::Result<usize> {
        Ok(self.0.prove_latest(key)?.1.to_bytes().len())
    }
    fn rocks(&self) -> &RocksStore {
        self.0.kv()
    }
    fn written(&self) -> (u64, u64) {
        let s = self.0.stats();
        (s.keys, s.bytes)
    }
    fn memory(&self) -> usize {
        self.0.memory_bytes()
    }
}

fn h(tag: &[u8], i: u64) -> [u8; 32] {
    let mut x = blake3::Hasher::new();
    x.update(tag);
    x.update(&i.to_le_bytes());
    *x.finalize().as_bytes()
}

fn device_key(i: u64) -> Vec<u8> {
    let mut k = vec![0x30];
    k.extend_from_slice(&h(b"device", i));
    k
}

fn device_record(i: u64, status: u8) -> Vec<u8> {
    let mut v = Vec::with_capacity(140);
    v.extend_from_slice(&h(b"device", i));
    v.extend_from_slice(&7u32.to_le_bytes());
    v.extend_from_slice(&h(b"device key", i));
    v.resize(100, 0);
    v.push(status);
    v.extend_from_slice(&(i / 10_000).to_le_bytes());
    v.resize(140, 0);
    v
}

fn account_key(i: u64) -> Vec<u8> {
    let mut k = vec![0x10];
    k.extend_from_slice(&h(b"account", i));
    k
}

fn rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        / 1024
}

fn dir_bytes(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn free_gib(p: &Path) -> u64 {
    // statvfs through `df`, to stay free of libc bindings in an example.
    std::process::Command::new("df")
        .args(["--output=avail", "-B1G"])
        .arg(p)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().nth(1)?.trim().parse().ok())
        .unwrap_or(u64::MAX)
}

fn percentile(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

/// Deterministic pseudo-random numbers (xorshift), so every store sees the same work.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn report(
    store: &dyn Store,
    dir: &Path,
    devices: u64,
    seg_devices: u64,
    seg_time: Duration,
    seg_written: (u64, u64),
    rng: &mut Rng,
) -> anyhow::Result<serde_json::Value> {
    store.rocks().flush()?;
    let disk = dir_bytes(dir);
    let mut lookups = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        let k = device_key(rng.next() % devices);
        let t = Instant::now();
        let v = store.get(&k)?;
        lookups.push(t.elapsed());
        anyhow::ensure!(v.is_some(), "a registered device is missing");
    }
    let mut proofs = Vec::with_capacity(300);
    let mut proof_bytes = 0;
    for _ in 0..300 {
        let k = device_key(rng.next() % devices);
        let t = Instant::now();
        proof_bytes += store.proof_len(&k)?;
        proofs.push(t.elapsed());
    }
    let line = serde_json::json!({
        "devices": devices,
        "devices_per_s": (seg_devices as f64 / seg_time.as_secs_f64()).round(),
        "keys_written_per_device": (seg_written.0 as f64 / seg_devices as f64 * 100.0).round() / 100.0,
        "bytes_written_per_device": (seg_written.1 as f64 / seg_devices as f64).round(),
        "disk_bytes_per_device": (disk as f64 / devices as f64).round(),
        "lookup_p50_us": percentile(&mut lookups, 0.5).round(),
        "lookup_p99_us": percentile(&mut lookups, 0.99).round(),
        "proof_p50_us": percentile(&mut proofs, 0.5).round(),
        "proof_bytes": proof_bytes / 300,
        "rss_mb": rss_mb(),
        "store_memory_mb": store.memory() >> 20,
    });
    println!("{line}");
    Ok(line)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let tmp;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let cfg = RocksConfig::default();
    let rocks = RocksStore::open(&dir, &cfg)?;
    let mut store: Box<dyn Store> = match args.store {
        Kind::Jmt | Kind::JmtPruned => Box::new(Jmt {
            kv: rocks,
            pruned: args.store == Kind::JmtPruned,
            cache: Mutex::new(HashMap::new()),
            asking: Mutex::new(None),
            version: None,
            w: Written(0, 0),
        }),
        Kind::Log => Box::new(Log(StateDb::open(rocks)?)),
    };
    println!(
        "{{\"store\": \"{:?}\", \"devices\": {}, \"dir\": \"{}\"}}",
        args.store,
        args.devices,
        dir.display()
    );
    // Genesis: 100,000 funded accounts and a manufacturer.
    let mut genesis = Diff::new();
    for a in 0..100_000 {
        genesis.insert(account_key(a), Some(vec![1; 24]));
    }
    genesis.insert(vec![0x20, 0, 0, 0, 7], Some(vec![0; 80]));
    store.commit(&genesis, 0)?;
    let mut version = 0u64;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let marks: Vec<u64> = [100_000u64, 1_000_000, 10_000_000, 100_000_000]
        .into_iter()
        .filter(|m| *m < args.devices)
        .chain([args.devices])
        .collect();
    let mut results = Vec::new();
    let (mut registered, mut seg_start, mut seg_time) = (0u64, 0u64, Duration::ZERO);
    let mut seg_written = store.written();
    for &mark in &marks {
        while registered < mark {
            if registered % 1_000_000 == 0 && free_gib(&dir) < args.min_free_gib {
                println!(
                    "stopping at {registered} devices: less than {} GiB free",
                    args.min_free_gib
                );
                break;
            }
            let mut diff = Diff::new();
            let block = (mark - registered).min(10_000);
            for i in registered..registered + block {
                diff.insert(device_key(i), Some(device_record(i, 0)));
            }
            for b in 0..block.div_ceil(1000) {
                // Per batch of 1,000: the manufacturer's count and the fee payer.
                diff.insert(
                    vec![0x20, 0, 0, 0, 7],
                    Some((registered + b).to_le_bytes().repeat(10)),
                );
                diff.insert(
                    account_key(b),
                    Some((registered + b).to_le_bytes().repeat(3)),
                );
            }
            version += 1;
            let t = Instant::now();
            store.commit(&diff, version)?;
            seg_time += t.elapsed();
            registered += block;
        }
        let w = store.written();
        results.push(report(
            &*store,
            &dir,
            registered,
            registered - seg_start,
            seg_time,
            (w.0 - seg_written.0, w.1 - seg_written.1),
            &mut rng,
        )?);
        seg_written = w;
        seg_start = registered;
        seg_time = Duration::ZERO;
        if registered < mark {
            break;
        }
    }
    // Phase 2: mixed blocks.
    let before = store.written();
    let mut mixed_time = Duration::ZERO;
    let mut ops = 0u64;
    for _ in 0..args.mixed_blocks {
        let mut diff = Diff::new();
        for j in 0..3_334u64 {
            let d = rng.next() % registered;
            diff.insert(device_key(d), Some(device_record(d, 1)));
            let subject = rng.next() % registered;
            let mut rep = vec![0x40];
            rep.extend_from_slice(&h(b"device", subject));
            rep.extend_from_slice(b"\x04\0\0\0perf\0\0\0\x03");
            diff.insert(rep.clone(), Some((version + j).to_le_bytes().repeat(3)));
            rep[0] = 0x41;
            rep.truncate(rep.len() - 4);
            diff.insert(rep, Some((version + j).to_le_bytes().repeat(3)));
            let (a, b) = (rng.next() % 100_000, rng.next() % 100_000);
            diff.insert(account_key(a), Some((version + j).to_le_bytes().repeat(3)));
            diff.insert(
                account_key(b),
                Some((version + j + 1).to_le_bytes().repeat(3)),
            );
        }
        ops += 10_000;
        version += 1;
        let t = Instant::now();
        store.commit(&diff, version)?;
        mixed_time += t.elapsed();
    }
    let after = store.written();
    store.rocks().flush()?;
    let mixed = serde_json::json!({
        "mixed_ops_per_s": (ops as f64 / mixed_time.as_secs_f64()).round(),
        "mixed_keys_written_per_op": ((after.0 - before.0) as f64 / ops as f64 * 100.0).round() / 100.0,
        "mixed_bytes_written_per_op": ((after.1 - before.1) as f64 / ops as f64).round(),
        "disk_bytes_per_device_after_mixed": (dir_bytes(&dir) as f64 / registered as f64).round(),
        "rss_mb": rss_mb(),
    });
    println!("{mixed}");
    println!(
        "{}",
        serde_json::json!({"store": format!("{:?}", args.store), "registration": results, "mixed": mixed})
    );
    Ok(())
}
