use atonomi_primitives::CallError;

/// A failure that is not the transaction's fault: the committed state could not be
/// read or does not decode. Block execution stops; the node must not commit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fatal {
    #[error("state read failed: {0}")]
    Read(String),
    #[error("corrupt state record at key {}: {reason}", hex_key(.key))]
    Corrupt { key: Vec<u8>, reason: String },
    #[error("invalid block: {0}")]
    InvalidBlock(String),
    /// Governance scheduled an upgrade at this height that this binary does not
    /// implement: the node must stop before the block and be replaced.
    #[error("upgrade {name:?} is scheduled at height {height} and this binary does not implement it; install the release that does ({info}) and restart on the same data directory")]
    UpgradeRequired {
        name: String,
        height: atonomi_primitives::Height,
        info: String,
    },
}

fn hex_key(k: &[u8]) -> String {
    k.iter().map(|b| format!("{b:02x}")).collect()
}

/// Inside call execution: either the call fails (typed, recorded in the receipt) or
/// execution cannot continue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecError {
    Call(CallError),
    Fatal(Fatal),
}

impl From<CallError> for ExecError {
    fn from(e: CallError) -> Self {
        ExecError::Call(e)
    }
}

impl From<Fatal> for ExecError {
    fn from(e: Fatal) -> Self {
        ExecError::Fatal(e)
    }
}

pub type ExecResult<T = ()> = Result<T, ExecError>;

/// For read-only paths (block setup, queries), where no call runs and so a
/// `CallError` cannot arise: the fatal part of an `ExecError`.
pub(crate) fn fatal(e: ExecError) -> Fatal {
    match e {
        ExecError::Fatal(f) => f,
        ExecError::Call(c) => Fatal::InvalidBlock(c.to_string()),
    }
}
