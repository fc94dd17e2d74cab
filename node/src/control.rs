//! The node's local control socket, `<home>/node.sock`: a Unix socket only the home's
//! owner may open (mode 0600), for what must never be reachable over the network. One
//! request per connection, a JSON line in and a JSON line out:
//!
//! - `{"backup": {"out": "/abs/new/dir"}}`: a RocksDB checkpoint of the running node's
//!   data directory at that path, answered `{"ok": <DataPoint>}` or `{"error": "..."}`.
//!
//! `atonomi backup` is its client ([`request_backup`]).

use crate::chain::{ChainReader, DataPoint};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

/// The socket's file name in a node's home.
pub const SOCKET_NAME: &str = "node.sock";

/// Bytes of a request line at most.
pub const MAX_REQUEST: u64 = 16 << 10;

/// How long a client waits for a backup (a checkpoint of a large store copies files
/// when the target is on another filesystem).
const BACKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ControlRequest {
    /// A checkpoint of the data directory at `out` (absolute; must not exist yet).
    Backup { out: PathBuf },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlAnswer {
    Ok(DataPoint),
    Error(String),
}

/// Why a control request failed on the client's side.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no node answers on {}: {error} (is it running with this --home?)", path.display())]
    Connect {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("talking to the node on {}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("the node's answer is not understood: {0}")]
    Answer(String),
    #[error("the node refused: {0}")]
    Refused(String),
}

/// The listening socket; its file is removed when this is dropped.
#[derive(Debug)]
pub struct ControlSocket {
    path: PathBuf,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ControlSocket {
    /// Stops listening and waits until the listener (and the chain handle it holds)
    /// is gone.
    pub async fn stop(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Listens on `path` (a stale file from a killed node is replaced: the data
/// directory's lock, taken before this, says no other node runs on this home).
pub fn serve(path: &Path, chain: ChainReader) -> std::io::Result<ControlSocket> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    // One backup at a time; other requests wait.
    let busy = Arc::new(tokio::sync::Mutex::new(()));
    let task = tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            };
            let (chain, busy) = (chain.clone(), busy.clone());
            tokio::spawn(async move {
                let (read, mut write) = sock.into_split();
                let mut line = String::new();
                let mut reader = tokio::io::BufReader::new(read).take(MAX_REQUEST);
                let answer = match reader.read_line(&mut line).await {
                    Ok(_) if line.ends_with('\n') => match serde_json::from_str(&line) {
                        Ok(request) => {
                            let _one = busy.lock().await;
                            answer(request, chain).await
                        }
                        Err(e) => ControlAnswer::Error(format!("not a control request: {e}")),
                    },
                    Ok(_) => ControlAnswer::Error(format!(
                        "a request is one JSON line of at most {MAX_REQUEST} bytes"
                    )),
                    Err(e) => ControlAnswer::Error(e.to_string()),
                };
                let mut out = serde_json::to_string(&answer).unwrap_or_default();
                out.push('\n');
                let _ = write.write_all(out.as_bytes()).await;
            });
        }
    });
    Ok(ControlSocket {
        path: path.to_path_buf(),
        task: Some(task),
    })
}

async fn answer(request: ControlRequest, chain: ChainReader) -> ControlAnswer {
    match request {
        ControlRequest::Backup { out } => {
            if !out.is_absolute() {
                return ControlAnswer::Error(format!("{} is not an absolute path", out.display()));
            }
            if out.exists() {
                return ControlAnswer::Error(format!("{} exists already", out.display()));
            }
            let result =
                tokio::task::spawn_blocking(move || chain.checkpoint(&out).map(|p| (p, out))).await;
            match result {
                Ok(Ok((point, out))) => {
                    tracing::info!(out = %out.display(), height = point.height, "backup checkpoint taken");
                    ControlAnswer::Ok(point)
                }
                Ok(Err(e)) => ControlAnswer::Error(e.to_string()),
                Err(e) => ControlAnswer::Error(format!("the checkpoint task failed: {e}")),
            }
        }
    }
}

/// Asks the node whose control socket is `socket` for a checkpoint of its data
/// directory at `out`.
pub fn request_backup(socket: &Path, out: &Path) -> Result<DataPoint, ControlError> {
    use std::io::{BufRead, Write};
    let io = |error| ControlError::Io {
        path: socket.to_path_buf(),
        error,
    };
    let mut stream =
        std::os::unix::net::UnixStream::connect(socket).map_err(|error| ControlError::Connect {
            path: socket.to_path_buf(),
            error,
        })?;
    stream.set_read_timeout(Some(BACKUP_TIMEOUT)).map_err(io)?;
    let mut line = serde_json::to_string(&ControlRequest::Backup {
        out: out.to_path_buf(),
    })
    .map_err(|e| ControlError::Answer(e.to_string()))?;
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(io)?;
    let mut answer = String::new();
    std::io::BufReader::new(std::io::Read::take(stream, 1 << 20))
        .read_line(&mut answer)
        .map_err(io)?;
    match serde_json::from_str(&answer) {
        Ok(ControlAnswer::Ok(point)) => Ok(point),
        Ok(ControlAnswer::Error(why)) => Err(ControlError::Refused(why)),
        Err(e) => Err(ControlError::Answer(format!("{e}: {answer:?}"))),
    }
}
