//! A file or directory that could not be read, written or created, with what was being
//! done and where: the one shape the node's and the auditor's errors use for I/O.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("{action} {}: {error}", path.display())]
pub struct FileError {
    pub action: &'static str,
    pub path: PathBuf,
    pub error: std::io::Error,
}

impl FileError {
    /// For `map_err`: `std::fs::read(p).map_err(FileError::at("reading", p))?`.
    pub fn at(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> FileError {
        let path = path.to_path_buf();
        move |error| FileError {
            action,
            path,
            error,
        }
    }
}

/// Whether `dir` is missing or empty: a place a command may write a new directory's
/// contents into (backups, snapshots) without mixing them with other files.
pub fn is_vacant(dir: &Path) -> Result<bool, FileError> {
    if !dir.exists() {
        return Ok(true);
    }
    let mut entries = std::fs::read_dir(dir).map_err(FileError::at("reading", dir))?;
    Ok(entries.next().is_none())
}
