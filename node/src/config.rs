//! Reading a node's files: `config.toml` in its home and the genesis it names, each
//! bounded in size before it is read. Starting a node ([`crate::launch`]) and the
//! snapshot commands ([`crate::snapshot`]) both begin here.

use atonomi_api::config::Config;
use atonomi_api::file::FileError;
use atonomi_genesis::Genesis;
use std::path::{Path, PathBuf};

/// Why a node's configuration or genesis could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reading {} (run `atonomi init --home {}` first): {error}", path.display(), home.display())]
    NoConfig {
        path: PathBuf,
        home: PathBuf,
        error: std::io::Error,
    },
    #[error(transparent)]
    File(#[from] FileError),
    #[error("{} is {size} bytes; at most {limit} are accepted", path.display())]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: usize,
    },
    #[error("{} is not a valid configuration: {error}", path.display())]
    Config {
        path: PathBuf,
        error: atonomi_api::config::ConfigError,
    },
    #[error("{} is not a valid genesis: {error}", path.display())]
    Genesis {
        path: PathBuf,
        error: atonomi_genesis::GenesisError,
    },
}

/// Reads and checks `config.toml` in a node's home.
pub fn load_config(home: &Path) -> Result<Config, LoadError> {
    let path = home.join("config.toml");
    let size = match std::fs::metadata(&path) {
        Ok(m) => m.len(),
        Err(error) => {
            return Err(LoadError::NoConfig {
                path,
                home: home.to_path_buf(),
                error,
            })
        }
    };
    if size > atonomi_api::config::MAX_CONFIG_BYTES as u64 {
        return Err(LoadError::TooLarge {
            path,
            size,
            limit: atonomi_api::config::MAX_CONFIG_BYTES,
        });
    }
    let text = std::fs::read_to_string(&path).map_err(FileError::at("reading", &path))?;
    Config::parse(&text).map_err(|error| LoadError::Config { path, error })
}

/// Reads and checks a genesis file.
pub fn load_genesis(path: &Path) -> Result<Genesis, LoadError> {
    let meta = std::fs::metadata(path).map_err(FileError::at("reading", path))?;
    if meta.len() > atonomi_genesis::MAX_GENESIS_BYTES as u64 {
        return Err(LoadError::TooLarge {
            path: path.to_path_buf(),
            size: meta.len(),
            limit: atonomi_genesis::MAX_GENESIS_BYTES,
        });
    }
    let bytes = std::fs::read(path).map_err(FileError::at("reading", path))?;
    Genesis::from_json(&bytes).map_err(|error| LoadError::Genesis {
        path: path.to_path_buf(),
        error,
    })
}
