//! Key files: JSON with the account (public key) and the 32-byte secret seed, written
//! with owner-only permissions and synced. The one format this crate reads and writes
//! itself: the node (validator keys), the client, the auditor and the tools all hold
//! keys in it.

use atonomi_primitives::{AccountId, Keypair};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Largest key file read.
pub const MAX_KEY_FILE: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} exists; pass --force to overwrite it", path.display())]
    Exists { path: PathBuf },
    #[error("{} is {len} bytes; a key file is under {MAX_KEY_FILE}", path.display())]
    TooLarge { path: PathBuf, len: u64 },
    #[error("{} is not a key file (JSON)", path.display())]
    NotJson { path: PathBuf },
    #[error("{}: {what}", path.display())]
    Field { path: PathBuf, what: &'static str },
    #[error("{}: \"account\" does not match \"secret_seed\"", path.display())]
    Mismatch { path: PathBuf },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `key` to `path` (refusing to overwrite unless `force`).
pub fn write(path: &Path, key: &Keypair, force: bool) -> Result<(), KeyFileError> {
    let body =
        serde_json::json!({ "account": key.account(), "secret_seed": hex::encode(key.to_seed()) });
    write_owner_only(path, &body, force)
}

/// Writes a secret's JSON with owner-only permissions (refusing to overwrite unless
/// `force`), synced; also for the node's bridge key files.
pub fn write_owner_only(
    path: &Path,
    body: &serde_json::Value,
    force: bool,
) -> Result<(), KeyFileError> {
    if path.exists() && !force {
        return Err(KeyFileError::Exists {
            path: path.to_path_buf(),
        });
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io(path))?;
    let text = serde_json::to_string_pretty(body).map_err(|_| KeyFileError::NotJson {
        path: path.to_path_buf(),
    })?;
    writeln!(f, "{text}").map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

/// Reads a bounded JSON file (a key file or a bridge key file).
pub fn read_json(path: &Path) -> Result<serde_json::Value, KeyFileError> {
    let meta = std::fs::metadata(path).map_err(io(path))?;
    if meta.len() > MAX_KEY_FILE {
        return Err(KeyFileError::TooLarge {
            path: path.to_path_buf(),
            len: meta.len(),
        });
    }
    let bytes = std::fs::read(path).map_err(io(path))?;
    serde_json::from_slice(&bytes).map_err(|_| KeyFileError::NotJson {
        path: path.to_path_buf(),
    })
}

/// Reads a key file and checks that its account matches its secret.
pub fn read(path: &Path) -> Result<Keypair, KeyFileError> {
    let v = read_json(path)?;
    let field = |what| KeyFileError::Field {
        path: path.to_path_buf(),
        what,
    };
    let seed = v
        .get("secret_seed")
        .and_then(|s| s.as_str())
        .ok_or_else(|| field("no \"secret_seed\""))?;
    let seed = atonomi_primitives::hash::parse_hex32(seed)
        .map_err(|_| field("\"secret_seed\" must be 64 hex characters"))?;
    let key = Keypair::from_seed(seed);
    if let Some(account) = v.get("account").and_then(|a| a.as_str()) {
        let account: AccountId = account
            .parse()
            .map_err(|_| field("\"account\" must be 64 hex characters"))?;
        if account != key.account() {
            return Err(KeyFileError::Mismatch {
                path: path.to_path_buf(),
            });
        }
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_and_refuse_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/k.json");
        let key = Keypair::from_label("keys test");
        write(&path, &key, false).unwrap();
        assert_eq!(read(&path).unwrap().account(), key.account());
        assert!(matches!(
            write(&path, &key, false),
            Err(KeyFileError::Exists { .. })
        ));
        write(&path, &Keypair::from_label("other"), true).unwrap();
        assert_ne!(read(&path).unwrap().account(), key.account());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        // A tampered account is caught; garbage is an error, not a panic.
        let text = std::fs::read_to_string(&path).unwrap();
        let acct = Keypair::from_label("other").account().to_string();
        std::fs::write(&path, text.replace(&acct, &"0".repeat(64))).unwrap();
        assert!(matches!(read(&path), Err(KeyFileError::Mismatch { .. })));
        std::fs::write(&path, b"\xff\x00garbage").unwrap();
        assert!(matches!(read(&path), Err(KeyFileError::NotJson { .. })));
        std::fs::write(&path, vec![b' '; 5000]).unwrap();
        assert!(matches!(read(&path), Err(KeyFileError::TooLarge { .. })));
    }
}
