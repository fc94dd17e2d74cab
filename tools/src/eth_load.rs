//! `atonomi bench eth`: the Ethereum baseline under the same open-loop method as
//! `bench load`. Against a running anvil it deploys the original per-device design
//! (`DeviceRegistryBaseline`: one storage record and one token-fee transfer per device),
//! funds sender accounts, pre-signs one `registerDevice` transaction per device, sends
//! them at a fixed offered rate, follows the mined blocks, and prints one JSON line with
//! registered devices/s, gas per device and inclusion latency.

use crate::error::{Result, ToolError};
use alloy::eips::Encodable2718;
use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolValue;
use atonomi_bridge::contract::{deploy, IBaselineToken, IDeviceRegistryBaseline};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct EthArgs {
    /// Ethereum JSON-RPC URL of an anvil (its `anvil_setBalance` funds the senders).
    #[arg(long, default_value = "http://127.0.0.1:8545")]
    eth_rpc: String,
    /// Devices to register, one transaction each.
    #[arg(long, default_value_t = 2_000)]
    devices: usize,
    /// Offered load, registrations per second.
    #[arg(long, default_value_t = 200)]
    rate: u64,
    /// Sender accounts (each sends its transactions in nonce order).
    #[arg(long, default_value_t = 20)]
    senders: usize,
    /// Give up waiting for inclusion this long after the last submission.
    #[arg(long, default_value_t = 60)]
    drain_secs: u64,
}

const GAS_PER_REGISTRATION: u64 = 200_000;
const MAX_FEE: u128 = 100_000_000_000;
const TIP: u128 = 1_000_000_000;

async fn fund(provider: &DynProvider, who: Address) -> Result<()> {
    let wei = U256::from(10u128.pow(24));
    let _: serde_json::Value = provider
        .raw_request("anvil_setBalance".into(), (who, wei))
        .await
        .map_err(ToolError::Fund)?;
    Ok(())
}

async fn sign(
    key: &PrivateKeySigner,
    chain_id: u64,
    nonce: u64,
    to: Address,
    input: Bytes,
) -> Result<(B256, Bytes)> {
    let tx = TransactionRequest::default()
        .with_from(key.address())
        .with_to(to)
        .with_input(input)
        .with_nonce(nonce)
        .with_chain_id(chain_id)
        .with_gas_limit(GAS_PER_REGISTRATION)
        .with_max_fee_per_gas(MAX_FEE)
        .with_max_priority_fee_per_gas(TIP);
    let wallet = EthereumWallet::from(key.clone());
    let envelope =
        alloy::network::NetworkTransactionBuilder::<alloy::network::Ethereum>::build(tx, &wallet)
            .await?;
    Ok((*envelope.tx_hash(), Bytes::from(envelope.encoded_2718())))
}

/// Reads the blocks mined since `next`: when each transaction was first seen mined, and
/// the gas they used.
async fn follow(
    provider: &DynProvider,
    mined: &mut BTreeMap<B256, Instant>,
    gas: &mut u128,
    next: &mut u64,
) -> Result<()> {
    while let Some(b) = provider.get_block_by_number((*next).into()).await? {
        let now = Instant::now();
        for h in b.transactions.hashes() {
            mined.insert(h, now);
        }
        *gas += u128::from(b.header.gas_used);
        *next += 1;
    }
    Ok(())
}

