//! `atonomi verify device`: a device record proven against an Ethereum checkpoint.
//! Trusted: only the checkpoint contract (on the Ethereum node given). From the Atonomi
//! node nothing is trusted but what the proof proves: the header must hash to the
//! checkpoint's block hash and carry its state root, and the record must verify
//! against that root.
//!
//! "Verified" means true as of the checkpoint's height: the answer names that height,
//! its time and its age, and `--max-age` refuses one from too old a checkpoint.

use alloy::eips::BlockId;
use alloy::primitives::Address;
use alloy::providers::{Provider, ProviderBuilder};
use anyhow::{bail, Context, Result};
use atonomi_bridge::contract::IAtonomiCheckpoints;
use atonomi_client::{Answered, AtonomiApiClient};
use atonomi_primitives::block::BlockHeader;
use atonomi_primitives::proof::{verify, StateProof};
use atonomi_primitives::state::{Device, StateKey, Subject};
use atonomi_primitives::{codec, DeviceId, Hash};
use clap::Subcommand;
use serde_json::json;

#[derive(Debug, Subcommand)]
pub enum VerifyCommand {
    /// Prove a device's record (or its absence) at the latest checkpoint on Ethereum:
    /// reads the checkpoint from the contract (at the `finalized` tag by default),
    /// fetches the proof from any node, checks the header against the checkpoint's
    /// block hash and the record against its state root, and prints the verified record.
    ///
    /// "verified" means: this was the record as of the checkpoint's height, not
    /// necessarily now — a device revoked after that height still shows as it was. Every
    /// answer gives the checkpoint's height, its time (from the proven header) and its
    /// age; --max-age refuses an answer from a checkpoint older than you accept.
    Device {
        /// Ethereum JSON-RPC URL.
        #[arg(long, env = "ATONOMI_ETH_RPC")]
        eth_rpc: String,
        /// The checkpoint contract's address.
        #[arg(long, env = "ATONOMI_BRIDGE_CONTRACT")]
        contract: String,
        /// The device id (64 hex characters).
        #[arg(long)]
        device: String,
        /// Any Atonomi node's JSON-RPC URL (not trusted).
        #[arg(long, default_value = "http://127.0.0.1:8645")]
        rpc: String,
        /// Ethereum block tag to read the checkpoint at: finalized, safe or latest.
        #[arg(long, default_value = "finalized")]
        block: String,
        /// Fail (exit 1, nothing printed as verified) when the checkpoint is older than
        /// this: seconds with a unit (`90s`, `15m`, `2h`; measured from the proven
        /// header's timestamp to this machine's clock) or a number of blocks (`300`;
        /// behind the node's head, which the node reports and could understate).
        #[arg(long)]
        max_age: Option<String>,
    },
}

pub fn run(cmd: VerifyCommand) -> Result<()> {
    match cmd {
        VerifyCommand::Device {
            eth_rpc,
            contract,
            device: id,
            rpc,
            block,
            max_age,
        } => {
            let max_age = max_age.as_deref().map(MaxAge::parse).transpose()?;
            super::runtime()?.block_on(device(&eth_rpc, &contract, &id, &rpc, &block, max_age))
        }
    }
}

/// How old a checkpoint an answer may come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxAge {
    Seconds(u64),
    Blocks(u64),
}

impl MaxAge {
    /// `90s`, `15m`, `2h` (seconds) or `300` (blocks).
    pub fn parse(s: &str) -> Result<MaxAge> {
        let bad = || {
            anyhow::anyhow!(
                "--max-age {s}: use seconds with a unit (90s, 15m, 2h) or a number of blocks (300)"
            )
        };
        let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
        let n: u64 = digits.parse().map_err(|_| bad())?;
        Ok(match unit {
            "" => MaxAge::Blocks(n),
            "s" => MaxAge::Seconds(n),
            "m" => MaxAge::Seconds(n.checked_mul(60).ok_or_else(bad)?),
            "h" => MaxAge::Seconds(n.checked_mul(3600).ok_or_else(bad)?),
            _ => return Err(bad()),
        })
    }
}

pub async fn device(
    eth_rpc: &str,
    contract: &str,
    device: &str,
    rpc: &str,
    block: &str,
    max_age: Option<MaxAge>,
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

    let node = atonomi_client::Node::connect(rpc)?;
    let p = node
        .rpc()
        .get_proof(StateKey::Device(device), Some(c.height))
        .await
        .or_node(&node)?;
    let header_hex = p
        .header_bytes
        .as_deref()
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
    // The header is proven (it hashes to the checkpoint's block hash), so its timestamp
    // is the chain's; the head height is the node's word.
    let now_ms = atonomi_node::clock::now_ms();
    let age_seconds = now_ms.saturating_sub(header.timestamp.get()) / 1000;
    let head = node.rpc().status().await.or_node(&node)?;
    let age_blocks = Some(head.height.get().saturating_sub(c.height));
    match max_age {
        Some(MaxAge::Seconds(max)) if age_seconds > max => bail!(
            "the newest checkpoint on Ethereum is at height {} and {age_seconds} s old, more than --max-age {max}s: not verified",
            c.height
        ),
        Some(MaxAge::Blocks(max)) if age_blocks.is_none_or(|a| a > max) => bail!(
            "the newest checkpoint on Ethereum is at height {}, {} blocks behind the node's head, more than --max-age {max}: not verified",
            c.height,
            age_blocks.map_or("an unknown number of".to_string(), |a| a.to_string())
        ),
        _ => {}
    }
    let proof = StateProof::from_bytes(&hex::decode(&p.proof).context("proof hex")?)
        .context("proof bytes")?;
    let value = match p.value.as_deref() {
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
    let reputation = node
        .rpc()
        .get_reputation(Subject::Device(device), "trust".into())
        .await
        .ok();
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "verified": true,
            "as_of_height": c.height,
            "checkpoint": { "epoch": c.epoch, "height": c.height, "block_hash": c.blockHash, "state_root": c.stateRoot, "contract": contract, "eth_chain_id": eth_chain_id, "timestamp_ms": header.timestamp.get(), "age_seconds": age_seconds, "age_blocks": age_blocks },
            "device": device,
            "registered": record.is_some(),
            "record": record,
            "reputation_unproven": reputation,
        }))?
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::MaxAge;

    #[test]
    fn max_age_reads_seconds_with_a_unit_or_blocks() {
        assert_eq!(MaxAge::parse("90s").unwrap(), MaxAge::Seconds(90));
        assert_eq!(MaxAge::parse("15m").unwrap(), MaxAge::Seconds(900));
        assert_eq!(MaxAge::parse("2h").unwrap(), MaxAge::Seconds(7200));
        assert_eq!(MaxAge::parse("300").unwrap(), MaxAge::Blocks(300));
        for bad in ["", "s", "-1", "5d", "1.5h", "99999999999999999999h"] {
            assert!(MaxAge::parse(bad).is_err(), "{bad}");
        }
    }
}
