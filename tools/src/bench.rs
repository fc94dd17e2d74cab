//! `atonomi bench runtime`: runtime throughput on RocksDB, with the time split into
//! execution, state-root computation and the write, and storage figures at scale.

use crate::error::{Result, ToolError};
use atonomi_genesis::{dev, Allocation, Genesis};
use atonomi_primitives::event::TxStatus;
use atonomi_primitives::state::{Direction, StateKey, Subject};
use atonomi_primitives::tx::{Call, DeviceRegistration, ReputationWrite};
use atonomi_primitives::{
    AccountId, Amount, DeviceId, Height, Keypair, Score, Timestamp, Transaction,
};
use atonomi_runtime::{execute_block, genesis_diff, BlockContext, SigCheck};
use atonomi_storage::{RocksConfig, RocksStore, StateDb};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct RuntimeArgs {
    /// Transfers to execute (in blocks of --block-txs).
    #[arg(long, default_value_t = 100_000)]
    transfers: usize,
    /// Transactions per block for the transfer run (= number of sending accounts).
    #[arg(long, default_value_t = 5_000)]
    block_txs: usize,
    /// Devices to register, in `RegisterDevices` batches of --batch.
    #[arg(long, default_value_t = 1_000_000)]
    devices: usize,
    /// Devices per `RegisterDevices` transaction (and entries per reputation tx).
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    /// Batch transactions per block for the registration and reputation runs.
    #[arg(long, default_value_t = 10)]
    batches_per_block: usize,
    /// Reputation entries to write.
    #[arg(long, default_value_t = 100_000)]
    reputation: usize,
    /// Random point lookups after registration.
    #[arg(long, default_value_t = 100_000)]
    lookups: usize,
    /// Database directory (a fresh temporary one if omitted; it must not exist).
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Signed transfers to verify per measurement.
    #[arg(long, default_value_t = 20_000)]
    signatures: usize,
    /// Distinct signing accounts among them (a batch coalesces signatures by one key,
    /// so fewer signers flatter the batch figure; blocks mostly carry distinct ones).
    #[arg(long, default_value_t = 20_000)]
    signers: usize,
}

/// ed25519 verifications per second under the signature rule: one at a time on one
/// core, in batches on one core, and in batches on all cores (the runtime's verifier),
/// over signed transfers as blocks carry them.
pub fn verify(args: VerifyArgs) -> Result<()> {
    if args.signatures == 0 || args.signers == 0 {
        return Err(ToolError::Usage(
            "--signatures and --signers must be positive",
        ));
    }
    let keys: Vec<Keypair> = (0..args.signers.min(args.signatures))
        .map(|i| Keypair::from_label(&format!("atonomi bench verify {i}")))
        .collect();
    let chain_id = dev::genesis().chain_id;
    let txs: Vec<Vec<u8>> = (0..args.signatures)
        .map(|i| {
            let key = &keys[i % keys.len()];
            let call = Call::Transfer {
                to: key.account(),
                amount: Amount::new(1),
            };
            Transaction {
                chain_id: chain_id.clone(),
                signer: key.account(),
                nonce: (i / keys.len()) as u64,
                max_fee: None,
                call,
            }
            .sign(key)
            .to_bytes()
        })
        .collect();
    let decoded: Vec<atonomi_primitives::SignedTransaction> = txs
        .iter()
        .map(|b| atonomi_primitives::SignedTransaction::from_bytes(b))
        .collect::<Result<_, _>>()?;
    let t = Instant::now();
    let single = decoded
        .iter()
        .filter(|t| t.verify_signature().is_ok())
        .count();
    let single_rate = single as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let checks: Vec<_> = decoded.iter().map(|t| t.signature_check()).collect();
    let batched = atonomi_primitives::crypto::verify_each(&checks)
        .into_iter()
        .filter(|ok| *ok)
        .count();
    let batch_rate = batched as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let all = atonomi_runtime::verify_signatures(&txs)
        .into_iter()
        .filter(|ok| *ok)
        .count();
    let all_cores = all as f64 / t.elapsed().as_secs_f64();
    if single != txs.len() || batched != txs.len() || all != txs.len() {
        return Err(ToolError::Broken("every probe signature must verify"));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "{}",
        serde_json::json!({
            "signatures": txs.len(),
            "signers": keys.len(),
            "single_per_s_one_core": single_rate.round(),
            "batch_per_s_one_core": batch_rate.round(),
            "batch_per_s_all_cores": all_cores.round(),
            "cores": cores,
        })
    );
    Ok(())
}

