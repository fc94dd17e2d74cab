//! The node's side of the Ethereum bridge.
//!
//! - **Checkpoints** are derived from the chain (`ChainReader::checkpoint_height`): epoch e's
//!   checkpoint is (e, height, block hash, state root, hash of the next height's bridge
//!   set). Every node computes the same ones.
//! - **Signer** (a validator with `[bridge] key`): after each commit it signs the
//!   lowest checkpoint epoch it has not signed yet, with its secp256k1 bridge key, and
//!   records the signature on chain (`SignCheckpoint`, fee-free for validators). One at
//!   a time: the next waits until the previous is committed.
//! - **Relayer** (a node with `eth_rpc` + `relayer_key`): never trusts its memory. Each
//!   round it reads the contract's latest epoch, gathers the on-chain signatures of the
//!   next epoch that match the checkpoint it derives itself and recover to the signing
//!   set's bridge addresses, and once they carry more than 2/3 of the power it dry-runs
//!   the submission (an `EpochNotNext` revert means another relayer was first: success),
//!   signs the Ethereum transaction, records it (epoch, nonce, hash, fees, raw bytes) in
//!   RocksDB *before* broadcasting, then follows it: submitted → confirmed (N blocks) →
//!   final (Ethereum `finalized` tag). After a restart a recorded transaction that is
//!   still pending is waited for, one that vanished (dropped, or reorged out) is
//!   re-broadcast from its recorded bytes, so a checkpoint is never submitted twice by
//!   the same relayer.

pub mod config;
mod relayer;
mod signer;

pub use relayer::{recent_records, run_relayer, RelayRecord, RelayerLinks};
pub use signer::{run_signer, SignerLinks};

use crate::chain::ChainReader;
use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::providers::{Provider, ProviderBuilder};
use atonomi_api::rpc::views::RelayerView;
use atonomi_bridge::{checkpoint_digest, BridgeSet, Checkpoint};
use atonomi_primitives::state::{CheckpointSignature, StateKey, ValidatorSet};
use atonomi_primitives::{codec, Height};
use std::time::Duration;

