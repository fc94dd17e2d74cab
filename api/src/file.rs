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
