//! Rust bindings of the contracts and deployment from the compiled artifacts in
//! `bridge/eth/build/` (`scripts/eth-tools.sh`).

use crate::checkpoint::{BridgeSet, Checkpoint};
use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, B256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolValue;
use std::path::{Path, PathBuf};

alloy::sol! {
    #[sol(rpc, all_derives)]
    interface IAtonomiCheckpoints {
        struct Checkpoint { uint64 epoch; uint64 height; bytes32 blockHash; bytes32 stateRoot; bytes32 nextSetHash; }

        error EpochNotNext(uint64 expected, uint64 got);
        error HeightNotIncreasing(uint64 last, uint64 got);
        error ValidatorSetMismatch(bytes32 trusted, bytes32 given);
        error LengthMismatch();
        error BadSignatureLength(uint256 index);
        error HighS(uint256 index);
        error BadV(uint256 index);
        error InvalidSignature(uint256 index);
        error InsufficientPower(uint256 signed, uint256 total);
        error UnknownEpoch(uint64 epoch);
        error EmptySet();

        event CheckpointSubmitted(uint64 indexed epoch, uint64 height, bytes32 blockHash, bytes32 stateRoot, bytes32 nextSetHash, address submitter);
        event ValidatorSetRotated(uint64 indexed epoch, bytes32 previousSetHash, bytes32 newSetHash);

        function validatorSetHash() external view returns (bytes32);
        function latestEpoch() external view returns (uint64);
        function digest(Checkpoint calldata c) external view returns (bytes32);
        function submitCheckpoint(Checkpoint calldata c, address[] calldata validators, uint256[] calldata powers, bytes[] calldata signatures) external;
        function latestCheckpoint() external view returns (Checkpoint memory);
        function checkpointAt(uint64 epoch) external view returns (Checkpoint memory);
    }

    #[sol(rpc, all_derives)]
    interface IBaselineToken {
        function approve(address spender, uint256 value) external returns (bool);
        function balanceOf(address who) external view returns (uint256);
        function transferFrom(address from, address to, uint256 value) external returns (bool);
    }

    #[sol(rpc, all_derives)]
    interface IDeviceRegistryBaseline {
        error AlreadyRegistered(bytes32 id);
        function registerDevice(bytes32 id, bytes32 publicKey) external;
        function registerDevices(bytes32[] calldata ids, bytes32[] calldata publicKeys) external;
    }
}

impl From<&Checkpoint> for IAtonomiCheckpoints::Checkpoint {
    fn from(c: &Checkpoint) -> Self {
        IAtonomiCheckpoints::Checkpoint {
            epoch: c.epoch,
            height: c.height,
            blockHash: c.block_hash,
            stateRoot: c.state_root,
            nextSetHash: c.next_set_hash,
        }
    }
}

impl From<&IAtonomiCheckpoints::Checkpoint> for Checkpoint {
    fn from(c: &IAtonomiCheckpoints::Checkpoint) -> Self {
        Checkpoint {
            epoch: c.epoch,
            height: c.height,
            block_hash: c.blockHash,
            state_root: c.stateRoot,
            next_set_hash: c.nextSetHash,
        }
    }
}

/// Where the compiled artifacts are: `$ATONOMI_ETH_BUILD`, else `bridge/eth/build`.
pub fn build_dir() -> PathBuf {
    std::env::var_os("ATONOMI_ETH_BUILD")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("eth/build"))
}

/// Why a contract could not be deployed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("reading {} (run scripts/eth-tools.sh to compile the contracts): {error}", path.display())]
    Artifact {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{} is not hex", .0.display())]
    NotHex(PathBuf),
    #[error("{} is empty", .0.display())]
    Empty(PathBuf),
    #[error("Ethereum RPC: {0}")]
    Rpc(#[from] alloy::transports::TransportError),
    #[error("waiting for the deployment: {0}")]
    Pending(#[from] alloy::providers::PendingTransactionError),
    #[error("deploying {0} reverted")]
    Reverted(String),
    #[error("no contract address in the deployment receipt")]
    NoAddress,
}

type Result<T, E = DeployError> = std::result::Result<T, E>;

/// The creation bytecode of `name` (e.g. `AtonomiCheckpoints`).
pub fn bytecode(name: &str) -> Result<Bytes> {
    let path = build_dir().join(format!("{name}.bin"));
    let hex = match std::fs::read_to_string(&path) {
        Ok(hex) => hex,
        Err(error) => return Err(DeployError::Artifact { path, error }),
    };
    let Ok(bytes) = alloy::hex::decode(hex.trim()) else {
        return Err(DeployError::NotHex(path));
    };
    if bytes.is_empty() {
        return Err(DeployError::Empty(path));
    }
    Ok(bytes.into())
}

/// Deploys `name` with ABI-encoded constructor arguments; returns its address.
pub async fn deploy<P: Provider>(provider: &P, name: &str, args: Vec<u8>) -> Result<Address> {
    let mut code = bytecode(name)?.to_vec();
    code.extend(args);
    let tx = TransactionRequest::default().with_deploy_code(code);
    let receipt = provider.send_transaction(tx).await?.get_receipt().await?;
    if !receipt.status() {
        return Err(DeployError::Reverted(name.to_string()));
    }
    receipt.contract_address.ok_or(DeployError::NoAddress)
}

/// Deploys the checkpoint contract trusting `genesis_set`.
pub async fn deploy_checkpoints<P: Provider>(
    provider: &P,
    chain_id: &str,
    genesis_set: &BridgeSet,
) -> Result<Address> {
    let args = (
        alloy::primitives::keccak256(chain_id.as_bytes()),
        genesis_set.hash(),
    )
        .abi_encode_params();
    deploy(provider, "AtonomiCheckpoints", args).await
}

/// The Atonomi chain id hash as the contract stores it.
pub fn chain_id_hash(chain_id: &str) -> B256 {
    alloy::primitives::keccak256(chain_id.as_bytes())
}
