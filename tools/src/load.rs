//! `atonomi bench load`: an open-loop load generator against running nodes. It sets up
//! and pre-signs one workload — transfers from funded accounts, `RegisterDevices`
//! batches, `WriteReputation` batches, or `Pay` between registered, activated, funded
//! and rated devices — submits it in JSON-RPC batches at a fixed offered rate (spread
//! over the given nodes), follows finality through a block subscription, and reports
//! finalized tx/s, commit latency percentiles and a sample of receipt outcomes.

use crate::error::{Result, ToolError};
use atonomi_api::rpc::ValidateParams;
use atonomi_client::views::{BatchAnswer, TxLookup, ValidationAt};
use atonomi_client::{Answered, AtonomiApiClient, Node};
use atonomi_primitives::tx::Call;
use atonomi_primitives::{Amount, ChainId, Hash, Keypair, Transaction, TxStatus};
use jsonrpsee::rpc_params;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Node JSON-RPC URLs, comma-separated; batches go round-robin.
    #[arg(long, default_value = "http://127.0.0.1:8645", value_delimiter = ',')]
    rpc: Vec<String>,
    /// Key file of a funded account that pays the senders.
    #[arg(long)]
    funder: PathBuf,
    /// Sender accounts (each sends its transactions in nonce order).
    #[arg(long, default_value_t = 200)]
    accounts: usize,
    /// Transactions in all.
    #[arg(long, default_value_t = 10_000)]
    txs: usize,
    /// Offered load, transactions per second.
    #[arg(long, default_value_t = 1_000)]
    rate: u64,
    /// Transactions per JSON-RPC batch.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Give up waiting for finality this long after the last submission.
    #[arg(long, default_value_t = 60)]
    drain_secs: u64,
    /// Whitelist load instead of transfers: each transaction is a `RegisterDevices` batch
    /// of this many new devices, signed by --funder as a key of --manufacturer (which pays
    /// the registration fees). 0: transfers.
    #[arg(long, default_value_t = 0)]
    devices_per_tx: usize,
    /// Reputation load instead of transfers: each transaction is a `WriteReputation`
    /// batch of this many entries about devices registered for the run, signed by
    /// --funder as a key of auditor --auditor (needs --maker). 0: off.
    #[arg(long, default_value_t = 0)]
    reputation_per_tx: usize,
    /// Device-payment load: this many payer devices (and as many payees) are
    /// registered (--maker), activated and funded by --funder as their owner, rated by
    /// --auditor-key, then each transaction is a `Pay` signed by a payer device key.
    /// 0: off.
    #[arg(long, default_value_t = 0)]
    payers: usize,
    /// Key file of the manufacturer that registers the devices reputation and payment
    /// loads need.
    #[arg(long)]
    maker: Option<PathBuf>,
    /// Key file of the auditor that rates the payment load's devices.
    #[arg(long)]
    auditor_key: Option<PathBuf>,
    /// The auditor writing reputation (with --reputation-per-tx).
    #[arg(long, default_value_t = 1)]
    auditor: u32,
    /// The manufacturer registering devices (with --devices-per-tx).
    #[arg(long, default_value_t = 1)]
    manufacturer: u32,
    /// The chain's checkpoint_interval, to report devices per Ethereum checkpoint.
    #[arg(long, default_value_t = 100)]
    checkpoint_interval: u64,
}

