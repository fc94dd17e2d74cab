//! `atonomi verify device`: a device record proven against an Ethereum checkpoint.
//! Trusted: only the checkpoint contract (on the Ethereum node given). From the Atonomi
//! node nothing is trusted but what the proof proves: the header must hash to the
//! checkpoint's block hash and carry its state root, and the record must verify
//! against that root.

use alloy::eips::BlockId;
use alloy::primitives::Address;
use alloy::providers::{Provider, ProviderBuilder};
use anyhow::{bail, Context, Result};
use atonomi_bridge::contract::IAtonomiCheckpoints;
use atonomi_primitives::block::BlockHeader;
use atonomi_primitives::proof::{verify, StateProof};
use atonomi_primitives::state::{Device, StateKey};
use atonomi_primitives::{codec, DeviceId, Hash};
use jsonrpsee::rpc_params;
use serde_json::{json, Value};

pub async fn device(
    eth_rpc: &str,
    contract: &str,
    device: &str,
    rpc: &str,
    block: &str,
) -> Result<()> {
    let contract: Address = contract
        .parse()
        .with_context(|| format!("--contract {contract} is not an address"))?;
    let device: DeviceId = serde_json::from_value(json!(device))
        .with_context(|| format!("--device {device} is not a 32-byte hex id"))?;
    let block = match block {
        "finalized" => BlockId::finalized(),
        "safe" => BlockId::safe(),
        "latest" => BlockId::latest(),
        other => bail!("--block {other}: use finalized, safe or latest"),
    };
    let provider = ProviderBuilder::new().connect_http(
        eth_rpc
            .parse()
            .with_context(|| format!("--eth-rpc {eth_rpc}"))?,
    );
    let eth_chain_id = provider
        .get_chain_id()
        .await
        .context("reading the Ethereum chain id")?;
    let c = IAtonomiCheckpoints::new(contract, &provider)
        .latestCheckpoint()
        .block(block)
        .call()
        .await
        .context("reading the latest checkpoint from the contract (none at that block tag yet?)")?;

    let client = crate::client::connect(rpc)?;
    let p: Value = crate::client::call(
        &client,
        "atonomi_getProof",
        rpc_params![json!({ "device": device }), c.height],
    )
    .await?;
    let header_hex = p["header_bytes"]
        .as_str()
        .context("the node returned no header for the checkpoint height")?;
    let header: BlockHeader =
        codec::decode(&hex::decode(header_hex).context("header_bytes")?, 64 * 1024)
            .context("header bytes")?;
    if header.hash().0 != c.blockHash.0 {
        bail!(
            "the node's header at height {} hashes to {}, the checkpoint says {}: not proven",
            c.height,
            header.hash(),
            Hash(c.blockHash.0)
        );
    }
    if header.state_root.0 != c.stateRoot.0 {
        bail!("the header's state root differs from the checkpoint's: not proven");
    }
    let proof = StateProof::from_bytes(
        &hex::decode(p["proof"].as_str().context("no proof")?).context("proof hex")?,
    )
    .context("proof bytes")?;
    let value = match p["value"].as_str() {
        Some(v) => Some(hex::decode(v).context("value hex")?),
        None => None,
    };
    let record: Option<Device> = verify(
        Hash(c.stateRoot.0),
        &StateKey::Device(device),
        value.as_deref(),
        &proof,
    )
    .context("the proof does not verify against the checkpoint's state root")?;
    let reputation: Value = crate::client::call(
        &client,
        "atonomi_getReputation",
        rpc_params![json!({ "device": device }), "trust"],
    )
    .await
    .unwrap_or(Value::Null);
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "verified": true,
            "checkpoint": { "epoch": c.epoch, "height": c.height, "block_hash": c.blockHash, "state_root": c.stateRoot, "contract": contract, "eth_chain_id": eth_chain_id },
            "device": device,
            "registered": record.is_some(),
            "record": record,
            "reputation_unproven": reputation,
        }))?
    );
    Ok(())
}