/// What stops a signer or relayer round; the loop logs it, shows it in
/// `atonomi_getBridgeStatus` and tries again a second later.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error(transparent)]
    Chain(#[from] crate::chain::ChainError),
    #[error(transparent)]
    Storage(#[from] atonomi_storage::StorageError),
    #[error("checkpoint block {0} is missing")]
    CheckpointBlock(Height),
    #[error("the relay record of epoch {epoch} is corrupt: {error}")]
    Record {
        epoch: u64,
        error: serde_json::Error,
    },
    #[error("signing checkpoint {epoch}: {error}")]
    Sign {
        epoch: u64,
        error: alloy::signers::Error,
    },
    #[error("Ethereum RPC: {0}")]
    Rpc(#[from] alloy::transports::TransportError),
    #[error("reading the contract's latest epoch: {0}")]
    LatestEpoch(alloy::contract::Error),
    #[error("dry run of checkpoint {epoch} reverted: {error}")]
    DryRun {
        epoch: u64,
        error: alloy::contract::Error,
    },
    #[error("signing the checkpoint transaction: {0}")]
    Envelope(String),
    #[error("--eth-rpc {url}: {reason}")]
    Url { url: String, reason: String },
    #[error("no genesis validator has a bridge address: nothing could ever sign a checkpoint")]
    NoBridgeAddresses,
    #[error(transparent)]
    Deploy(#[from] atonomi_bridge::contract::DeployError),
    #[error(transparent)]
    Key(#[from] crate::keys::BridgeKeyError),
}

type Result<T, E = BridgeError> = std::result::Result<T, E>;

pub use config::{BridgeConfig, BridgeInfo, RelayerConfig};

/// The relayer's latest view, which it publishes for `atonomi_getBridgeStatus`.
pub type RelayerStatus = tokio::sync::watch::Sender<Option<RelayerView>>;

/// How long this relayer waits before submitting epoch `epoch` signed by `signing`:
/// the designated relayer — the validator at index `epoch mod n` of the signing set —
/// not at all; the others by their distance from it in set order (a relayer that is
/// not a validator last), so that takeovers do not race each other.
pub fn takeover_delay(
    epoch: u64,
    signing: &ValidatorSet,
    me: Option<&atonomi_primitives::AccountId>,
    per_rank: Duration,
) -> Duration {
    let n = signing.validators.len().max(1);
    let designated = (epoch % n as u64) as usize;
    let rank = me
        .and_then(|m| {
            signing
                .validators
                .iter()
                .position(|v| &v.consensus_key == m)
        })
        .map_or(n, |i| (i + n - designated) % n);
    per_rank * rank as u32
}

/// The bridge set of a validator set: bridge addresses and powers, in the set's order.
pub fn bridge_set(set: &ValidatorSet) -> BridgeSet {
    BridgeSet {
        validators: set
            .validators
            .iter()
            .map(|v| Address::from(v.bridge_address))
            .collect(),
        powers: set.validators.iter().map(|v| U256::from(v.power)).collect(),
    }
}

/// The checkpoint of `epoch` as this node derives it, with the set that signs it.
pub fn expected_checkpoint(
    chain: &ChainReader,
    epoch: u64,
) -> Result<Option<(Checkpoint, ValidatorSet)>> {
    let Some(h) = chain.checkpoint_height(epoch)? else {
        return Ok(None);
    };
    let block = chain.block(h)?.ok_or(BridgeError::CheckpointBlock(h))?;
    let signing = chain.voting_set_at(h)?;
    let next = chain.voting_set_at(h.next())?;
    let c = Checkpoint {
        epoch,
        height: h.get(),
        block_hash: B256::from(block.hash().0),
        state_root: B256::from(block.header.state_root.0),
        next_set_hash: bridge_set(&next).hash(),
    };
    Ok(Some((c, signing)))
}

/// Signatures recorded on chain for `epoch` that match `c` and recover to the signing
/// set's bridge addresses, in set order (empty where missing), with their power.
pub fn collect_signatures(
    chain: &ChainReader,
    cfg: &BridgeConfig,
    c: &Checkpoint,
    signing: &ValidatorSet,
) -> Result<(Vec<Bytes>, U256)> {
    let digest = checkpoint_digest(chain.chain_id.as_str(), cfg.eth_chain_id, cfg.contract, c);
    let mut out = Vec::with_capacity(signing.validators.len());
    let mut power = U256::ZERO;
    for v in &signing.validators {
        let key = StateKey::CheckpointSignature {
            epoch: c.epoch,
            validator: v.consensus_key,
        };
        let rec: Option<CheckpointSignature> = match chain.db().get(&key.to_bytes())? {
            Some(b) => codec::decode(&b, 1024).ok(),
            None => None,
        };
        let good = rec.filter(|r| {
            r.height.get() == c.height
                && r.block_hash.0 == c.block_hash.0
                && r.state_root.0 == c.state_root.0
                && r.next_set_hash.0 == c.next_set_hash.0
        });
        let recovered = good.as_ref().and_then(|r| {
            let sig = alloy::primitives::Signature::from_raw(&r.signature.0).ok()?;
            sig.recover_address_from_prehash(&digest).ok()
        });
        match (good, recovered) {
            (Some(r), Some(a)) if a.0 .0 == v.bridge_address => {
                power += U256::from(v.power);
                out.push(Bytes::from(r.signature.0.to_vec()));
            }
            _ => out.push(Bytes::new()),
        }
    }
    Ok((out, power))
}

/// `atonomi bridge set-hash`: the genesis validators' bridge set and its hash.
pub fn genesis_set(genesis: &atonomi_genesis::Genesis) -> BridgeSet {
    bridge_set(&genesis.state().validators)
}

/// `atonomi bridge deploy`: deploys the checkpoint contract trusting the genesis set;
/// prints the contract address and Ethereum chain id for `[bridge]`.
pub async fn deploy_cli(
    eth_rpc: &str,
    eth_key: &std::path::Path,
    genesis: &atonomi_genesis::Genesis,
) -> Result<()> {
    let key = crate::keys::bridge::read(eth_key)?;
    let url = eth_rpc.parse().map_err(|e| BridgeError::Url {
        url: eth_rpc.to_string(),
        reason: format!("{e}"),
    })?;
    let provider = ProviderBuilder::new().wallet(key).connect_http(url);
    let set = genesis_set(genesis);
    if set.validators.iter().all(|a| a.is_zero()) {
        return Err(BridgeError::NoBridgeAddresses);
    }
    let contract =
        atonomi_bridge::contract::deploy_checkpoints(&provider, genesis.chain_id.as_str(), &set)
            .await?;
    let eth_chain_id = provider.get_chain_id().await?;
    println!(
        "{}",
        serde_json::json!({ "contract": contract, "eth_chain_id": eth_chain_id, "genesis_set_hash": set.hash() })
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use atonomi_primitives::state::Validator;
    use atonomi_primitives::{AccountId, ManufacturerId};

    #[test]
    fn the_designated_relayer_goes_first_and_the_others_in_set_order() {
        let v = |b: u8| Validator {
            consensus_key: AccountId::new([b; 32]),
            peer_id: vec![1],
            bridge_address: [b; 20],
            power: 1,
            operator: ManufacturerId::new(1),
        };
        let set = ValidatorSet {
            validators: vec![v(1), v(2), v(3), v(4)],
        };
        let s = Duration::from_secs(3);
        let me = |b: u8| AccountId::new([b; 32]);
        // Epoch 5: index 1 (the validator [2; 32]) is designated.
        assert_eq!(takeover_delay(5, &set, Some(&me(2)), s), Duration::ZERO);
        assert_eq!(takeover_delay(5, &set, Some(&me(3)), s), s);
        assert_eq!(takeover_delay(5, &set, Some(&me(1)), s), s * 3);
        assert_eq!(
            takeover_delay(5, &set, None, s),
            s * 4,
            "a relayer that is not a validator goes last"
        );
        assert_eq!(takeover_delay(6, &set, Some(&me(3)), s), Duration::ZERO);
    }
}
