//! What stops a benchmark, a load run or the demo, one variant per cause. The
//! `atonomi` binary prints it with its chain of causes.

use atonomi_primitives::TxStatus;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// Flags that cannot run as given; the text names them.
    #[error("{0}")]
    Usage(&'static str),
    #[error("{} exists; give a new directory", .0.display())]
    DirExists(PathBuf),
    #[error(transparent)]
    File(#[from] atonomi_api::file::FileError),
    #[error(transparent)]
    KeyFile(#[from] atonomi_api::keyfile::KeyFileError),
    #[error("bench genesis: {0}")]
    Genesis(#[from] atonomi_genesis::GenesisError),
    #[error("state store: {0}")]
    Storage(#[from] atonomi_storage::StorageError),
    #[error("executing a block: {0}")]
    Execution(#[from] atonomi_runtime::Fatal),
    #[error("decoding: {0}")]
    Decode(#[from] atonomi_primitives::codec::CodecError),
    #[error("proof: {0}")]
    Proof(#[from] atonomi_primitives::proof::ProofError),
    /// Something the run itself set up is not there.
    #[error("{0} is missing")]
    Missing(&'static str),
    /// A figure would be wrong: what the run relies on did not hold.
    #[error("{0}")]
    Broken(&'static str),
    #[error("benchmark transaction failed at height {height}: {status:?}")]
    BlockTxFailed { height: u64, status: TxStatus },
    #[error("step {title:?} failed: {status:?}")]
    StepFailed {
        title: &'static str,
        status: TxStatus,
    },
    #[error("{what}: a transaction was refused: {message} (code {code})")]
    Refused {
        what: &'static str,
        message: String,
        code: i32,
    },
    #[error("{what} did not succeed: {status}")]
    NotSucceeded {
        what: &'static str,
        status: TxStatus,
    },
    #[error("{what}: {source}")]
    Node {
        what: &'static str,
        source: atonomi_client::Error,
    },
    #[error("{what} did not finish in {secs} s")]
    Timeout { what: &'static str, secs: u64 },
    #[error("{what}: {source}")]
    Rpc {
        what: &'static str,
        source: jsonrpsee::core::ClientError,
    },
    #[error("--device {arg}: {source}")]
    DeviceArg {
        arg: String,
        source: serde_json::Error,
    },
    #[error("encoding a request: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("{lookups_failed} lookups of a batch failed")]
    Lookups { lookups_failed: usize },
    #[error("a worker task ended abnormally: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("--eth-rpc {url}: {source}")]
    EthUrl {
        url: String,
        source: url::ParseError,
    },
    #[error("anvil_setBalance (is this an anvil?): {0}")]
    Fund(alloy::transports::TransportError),
    #[error("Ethereum RPC: {0}")]
    EthRpc(#[from] alloy::transports::TransportError),
    #[error("a contract call: {0}")]
    Contract(#[from] alloy::contract::Error),
    #[error("waiting for an Ethereum receipt: {0}")]
    Pending(#[from] alloy::providers::PendingTransactionError),
    #[error("deploying: {0}")]
    Deploy(#[from] atonomi_bridge::contract::DeployError),
    #[error("signing an Ethereum transaction: {0}")]
    EthSign(#[from] alloy::network::TransactionBuilderError<alloy::network::Ethereum>),
}

impl ToolError {
    /// A node's error, said of the step `what`.
    pub(crate) fn node(what: &'static str) -> impl FnOnce(atonomi_client::Error) -> Self {
        move |source| ToolError::Node { what, source }
    }

    /// A JSON-RPC client's error, said of the step `what`.
    pub(crate) fn rpc(what: &'static str) -> impl FnOnce(jsonrpsee::core::ClientError) -> Self {
        move |source| ToolError::Rpc { what, source }
    }
}

pub type Result<T, E = ToolError> = std::result::Result<T, E>;