/// Time split of a run.
#[derive(Default)]
struct Split {
    execute: Duration,
    root: Duration,
    write: Duration,
    items: usize,
}

impl Split {
    fn total(&self) -> Duration {
        self.execute + self.root + self.write
    }

    fn report(&self, what: &str, unit: &str) {
        if self.items == 0 {
            println!("{what}: skipped (no work in this phase with these sizes)");
            return;
        }
        let t = self.total().as_secs_f64();
        let pct = |d: Duration| 100.0 * d.as_secs_f64() / t.max(1e-9);
        println!(
            "{what}: {:.0} {unit}/s ({} {unit} in {:.2} s; execute {:.0}%, state root {:.0}%, RocksDB write {:.0}%)",
            self.items as f64 / t.max(1e-9),
            self.items,
            t,
            pct(self.execute),
            pct(self.root),
            pct(self.write),
        );
    }
}

struct Bench {
    db: StateDb<RocksStore>,
    genesis: Genesis,
    height: u64,
}

impl Bench {
    fn block(&mut self, txs: &[Vec<u8>], sig: SigCheck, split: &mut Split) -> Result<()> {
        let h = self.height + 1;
        let ctx = BlockContext {
            chain_id: self.genesis.chain_id.clone(),
            height: Height::new(h),
            timestamp: Timestamp::new(self.genesis.genesis_time_ms + h * 1_000),
            upgrades: Default::default(),
        };
        let t0 = Instant::now();
        let reader = |k: &[u8]| self.db.get(k);
        let out = execute_block(&reader, &ctx, txs, sig)?;
        let t1 = Instant::now();
        let (staged, batch) = self.db.prepare_commit(&out.diff, h)?;
        let t2 = Instant::now();
        self.db.write_and_apply(batch, staged)?;
        let t3 = Instant::now();
        split.execute += t1 - t0;
        split.root += t2 - t1;
        split.write += t3 - t2;
        if let Some(bad) = out.receipts.iter().find(|r| r.status != TxStatus::Success) {
            return Err(ToolError::BlockTxFailed {
                height: h,
                status: bad.status.clone(),
            });
        }
        self.height = h;
        Ok(())
    }

    fn tx(&self, key: &Keypair, nonce: u64, call: Call) -> Vec<u8> {
        Transaction {
            chain_id: self.genesis.chain_id.clone(),
            signer: key.account(),
            nonce,
            max_fee: None,
            call,
        }
        .sign(key)
        .to_bytes()
    }
}

fn dir_size(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    e.metadata().map_or(0, |m| {
                        if m.is_dir() {
                            dir_size(&e.path())
                        } else {
                            m.len()
                        }
                    })
                })
                .sum()
        })
        .unwrap_or(0)
}