/// Pre-signed `RegisterDevices` batches from the manufacturer key, fresh device ids;
/// also up to [`SAMPLE_DEVICES`] of the ids, spread over the run (for lookups later).
fn registrations(
    args: &LoadArgs,
    key: &Keypair,
    chain_id: &ChainId,
    mut nonce: u64,
) -> (Vec<(Hash, String)>, Vec<String>) {
    let run = Keypair::generate().map(|k| k.to_seed()).unwrap_or_default();
    let id = |i: usize, j: usize| {
        atonomi_primitives::DeviceId::new(
            *blake3::hash(
                &[
                    &run[..],
                    &(i as u64).to_le_bytes(),
                    &(j as u64).to_le_bytes(),
                ]
                .concat(),
            )
            .as_bytes(),
        )
    };
    let every = (args.txs * args.devices_per_tx)
        .div_ceil(SAMPLE_DEVICES)
        .max(1);
    let sample = (0..args.txs * args.devices_per_tx)
        .step_by(every)
        .map(|n| id(n / args.devices_per_tx, n % args.devices_per_tx).to_string())
        .collect();
    let txs = (0..args.txs)
        .map(|i| {
            let devices = (0..args.devices_per_tx)
                .map(|j| atonomi_primitives::tx::DeviceRegistration {
                    device_id: id(i, j),
                    public_key: key.account(),
                    protocols: vec![],
                    metadata: vec![],
                })
                .collect();
            let call = Call::RegisterDevices {
                manufacturer: atonomi_primitives::ManufacturerId::new(args.manufacturer),
                devices,
            };
            let tx = Transaction {
                chain_id: chain_id.clone(),
                signer: key.account(),
                nonce,
                max_fee: None,
                call,
            }
            .sign(key);
            nonce += 1;
            (tx.hash(), hex::encode(tx.to_bytes()))
        })
        .collect();
    (txs, sample)
}

/// Submissions awaiting their answer at once.
const MAX_IN_FLIGHT: usize = 64;

/// Device ids of a whitelist run reported for later lookups.
const SAMPLE_DEVICES: usize = 64;

/// Latency at every percentile 0..=100 and at 99.9 (for plots of the distribution).
fn distribution(sorted: &[f64]) -> Value {
    let mut points: Vec<(f64, f64)> = (0..=100)
        .map(|p| (f64::from(p), percentile(sorted, f64::from(p) / 100.0)))
        .collect();
    points.insert(100, (99.9, percentile(sorted, 0.999)));
    json!(points)
}

/// Sends signed transactions in batches of 1,000 and waits until the last one is final.
async fn send_and_wait(
    node: &Node,
    txs: &[atonomi_primitives::SignedTransaction],
    what: &'static str,
) -> Result<()> {
    let hexes: Vec<String> = txs.iter().map(|t| hex::encode(t.to_bytes())).collect();
    for chunk in hexes.chunks(1000) {
        let res = node
            .rpc()
            .send_transaction_batch(chunk.to_vec())
            .await
            .or_node(node)
            .map_err(ToolError::node(what))?;
        if let Some(BatchAnswer::Refused { error }) = res
            .iter()
            .find(|r| matches!(r, BatchAnswer::Refused { .. }))
        {
            return Err(ToolError::Refused {
                what,
                message: error.message.clone(),
                code: error.code,
            });
        }
    }
    let Some(last) = txs.last().map(|t| t.hash()) else {
        return Ok(());
    };
    let receipt = node
        .wait_final(last, Duration::from_secs(120))
        .await
        .map_err(ToolError::node(what))?;
    if receipt.status != TxStatus::Success {
        return Err(ToolError::NotSucceeded {
            what,
            status: receipt.status,
        });
    }
    Ok(())
}

