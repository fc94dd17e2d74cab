//! Gas on a real anvil: one checkpoint for 4, 21 and 100 validators (all signing, and
//! the smallest quorum), and the original per-device design (one storage record and a
//! fee transfer per device, singly and in batches of 100) for comparison.
//!   scripts/eth-tools.sh && cargo run -p atonomi-bridge --example gas
//! Prints one JSON line per figure.

use alloy::node_bindings::Anvil;
use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolValue;
use atonomi_bridge::contract::{
    deploy, deploy_checkpoints, IAtonomiCheckpoints, IBaselineToken, IDeviceRegistryBaseline,
};
use atonomi_bridge::{checkpoint_digest, sign_digest, BridgeSet, Checkpoint};
use std::path::PathBuf;

const CHAIN: &str = "atonomi-bench";

async fn checkpoint_gas(
    provider: &DynProvider,
    eth_chain_id: u64,
    n: usize,
    signing: usize,
) -> anyhow::Result<u64> {
    let keys: Vec<PrivateKeySigner> = (0..n).map(|_| PrivateKeySigner::random()).collect();
    let set = BridgeSet {
        validators: keys.iter().map(|k| k.address()).collect(),
        powers: vec![U256::from(1u64); n],
    };
    let contract = deploy_checkpoints(provider, CHAIN, &set).await?;
    let c = Checkpoint {
        epoch: 1,
        height: 1000,
        block_hash: B256::repeat_byte(1),
        state_root: B256::repeat_byte(2),
        next_set_hash: set.hash(),
    };
    let d = checkpoint_digest(CHAIN, eth_chain_id, contract, &c);
    let sigs: Vec<Bytes> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            if i < signing {
                Bytes::from(sign_digest(k, &d).map(|s| s.to_vec()).unwrap_or_default())
            } else {
                Bytes::new()
            }
        })
        .collect();
    let receipt = IAtonomiCheckpoints::new(contract, provider.clone())
        .submitCheckpoint(
            (&c).into(),
            set.validators.clone(),
            set.powers.clone(),
            sigs,
        )
        .send()
        .await?
        .get_receipt()
        .await?;
    anyhow::ensure!(receipt.status(), "checkpoint reverted");
    Ok(receipt.gas_used)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let anvil_path = std::env::var_os("ATONOMI_ANVIL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("eth/node_modules/.bin/anvil")
        });
    let anvil = Anvil::at(anvil_path)
        .arg("--gas-limit")
        .arg("100000000")
        .spawn();
    let wallet: PrivateKeySigner = anvil.keys()[0].clone().into();
    let me = wallet.address();
    let provider = ProviderBuilder::new()
        .wallet(wallet)
        .connect_http(anvil.endpoint_url())
        .erased();
    let eth_chain_id = provider.get_chain_id().await?;

    for n in [4usize, 21, 100] {
        let quorum = n * 2 / 3 + 1;
        let all = checkpoint_gas(&provider, eth_chain_id, n, n).await?;
        let min = checkpoint_gas(&provider, eth_chain_id, n, quorum).await?;
        println!(
            "{}",
            serde_json::json!({ "figure": "checkpoint_gas", "validators": n, "signatures": n, "gas": all })
        );
        println!(
            "{}",
            serde_json::json!({ "figure": "checkpoint_gas", "validators": n, "signatures": quorum, "gas": min })
        );
    }

    // The original design: a token fee and a storage record per device.
    let token = deploy(
        &provider,
        "BaselineToken",
        (U256::from(10u128.pow(30)),).abi_encode_params(),
    )
    .await?;
    let treasury = Address::repeat_byte(0x77);
    let registry = deploy(
        &provider,
        "DeviceRegistryBaseline",
        (token, treasury, U256::from(10u128.pow(18))).abi_encode_params(),
    )
    .await?;
    IBaselineToken::new(token, provider.clone())
        .approve(registry, U256::MAX)
        .send()
        .await?
        .get_receipt()
        .await?;
    let reg = IDeviceRegistryBaseline::new(registry, provider.clone());
    let mut single = Vec::new();
    for i in 0..20u64 {
        let r = reg
            .registerDevice(B256::from(U256::from(i + 1)), B256::repeat_byte(9))
            .send()
            .await?
            .get_receipt()
            .await?;
        anyhow::ensure!(r.status(), "registerDevice reverted");
        single.push(r.gas_used);
    }
    let per_single = single.iter().sum::<u64>() / single.len() as u64;
    println!(
        "{}",
        serde_json::json!({ "figure": "baseline_gas_per_device", "batch": 1, "gas": per_single })
    );
    let ids: Vec<B256> = (0..100u64)
        .map(|i| B256::from(U256::from(1_000_000 + i)))
        .collect();
    let r = reg
        .registerDevices(ids.clone(), vec![B256::repeat_byte(9); ids.len()])
        .gas(30_000_000)
        .send()
        .await?
        .get_receipt()
        .await?;
    anyhow::ensure!(r.status(), "registerDevices reverted");
    println!(
        "{}",
        serde_json::json!({ "figure": "baseline_gas_per_device", "batch": 100, "gas": r.gas_used / 100 })
    );
    let _ = me;
    Ok(())
}