/// The value at fraction `p` (0..=1) of sorted samples, nearest rank; the default for
/// no samples. For printed figures only.
pub(crate) fn percentile<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub fn runtime(args: RuntimeArgs) -> Result<()> {
    let tmp = std::env::temp_dir().join(format!("atonomi-bench-{}", std::process::id()));
    let dir = args.dir.clone().unwrap_or(tmp);
    if dir.exists() {
        return Err(ToolError::DirExists(dir));
    }
    let result = run(&args, &dir);
    if args.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn run(args: &RuntimeArgs, dir: &std::path::Path) -> Result<()> {
    let senders: Vec<Keypair> = (0..args.block_txs)
        .map(|i| Keypair::from_label(&format!("bench sender {i}")))
        .collect();
    let mut genesis = dev::genesis();
    let maker = dev::key("manufacturer");
    let auditor = dev::key("auditor");
    // Re-split the supply: every sender gets 1 ATMI, the manufacturer enough for the
    // registration fees, the admin keeps the rest.
    let per_sender = Amount::new(Amount::ONE_ATMI);
    let maker_funds = Amount::new((args.devices as u128 + 1_000) * Amount::ONE_ATMI);
    let supply = genesis.token.total_supply.get();
    let rest = supply - per_sender.get() * senders.len() as u128 - maker_funds.get();
    genesis.allocations = vec![
        Allocation {
            account: dev::key("admin").account(),
            amount: Amount::new(rest),
        },
        Allocation {
            account: maker.account(),
            amount: maker_funds,
        },
    ];
    genesis
        .allocations
        .extend(senders.iter().map(|k| Allocation {
            account: k.account(),
            amount: per_sender,
        }));
    let mut params = genesis.params.clone();
    params.max_batch = params.max_batch.max(args.batch as u32);
    genesis.params = params;
    genesis.validate()?;

    // The signature-verification bound: ed25519 verifications per second on one core.
    let probe: Vec<_> = (0..2_000u32)
        .map(|i| {
            Transaction {
                chain_id: genesis.chain_id.clone(),
                signer: senders[0].account(),
                nonce: u64::from(i),
                max_fee: None,
                call: Call::Burn {
                    amount: Amount::new(1),
                },
            }
            .sign(&senders[0])
        })
        .collect();
    let t = Instant::now();
    let valid = probe
        .iter()
        .filter(|tx| tx.verify_signature().is_ok())
        .count();
    if valid != probe.len() {
        return Err(ToolError::Broken("probe signatures must verify"));
    }
    println!(
        "ed25519 strict verification, one core: {:.0} signatures/s",
        probe.len() as f64 / t.elapsed().as_secs_f64()
    );

    let store = RocksStore::open(dir, &RocksConfig::default())?;
    let db = StateDb::open(store)?;
    db.commit(&genesis_diff(&genesis.state())?, 0)?;
    let mut b = Bench {
        db,
        genesis,
        height: 0,
    };
    println!(
        "runtime benchmark on RocksDB at {} (fsync per block, one block = one atomic write batch)",
        dir.display()
    );

    // (a) Transfers: each sender sends one transfer per block to the next sender.
    let blocks = args.transfers.div_ceil(args.block_txs.max(1));
    let mut signed: Vec<Vec<Vec<u8>>> = Vec::with_capacity(blocks);
    for n in 0..blocks {
        signed.push(
            senders
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    let to = senders[(i + 1) % senders.len()].account();
                    b.tx(
                        k,
                        n as u64,
                        Call::Transfer {
                            to,
                            amount: Amount::new(1),
                        },
                    )
                })
                .collect(),
        );
    }
    let (half_a, half_b) = signed.split_at(blocks / 2);
    let mut trusted = Split::default();
    for txs in half_a {
        b.block(txs, SigCheck::Trusted, &mut trusted)?;
        trusted.items += txs.len();
    }
    trusted.report("transfers, signatures pre-verified (mempool path)", "tx");
    let mut verified = Split::default();
    for txs in half_b {
        b.block(txs, SigCheck::Verify, &mut verified)?;
        verified.items += txs.len();
    }
    verified.report("transfers, signatures verified in the block", "tx");

    // (b) Whitelist registration in batches.
    let device_keys: Vec<AccountId> = (0..1_000)
        .map(|i| Keypair::from_label(&format!("bench device {i}")).account())
        .collect();
    let device_id = |i: usize| DeviceId::derive(b"bench salt", &(i as u64).to_le_bytes());
    let mut maker_nonce = 0u64;
    let mut reg = Split::default();
    let mut next = 0usize;
    let mut lookup_at_100k = None;
    while next < args.devices {
        let mut txs = Vec::new();
        while txs.len() < args.batches_per_block && next < args.devices {
            let end = (next + args.batch).min(args.devices);
            let devices: Vec<DeviceRegistration> = (next..end)
                .map(|i| DeviceRegistration {
                    device_id: device_id(i),
                    public_key: device_keys[i % device_keys.len()],
                    protocols: vec!["mqtt".into()],
                    metadata: vec![],
                })
                .collect();
            txs.push(b.tx(
                &maker,
                maker_nonce,
                Call::RegisterDevices {
                    manufacturer: dev::MANUFACTURER,
                    devices,
                },
            ));
            maker_nonce += 1;
            next = end;
        }
        let before = reg.items;
        b.block(&txs, SigCheck::Verify, &mut reg)?;
        reg.items = next;
        if before < 100_000 && next >= 100_000 && lookup_at_100k.is_none() {
            lookup_at_100k = Some(lookups(&b, next, args.lookups.min(20_000), device_id)?);
        }
    }
    reg.report(
        &format!("device registration in batches of {}", args.batch),
        "devices",
    );

    // (c) Reputation writes about registered devices.
    let mut rep = Split::default();
    let mut auditor_nonce = 0u64;
    let mut written = 0usize;
    let mut round = 0u32;
    while written < args.reputation {
        let mut txs = Vec::new();
        while txs.len() < args.batches_per_block && written < args.reputation {
            let end = (written + args.batch).min(args.reputation);
            let entries: Vec<ReputationWrite> = (written..end)
                .map(|i| ReputationWrite {
                    subject: Subject::Device(device_id(i % args.devices.max(1))),
                    rep_type: "trust".into(),
                    score: Score::new(5_000 + round % 1_000).unwrap_or_default(),
                    direction: Direction::Up,
                })
                .collect();
            txs.push(b.tx(
                &auditor,
                auditor_nonce,
                Call::WriteReputation {
                    auditor: dev::AUDITOR,
                    entries,
                },
            ));
            auditor_nonce += 1;
            written = end;
        }
        b.block(&txs, SigCheck::Verify, &mut rep)?;
        rep.items = written;
        round += 1;
    }
    rep.report("reputation writes", "writes");

    // (d) Storage at scale.
    b.db.kv().flush()?;
    let bytes = dir_size(dir);
    println!(
        "bytes on disk: {} MiB for {} devices and {} blocks = {:.0} bytes per device (values, links, log, undo of the kept heights; flushed, before compaction)",
        bytes >> 20,
        args.devices,
        b.height,
        bytes as f64 / args.devices.max(1) as f64
    );
    if let Some((p50, p99)) = lookup_at_100k {
        println!(
            "device lookup at 100k devices: p50 {:.1} µs, p99 {:.1} µs",
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6
        );
    }
    let (p50, p99) = lookups(&b, args.devices, args.lookups, device_id)?;
    println!(
        "device lookup at {} devices: p50 {:.1} µs, p99 {:.1} µs (RocksDB point read + decode)",
        args.devices,
        p50.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6
    );
    let mut proof_times = Vec::new();
    let mut proof_bytes = 0usize;
    for i in 0..1_000.min(args.devices) {
        let key = StateKey::Device(device_id((i * 7_919) % args.devices)).to_bytes();
        let t = Instant::now();
        let (_, p) = b.db.prove(&key, b.height)?;
        proof_times.push(t.elapsed());
        proof_bytes += p.to_bytes().len();
    }
    proof_times.sort();
    println!(
        "device proof at {} devices: p50 {:.1} µs, p99 {:.1} µs, {} bytes average",
        args.devices,
        percentile(&proof_times, 0.5).as_secs_f64() * 1e6,
        percentile(&proof_times, 0.99).as_secs_f64() * 1e6,
        proof_bytes / proof_times.len().max(1)
    );
    Ok(())
}

/// Random point lookups of registered devices: (p50, p99).
fn lookups(
    b: &Bench,
    registered: usize,
    n: usize,
    device_id: impl Fn(usize) -> DeviceId,
) -> Result<(Duration, Duration)> {
    let mut times = Vec::with_capacity(n);
    // A fixed multiplicative walk over the ids: spread out, deterministic.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..n {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let i = (x >> 33) as usize % registered.max(1);
        let key = StateKey::Device(device_id(i)).to_bytes();
        let t = Instant::now();
        let v =
            b.db.get(&key)?
                .ok_or(ToolError::Missing("a registered device"))?;
        let _: atonomi_primitives::state::Device = atonomi_primitives::codec::decode(&v, 1 << 20)?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok((percentile(&times, 0.5), percentile(&times, 0.99)))
}