/// Registers `n` devices (keys from labels under `tag`) with the manufacturer key.
async fn register_devices(
    node: &Node,
    chain_id: &ChainId,
    maker: &Keypair,
    manufacturer: u32,
    tag: &str,
    n: usize,
) -> Result<Vec<(Keypair, atonomi_primitives::DeviceId)>> {
    let run = Keypair::generate().map(|k| k.to_seed()).unwrap_or_default();
    let devices: Vec<(Keypair, atonomi_primitives::DeviceId)> = (0..n)
        .map(|i| {
            let key = Keypair::from_label(&format!("{tag} {} {i}", hex::encode(&run[..8])));
            let id = atonomi_primitives::DeviceId::derive(&run, format!("{tag}-{i}").as_bytes());
            (key, id)
        })
        .collect();
    let (_, mut nonce) = chain_id_and_nonce(node, maker.account()).await?;
    let mut txs = Vec::new();
    for chunk in devices.chunks(1000) {
        let regs = chunk
            .iter()
            .map(|(k, id)| atonomi_primitives::tx::DeviceRegistration {
                device_id: *id,
                public_key: k.account(),
                protocols: vec![],
                metadata: vec![],
            })
            .collect();
        let call = Call::RegisterDevices {
            manufacturer: atonomi_primitives::ManufacturerId::new(manufacturer),
            devices: regs,
        };
        txs.push(
            Transaction {
                chain_id: chain_id.clone(),
                signer: maker.account(),
                nonce,
                max_fee: None,
                call,
            }
            .sign(maker),
        );
        nonce += 1;
    }
    send_and_wait(node, &txs, "registering the run's devices").await?;
    Ok(devices)
}

fn trust(
    device: atonomi_primitives::DeviceId,
    score: u32,
) -> atonomi_primitives::tx::ReputationWrite {
    atonomi_primitives::tx::ReputationWrite {
        subject: atonomi_primitives::state::Subject::Device(device),
        rep_type: "trust".into(),
        score: atonomi_primitives::Score::new(score).unwrap_or_default(),
        direction: atonomi_primitives::state::Direction::Up,
    }
}

/// Pre-signed `WriteReputation` batches by the auditor key about 1,000 fresh devices.
async fn presign_reputation(
    args: &LoadArgs,
    node: &Node,
    auditor: &Keypair,
    chain_id: &ChainId,
) -> Result<Vec<(Hash, String)>> {
    let maker = atonomi_api::keyfile::read(args.maker.as_ref().ok_or(ToolError::Usage(
        "--reputation-per-tx needs --maker (registers the devices rated)",
    ))?)?;
    let devices = register_devices(
        node,
        chain_id,
        &maker,
        args.manufacturer,
        "bench rated",
        1000,
    )
    .await?;
    let (_, mut nonce) = chain_id_and_nonce(node, auditor.account()).await?;
    Ok((0..args.txs)
        .map(|i| {
            let entries = (0..args.reputation_per_tx)
                .map(|j| {
                    trust(
                        devices[(i * args.reputation_per_tx + j) % devices.len()].1,
                        5_000 + ((i + j) % 4_000) as u32,
                    )
                })
                .collect();
            let call = Call::WriteReputation {
                auditor: atonomi_primitives::AuditorId::new(args.auditor),
                entries,
            };
            let tx = Transaction {
                chain_id: chain_id.clone(),
                signer: auditor.account(),
                nonce,
                max_fee: None,
                call,
            }
            .sign(auditor);
            nonce += 1;
            (tx.hash(), hex::encode(tx.to_bytes()))
        })
        .collect())
}

