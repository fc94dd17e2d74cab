//! How a node takes part in the bridge: the contract, the checkpoint signer's key, and
//! the relayer's Ethereum endpoint.

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use std::time::Duration;

/// What the RPC server tells about this node's part in the bridge (no keys: those
/// stay with the signer and relayer tasks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeInfo {
    pub contract: String,
    pub eth_chain_id: u64,
    /// The checkpoint signer's Ethereum address, if this node signs.
    pub signer: Option<String>,
}

#[derive(Debug, Clone)]
pub struct BridgeConfig {
    pub eth_chain_id: u64,
    pub contract: Address,
    pub signer: Option<PrivateKeySigner>,
    pub relayer: Option<RelayerConfig>,
}

impl BridgeConfig {
    /// The public half, for the RPC server.
    pub fn info(&self) -> BridgeInfo {
        BridgeInfo {
            contract: self.contract.to_string(),
            eth_chain_id: self.eth_chain_id,
            signer: self.signer.as_ref().map(|k| k.address().to_string()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RelayerConfig {
    pub eth_rpc: String,
    pub key: PrivateKeySigner,
    pub confirmations: u64,
    /// This node's consensus key, if it is a validator (for the designated relayer).
    pub validator: Option<atonomi_primitives::AccountId>,
    /// A relayer that is not designated for an epoch waits this long per rank after the
    /// checkpoint has its quorum before it takes over.
    pub takeover: Duration,
}