pub async fn run(args: EthArgs) -> Result<()> {
    if args.devices == 0 || args.rate == 0 || args.senders == 0 {
        return Err(ToolError::Usage(
            "devices, rate and senders must be non-zero",
        ));
    }
    let url: url::Url = args.eth_rpc.parse().map_err(|source| ToolError::EthUrl {
        url: args.eth_rpc.clone(),
        source,
    })?;
    let deployer = PrivateKeySigner::random();
    let provider = ProviderBuilder::new()
        .wallet(deployer.clone())
        .connect_http(url.clone())
        .erased();
    fund(&provider, deployer.address()).await?;
    let chain_id = provider.get_chain_id().await?;

    // The original design, and tokens plus an allowance for every sender.
    let token = deploy(
        &provider,
        "BaselineToken",
        (U256::from(10u128.pow(30)),).abi_encode_params(),
    )
    .await?;
    let registry = deploy(
        &provider,
        "DeviceRegistryBaseline",
        (
            token,
            Address::repeat_byte(0x77),
            U256::from(10u128.pow(18)),
        )
            .abi_encode_params(),
    )
    .await?;
    let tok = IBaselineToken::new(token, provider.clone());
    tok.approve(deployer.address(), U256::MAX)
        .send()
        .await?
        .get_receipt()
        .await?;
    let senders: Vec<PrivateKeySigner> = (0..args.senders)
        .map(|_| PrivateKeySigner::random())
        .collect();
    let per = U256::from(10u128.pow(18)) * U256::from(args.devices / args.senders + 1);
    // Fund everyone first, then send the token transfers and the approvals without
    // waiting between them (a few blocks in all, not three per sender).
    for s in &senders {
        fund(&provider, s.address()).await?;
    }
    let mut pending = Vec::new();
    for s in &senders {
        pending.push(
            tok.transferFrom(deployer.address(), s.address(), per)
                .send()
                .await?,
        );
    }
    for p in pending {
        p.get_receipt().await?;
    }
    let mut pending = Vec::new();
    for s in &senders {
        let sp = ProviderBuilder::new()
            .wallet(s.clone())
            .connect_http(url.clone())
            .erased();
        pending.push(
            IBaselineToken::new(token, sp)
                .approve(registry, U256::MAX)
                .send()
                .await?,
        );
    }
    for p in pending {
        p.get_receipt().await?;
    }

    // Pre-sign one registration per device, round-robin over the senders.
    let reg = IDeviceRegistryBaseline::new(registry, provider.clone());
    // Fresh device ids per run: the deployer key is random.
    let run = alloy::primitives::keccak256(deployer.address());
    let mut nonces = BTreeMap::new();
    for s in &senders {
        nonces.insert(
            s.address(),
            provider.get_transaction_count(s.address()).await?,
        );
    }
    let mut signed = Vec::with_capacity(args.devices);
    for i in 0..args.devices {
        let s = &senders[i % senders.len()];
        let id = alloy::primitives::keccak256([run.as_slice(), &(i as u64).to_be_bytes()].concat());
        let input = reg
            .registerDevice(id, B256::repeat_byte(9))
            .calldata()
            .clone();
        let nonce = nonces
            .get_mut(&s.address())
            .ok_or(ToolError::Missing("a sender's nonce"))?;
        signed.push(sign(s, chain_id, *nonce, registry, input).await?);
        *nonce += 1;
    }

    // Open loop at the offered rate while a follower reads mined blocks.
    let start_block = provider.get_block_number().await?;
    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
    let mut sent: BTreeMap<B256, Instant> = BTreeMap::new();
    let mut rejected = 0usize;
    let mut mined: BTreeMap<B256, Instant> = BTreeMap::new();
    let mut gas_used = 0u128;
    let mut next_block = start_block + 1;
    for (i, (hash, raw)) in signed.iter().enumerate() {
        tokio::time::sleep_until((started + interval * i as u32).into()).await;
        match provider.send_raw_transaction(raw).await {
            Ok(_) => {
                sent.insert(*hash, Instant::now());
            }
            Err(e) => {
                rejected += 1;
                tracing::debug!("eth_sendRawTransaction: {e}");
            }
        }
        if i % 100 == 99 {
            follow(&provider, &mut mined, &mut gas_used, &mut next_block).await?;
        }
    }
    let submit_secs = started.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(args.drain_secs);
    while Instant::now() < deadline && sent.keys().any(|h| !mined.contains_key(h)) {
        follow(&provider, &mut mined, &mut gas_used, &mut next_block).await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut lat: Vec<f64> = Vec::new();
    let mut last = started;
    for (h, at) in &sent {
        if let Some(m) = mined.get(h) {
            lat.push(m.saturating_duration_since(*at).as_secs_f64() * 1000.0);
            last = last.max(*m);
        }
    }
    lat.sort_by(f64::total_cmp);
    let registered = lat.len();
    let span = last
        .saturating_duration_since(started)
        .as_secs_f64()
        .max(1e-3);
    let blocks = next_block.saturating_sub(start_block + 1);
    let gas_limit = provider
        .get_block_by_number((next_block.saturating_sub(1)).into())
        .await?
        .map_or(0, |b| b.header.gas_limit);
    let pct = |p: f64| {
        if lat.is_empty() {
            0.0
        } else {
            lat[((lat.len() - 1) as f64 * p).round() as usize]
        }
    };
    println!(
        "{}",
        json!({
            "offered_devices_per_s": args.rate, "sent": sent.len(), "rejected": rejected, "registered": registered,
            "lost": sent.len() - registered, "submit_secs": submit_secs,
            "devices_per_s": registered as f64 / span,
            "gas_per_device": if registered > 0 { (gas_used / registered as u128) as u64 } else { 0 },
            "blocks": blocks, "block_gas_limit": gas_limit,
            "p50_ms": pct(0.5), "p90_ms": pct(0.9), "p99_ms": pct(0.99),
        })
    );
    Ok(())
}