/// Payer and payee devices, registered, activated and funded by the owner (--funder),
/// rated above the payment threshold; then `Pay` transactions signed by the payers.
async fn presign_payments(
    args: &LoadArgs,
    node: &Node,
    owner: &Keypair,
    chain_id: &ChainId,
) -> Result<Vec<(Hash, String)>> {
    let maker = atonomi_api::keyfile::read(
        args.maker
            .as_ref()
            .ok_or(ToolError::Usage("--payers needs --maker"))?,
    )?;
    let auditor = atonomi_api::keyfile::read(
        args.auditor_key
            .as_ref()
            .ok_or(ToolError::Usage("--payers needs --auditor-key"))?,
    )?;
    let devices = register_devices(
        node,
        chain_id,
        &maker,
        args.manufacturer,
        "bench payment",
        2 * args.payers,
    )
    .await?;
    let (_, mut nonce) = chain_id_and_nonce(node, owner.account()).await?;
    let per_payer = (args.txs / args.payers + 1) as u128;
    let mut setup = Vec::new();
    for (key, id) in &devices {
        let device_signature =
            atonomi_primitives::tx::sign_activation(key, chain_id, id, &owner.account());
        setup.push(
            Transaction {
                chain_id: chain_id.clone(),
                signer: owner.account(),
                nonce,
                max_fee: None,
                call: Call::ActivateDevice {
                    device: *id,
                    device_signature,
                },
            }
            .sign(owner),
        );
        nonce += 1;
    }
    for (key, _) in &devices[..args.payers] {
        let call = Call::Transfer {
            to: key.account(),
            amount: Amount::new(per_payer * PAYMENT * 2),
        };
        setup.push(
            Transaction {
                chain_id: chain_id.clone(),
                signer: owner.account(),
                nonce,
                max_fee: None,
                call,
            }
            .sign(owner),
        );
        nonce += 1;
    }
    send_and_wait(node, &setup, "activating and funding the payment devices").await?;
    let (_, mut anonce) = chain_id_and_nonce(node, auditor.account()).await?;
    let mut ratings = Vec::new();
    for chunk in devices.chunks(1000) {
        let entries = chunk.iter().map(|(_, id)| trust(*id, 8_000)).collect();
        let call = Call::WriteReputation {
            auditor: atonomi_primitives::AuditorId::new(args.auditor),
            entries,
        };
        ratings.push(
            Transaction {
                chain_id: chain_id.clone(),
                signer: auditor.account(),
                nonce: anonce,
                max_fee: None,
                call,
            }
            .sign(&auditor),
        );
        anonce += 1;
    }
    send_and_wait(node, &ratings, "rating the payment devices").await?;
    let (payers, payees) = devices.split_at(args.payers);
    let mut nonces = vec![0u64; payers.len()];
    Ok((0..args.txs)
        .map(|i| {
            let k = i % payers.len();
            let call = Call::Pay {
                from_device: payers[k].1,
                to_device: payees[k].1,
                amount: Amount::new(PAYMENT),
                memo: vec![],
            };
            let tx = Transaction {
                chain_id: chain_id.clone(),
                signer: payers[k].0.account(),
                nonce: nonces[k],
                max_fee: None,
                call,
            }
            .sign(&payers[k].0);
            nonces[k] += 1;
            (tx.hash(), hex::encode(tx.to_bytes()))
        })
        .collect())
}

/// A submitted batch: its hashes, when it was sent, and the node's answers.
type Sent = (Vec<Hash>, Instant, Vec<BatchAnswer>);

/// One payment of the payment load (0.001 ATMI; the 1% fee is charged on top or within
/// as the chain's parameters say).
const PAYMENT: u128 = Amount::ONE_ATMI / 1000;

use crate::bench::percentile;

async fn chain_id_and_nonce(
    node: &Node,
    account: atonomi_primitives::AccountId,
) -> Result<(ChainId, u64)> {
    let at = ToolError::node("reading the chain id and a nonce");
    let chain_id = node.chain_id().await.map_err(at)?;
    let nonce = node
        .next_nonce(account)
        .await
        .map_err(ToolError::node("reading a nonce"))?;
    Ok((chain_id, nonce))
}

async fn height(node: &Node) -> Result<u64> {
    let status = node
        .rpc()
        .status()
        .await
        .or_node(node)
        .map_err(ToolError::node("reading the node's status"))?;
    Ok(status.height.get())
}

