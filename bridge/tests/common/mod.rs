//! A real anvil (the npm package installed by scripts/eth-tools.sh) with the
//! checkpoint contract deployed.
#![allow(dead_code)]

use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use atonomi_bridge::contract::{deploy_checkpoints, IAtonomiCheckpoints};
use atonomi_bridge::{checkpoint_digest, sign_digest, BridgeSet, Checkpoint};
use std::path::PathBuf;

pub const CHAIN: &str = "atonomi-test";

pub fn anvil_path() -> PathBuf {
    std::env::var_os("ATONOMI_ANVIL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("eth/node_modules/.bin/anvil")
        })
}

pub fn spawn_anvil() -> AnvilInstance {
    let path = anvil_path();
    assert!(
        path.exists(),
        "{} missing: run scripts/eth-tools.sh",
        path.display()
    );
    Anvil::at(path).spawn()
}

pub struct Env {
    pub anvil: AnvilInstance,
    pub provider: DynProvider,
    pub contract: Address,
    pub keys: Vec<PrivateKeySigner>,
    pub set: BridgeSet,
    pub eth_chain_id: u64,
}

pub fn new_set(n: usize) -> (Vec<PrivateKeySigner>, BridgeSet) {
    let keys: Vec<PrivateKeySigner> = (0..n).map(|_| PrivateKeySigner::random()).collect();
    let set = BridgeSet {
        validators: keys.iter().map(|k| k.address()).collect(),
        powers: vec![U256::from(10u64); n],
    };
    (keys, set)
}

pub async fn setup(n: usize) -> Env {
    let anvil = spawn_anvil();
    let wallet: PrivateKeySigner = anvil.keys()[0].clone().into();
    let provider = ProviderBuilder::new()
        .wallet(wallet)
        .connect_http(anvil.endpoint_url())
        .erased();
    let (keys, set) = new_set(n);
    let contract = deploy_checkpoints(&provider, CHAIN, &set).await.unwrap();
    let eth_chain_id = provider.get_chain_id().await.unwrap();
    Env {
        anvil,
        provider,
        contract,
        keys,
        set,
        eth_chain_id,
    }
}

impl Env {
    pub fn instance(&self) -> IAtonomiCheckpoints::IAtonomiCheckpointsInstance<DynProvider> {
        IAtonomiCheckpoints::new(self.contract, self.provider.clone())
    }

    /// Signatures of `keys[i]` for the validators listed, empty for the others.
    pub fn sign(&self, keys: &[PrivateKeySigner], c: &Checkpoint, signers: &[usize]) -> Vec<Bytes> {
        let d = checkpoint_digest(CHAIN, self.eth_chain_id, self.contract, c);
        (0..keys.len())
            .map(|i| {
                if signers.contains(&i) {
                    Bytes::from(sign_digest(&keys[i], &d).unwrap().to_vec())
                } else {
                    Bytes::new()
                }
            })
            .collect()
    }

    pub async fn submit(
        &self,
        set: &BridgeSet,
        c: &Checkpoint,
        sigs: Vec<Bytes>,
    ) -> Result<alloy::rpc::types::TransactionReceipt, alloy::contract::Error> {
        let instance = self.instance();
        let call =
            instance.submitCheckpoint(c.into(), set.validators.clone(), set.powers.clone(), sigs);
        // Dry-run first: a revert comes back decoded, without spending anything.
        call.call().await?;
        call.send().await?.get_receipt().await.map_err(|e| {
            alloy::contract::Error::TransportError(alloy::transports::RpcError::LocalUsageError(
                Box::new(e),
            ))
        })
    }
}

pub fn checkpoint(epoch: u64, next_set: &BridgeSet) -> Checkpoint {
    Checkpoint {
        epoch,
        height: epoch * 100,
        block_hash: alloy::primitives::B256::repeat_byte(epoch as u8),
        state_root: alloy::primitives::B256::repeat_byte(0x50 + epoch as u8),
        next_set_hash: next_set.hash(),
    }
}

/// The contract's custom error of a failed call, by name.
pub fn revert_name(e: &alloy::contract::Error) -> String {
    match e.as_decoded_interface_error::<IAtonomiCheckpoints::IAtonomiCheckpointsErrors>() {
        Some(err) => format!("{err:?}"),
        None => format!("undecoded: {e}"),
    }
}