/// Funds the sender accounts, then pre-signs transfers round-robin over them.
async fn presign_transfers(
    args: &LoadArgs,
    node: &Node,
    funder: &Keypair,
    chain_id: &ChainId,
    mut nonce: u64,
) -> Result<Vec<(Hash, String)>> {
    let senders: Vec<Keypair> = (0..args.accounts)
        .map(|i| Keypair::from_label(&format!("atonomi bench sender {i}")))
        .collect();
    let sink = Keypair::from_label("atonomi bench sink").account();

    // 1. Fund the senders (one batch from the funder) and wait until it is final.
    let per = (args.txs / args.accounts + 1) as u128;
    let mut funding = Vec::new();
    for s in &senders {
        let tx = Transaction {
            chain_id: chain_id.clone(),
            signer: funder.account(),
            nonce,
            max_fee: None,
            call: Call::Transfer {
                to: s.account(),
                amount: Amount::new(per * 1_000),
            },
        };
        nonce += 1;
        funding.push(hex::encode(tx.sign(funder).to_bytes()));
    }
    for chunk in funding.chunks(1000) {
        node.rpc()
            .send_transaction_batch(chunk.to_vec())
            .await
            .or_node(node)
            .map_err(ToolError::node("funding the senders"))?;
    }
    let last_sender = senders
        .last()
        .map(|k| k.account())
        .ok_or(ToolError::Usage("--accounts must be positive"))?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let a = node
            .rpc()
            .get_account(last_sender)
            .await
            .or_node(node)
            .map_err(ToolError::node("reading a sender's account"))?;
        if a.record.balance != Amount::ZERO {
            break;
        }
        if Instant::now() > deadline {
            return Err(ToolError::Timeout {
                what: "funding the senders",
                secs: 120,
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // 2. Pre-sign: round-robin over senders so each batch spreads across accounts, from
    // each sender's next nonce (earlier runs used the same accounts).
    let mut next_nonce = Vec::with_capacity(senders.len());
    for s in &senders {
        next_nonce.push(
            node.next_nonce(s.account())
                .await
                .map_err(ToolError::node("reading a sender's nonce"))?,
        );
    }
    let mut signed: Vec<(Hash, String)> = Vec::with_capacity(args.txs);
    for i in 0..args.txs {
        let k = i % senders.len();
        let tx = Transaction {
            chain_id: chain_id.clone(),
            signer: senders[k].account(),
            nonce: next_nonce[k],
            max_fee: None,
            call: Call::Transfer {
                to: sink,
                amount: Amount::new(1),
            },
        };
        next_nonce[k] += 1;
        let stx = tx.sign(&senders[k]);
        signed.push((stx.hash(), hex::encode(stx.to_bytes())));
    }

    Ok(signed)
}

pub async fn run(args: LoadArgs) -> Result<()> {
    if args.accounts == 0
        || args.txs == 0
        || args.rate == 0
        || args.batch == 0
        || args.rpc.is_empty()
    {
        return Err(ToolError::Usage(
            "accounts, txs, rate, batch and rpc must be non-zero",
        ));
    }
    let clients: Vec<_> = args
        .rpc
        .iter()
        .map(|u| Node::connect(u).map_err(ToolError::node("connecting")))
        .collect::<Result<_>>()?;
    let funder = atonomi_api::keyfile::read(&args.funder)?;
    let (chain_id, nonce) = chain_id_and_nonce(&clients[0], funder.account()).await?;
    let modes = [
        args.devices_per_tx > 0,
        args.reputation_per_tx > 0,
        args.payers > 0,
    ]
    .iter()
    .filter(|m| **m)
    .count();
    if modes > 1 {
        return Err(ToolError::Usage(
            "choose one of --devices-per-tx, --reputation-per-tx and --payers",
        ));
    }
    let (signed, sample) = if args.devices_per_tx > 0 {
        registrations(&args, &funder, &chain_id, nonce)
    } else if args.reputation_per_tx > 0 {
        (
            presign_reputation(&args, &clients[0], &funder, &chain_id).await?,
            Vec::new(),
        )
    } else if args.payers > 0 {
        (
            presign_payments(&args, &clients[0], &funder, &chain_id).await?,
            Vec::new(),
        )
    } else {
        (
            presign_transfers(&args, &clients[0], &funder, &chain_id, nonce).await?,
            Vec::new(),
        )
    };

    // 3. Submit open loop at the offered rate while a follower watches blocks.
    let start_height = height(&clients[0]).await?;
    // Finality is followed by a block subscription (WebSocket, same port) on the first
    // node: each notification says a height is committed, whose transaction hashes are
    // then read; heights a lagging subscription skipped are read too.
    let follower = clients[0].clone();
    let ws_url = args.rpc[0]
        .replacen("http://", "ws://", 1)
        .replacen("https://", "wss://", 1);
    let ws = jsonrpsee::ws_client::WsClientBuilder::default()
        .build(&ws_url)
        .await
        .map_err(ToolError::rpc("opening the WebSocket of the first --rpc"))?;
    let mut blocks_sub = atonomi_client::AtonomiBlocksClient::open(&ws)
        .await
        .map_err(ToolError::rpc("atonomi_subscribeBlocks"))?;
    let (done_tx, mut done_rx) = tokio::sync::watch::channel(false);
    let watch = tokio::spawn(async move {
        let _ws = ws;
        let mut seen: BTreeMap<Hash, Instant> = BTreeMap::new();
        let mut h = start_height + 1;
        let mut blocks = 0u64;
        // Reads committed blocks from `h` up to `top` (None: as far as they exist).
        async fn read_up_to(
            node: &Node,
            h: &mut u64,
            top: Option<u64>,
            seen: &mut BTreeMap<Hash, Instant>,
            blocks: &mut u64,
        ) {
            while top.is_none_or(|t| *h <= t) {
                let Ok(b) = node
                    .rpc()
                    .get_block(atonomi_api::rpc::BlockId::Height(*h))
                    .await
                else {
                    return;
                };
                let now = Instant::now();
                for hash in b.txs {
                    seen.entry(hash).or_insert(now);
                }
                *blocks += 1;
                *h += 1;
            }
        }
        loop {
            tokio::select! {
                n = blocks_sub.next() => match n {
                    Some(Ok(v)) => {
                        let top = v.height.get();
                        read_up_to(&follower, &mut h, Some(top), &mut seen, &mut blocks).await;
                    }
                    // The subscription ended: poll instead.
                    _ => {
                        read_up_to(&follower, &mut h, None, &mut seen, &mut blocks).await;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                },
                _ = done_rx.changed() => {
                    read_up_to(&follower, &mut h, None, &mut seen, &mut blocks).await;
                    return (seen, blocks);
                }
            }
        }
    });
    let interval = Duration::from_secs_f64(args.batch as f64 / args.rate as f64);
    // Each batch is sent at its due time on its own task (up to MAX_IN_FLIGHT at once),
    // so a slow answer does not hold back the batches after it: the offered rate holds
    // until the generator itself runs out of CPU (submit_secs then exceeds the plan).
    let mut submitted: BTreeMap<Hash, Instant> = BTreeMap::new();
    let mut rejected = 0usize;
    let mut in_flight = tokio::task::JoinSet::new();
    let mut settle = |res: Result<Result<Sent>, tokio::task::JoinError>| -> Result<()> {
        let (hashes, at, res) = res??;
        for (hash, r) in hashes.iter().zip(&res) {
            if matches!(r, BatchAnswer::Admitted { .. }) {
                submitted.insert(*hash, at);
            } else {
                rejected += 1;
            }
        }
        Ok(())
    };
    let started = Instant::now();
    for (i, chunk) in signed.chunks(args.batch).enumerate() {
        let due = started + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        while in_flight.len() >= MAX_IN_FLIGHT {
            if let Some(r) = in_flight.join_next().await {
                settle(r)?;
            }
        }
        let node = clients[i % clients.len()].clone();
        let hashes: Vec<Hash> = chunk.iter().map(|(h, _)| *h).collect();
        let hexes: Vec<String> = chunk.iter().map(|(_, h)| h.clone()).collect();
        in_flight.spawn(async move {
            let at = Instant::now();
            let res = node
                .rpc()
                .send_transaction_batch(hexes)
                .await
                .or_node(&node)
                .map_err(ToolError::node("submitting a batch"))?;
            Ok((hashes, at, res))
        });
    }
    while let Some(r) = in_flight.join_next().await {
        settle(r)?;
    }
    let submit_secs = started.elapsed().as_secs_f64();
    let drain_deadline = Instant::now() + Duration::from_secs(args.drain_secs);
    let last = signed.last().map(|(h, _)| *h);
    while Instant::now() < drain_deadline {
        if let Some(h) = last {
            if clients[0]
                .rpc()
                .get_transaction(h)
                .await
                .is_ok_and(|v| matches!(v, TxLookup::Final { .. }))
            {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = done_tx.send(true);
    let (seen, blocks) = watch.await?;

    // A sample of receipts: finalized is not succeeded (a failed call is included too).
    let receipt_sample: Vec<Hash> = signed
        .iter()
        .step_by(signed.len().div_ceil(20).max(1))
        .map(|(h, _)| *h)
        .collect();
    let mut succeeded = 0usize;
    for h in &receipt_sample {
        if let Ok(TxLookup::Final { receipt }) = clients[0].rpc().get_transaction(*h).await {
            if receipt.status == TxStatus::Success {
                succeeded += 1;
            }
        }
    }

    // 4. Report.
    let mut latencies: Vec<f64> = Vec::new();
    let mut last_final = started;
    for (hash, at) in &submitted {
        if let Some(f) = seen.get(hash) {
            latencies.push(f.saturating_duration_since(*at).as_secs_f64() * 1000.0);
            last_final = last_final.max(*f);
        }
    }
    latencies.sort_by(f64::total_cmp);
    let finalized = latencies.len();
    // Accepted but not finalized: either the node said it dropped them (and why: a full
    // pool, a gap behind a refused nonce) or they are lost, which must never happen.
    let (mut dropped, mut pending) = (0usize, 0usize);
    let unfinalized: Vec<Hash> = submitted
        .keys()
        .filter(|h| !seen.contains_key(*h))
        .copied()
        .collect();
    for h in &unfinalized {
        let mut statuses = Vec::new();
        for c in &clients {
            if let Ok(v) = c.rpc().get_transaction(*h).await {
                statuses.push(v);
            }
        }
        if statuses
            .iter()
            .any(|s| matches!(s, TxLookup::Dropped { .. }))
        {
            dropped += 1;
        } else if statuses.iter().any(|s| matches!(s, TxLookup::Pending)) {
            pending += 1;
        }
    }
    let span = last_final
        .saturating_duration_since(started)
        .as_secs_f64()
        .max(1e-3);
    let report = json!({
        "offered_tps": args.rate,
        "submitted": submitted.len(),
        "rejected": rejected,
        "finalized": finalized,
        "dropped": dropped,
        "pending": pending,
        "lost": unfinalized.len() - dropped - pending,
        "submit_secs": submit_secs,
        "finalized_tps": finalized as f64 / span,
        "p50_ms": percentile(&latencies, 0.50),
        "p90_ms": percentile(&latencies, 0.90),
        "p99_ms": percentile(&latencies, 0.99),
        "blocks": blocks,
        "txs_per_block": if blocks > 0 { finalized as f64 / blocks as f64 } else { 0.0 },
        "nodes": args.rpc.len(),
        "receipts_sampled": receipt_sample.len(),
        "receipts_succeeded": succeeded,
    });
    let mut report = report;
    if args.devices_per_tx > 0 {
        let devices_per_s = (finalized * args.devices_per_tx) as f64 / span;
        let blocks_per_s = blocks as f64 / span;
        report["devices_per_tx"] = json!(args.devices_per_tx);
        report["finalized_devices_per_s"] = json!(devices_per_s);
        report["blocks_per_s"] = json!(blocks_per_s);
        report["checkpoint_interval"] = json!(args.checkpoint_interval);
        report["devices_per_checkpoint"] = json!(if blocks_per_s > 0.0 {
            devices_per_s * args.checkpoint_interval as f64 / blocks_per_s
        } else {
            0.0
        });
        report["sample_devices"] = json!(sample);
    }
    println!("{report}");
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct LookupArgs {
    /// Node JSON-RPC URL (one node: the read path of one node is measured).
    #[arg(long, default_value = "http://127.0.0.1:8645")]
    rpc: String,
    /// Device ids to look up, comma-separated (round-robin); unknown ids are answered too.
    #[arg(long, value_delimiter = ',', required = true)]
    device: Vec<String>,
    /// Lookups in all.
    #[arg(long, default_value_t = 100_000)]
    lookups: usize,
    /// `atonomi_validateDevice` calls per JSON-RPC batch (1: single requests).
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Concurrent connections.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
}

/// `atonomi bench lookups`: closed-loop validate-device lookups against one node;
/// prints lookups/s and the latency of each request (a batch counts as one request).
pub async fn lookups(args: LookupArgs) -> Result<()> {
    use jsonrpsee::core::client::ClientT;
    use jsonrpsee::core::params::BatchRequestBuilder;
    if args.lookups == 0 || args.batch == 0 || args.concurrency == 0 || args.batch > 100 {
        return Err(ToolError::Usage(
            "lookups, batch (1..=100, the server's batch limit) and concurrency must be non-zero",
        ));
    }
    let devices: Vec<ValidateParams> = args
        .device
        .iter()
        .map(|d| {
            Ok(ValidateParams {
                device: serde_json::from_value(Value::String(d.clone())).map_err(|source| {
                    ToolError::DeviceArg {
                        arg: d.clone(),
                        source,
                    }
                })?,
                requester: None,
                min_reputation: None,
            })
        })
        .collect::<Result<_>>()?;
    let requests = args.lookups.div_ceil(args.batch);
    let per_worker = requests.div_ceil(args.concurrency);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..args.concurrency {
        let node = Node::connect(&args.rpc).map_err(ToolError::node("connecting"))?;
        let devices = devices.clone();
        let batch = args.batch;
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per_worker);
            let mut done = 0usize;
            for r in 0..per_worker {
                let t = Instant::now();
                if batch == 1 {
                    let d = &devices[(w + r) % devices.len()];
                    node.rpc()
                        .validate_device(d.clone())
                        .await
                        .or_node(&node)
                        .map_err(ToolError::node("atonomi_validateDevice"))?;
                } else {
                    let mut b = BatchRequestBuilder::new();
                    for i in 0..batch {
                        b.insert(
                            "atonomi_validateDevice",
                            rpc_params![&devices[(w + r + i) % devices.len()]],
                        )?;
                    }
                    let res = node
                        .rpc()
                        .batch_request::<ValidationAt>(b)
                        .await
                        .map_err(ToolError::rpc("a batch of atonomi_validateDevice"))?;
                    if res.num_failed_calls() > 0 {
                        return Err(ToolError::Lookups {
                            lookups_failed: res.num_failed_calls(),
                        });
                    }
                }
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
                done += batch;
            }
            Ok::<_, ToolError>((lat, done))
        }));
    }
    let mut lat = Vec::new();
    let mut done = 0;
    for t in tasks {
        let (l, d) = t.await??;
        lat.extend(l);
        done += d;
    }
    let secs = started.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    println!(
        "{}",
        json!({ "lookups": done, "batch": args.batch, "concurrency": args.concurrency, "secs": secs, "lookups_per_s": done as f64 / secs,
                "request_p50_ms": percentile(&lat, 0.5), "request_p99_ms": percentile(&lat, 0.99),
                "request_percentiles_ms": distribution(&lat) })
    );
    Ok(())
}
