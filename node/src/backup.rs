//! Hot backup and restore of a node's home (`atonomi backup`, `atonomi restore`).
//!
//! A backup directory holds `data/` (a RocksDB checkpoint of the data directory: taken
//! by the running node through its control socket, or directly when no node runs),
//! `home/` (config.toml, genesis.json and the key files, but never the consensus key
//! unless asked) and `backup.json`, the manifest: where the data stands (height, block
//! hash, state root, the guard's height) and every file's size and blake3 hash.
//!
//! A restore checks every file against the manifest before it touches the home, refuses
//! a home whose data is ahead of the backup (its double-sign guard would go back in
//! time), and empties the restored guard: the validator then waits to hear the
//! network's height and refuses every height up to it, as a wiped validator does, so
//! it never signs again what it signed after the backup was taken.

use crate::chain::{read_point, DataPoint};
use atonomi_api::file::FileError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The manifest's file name in a backup directory.
pub const MANIFEST: &str = "backup.json";
/// The version of the backup layout this binary writes and reads.
pub const FORMAT: u32 = 1;
/// Bytes of a manifest at most (a large store has some thousands of files).
const MAX_MANIFEST: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Chain(#[from] crate::chain::ChainError),
    #[error(transparent)]
    Control(#[from] crate::control::ControlError),
    #[error(transparent)]
    Load(#[from] crate::config::LoadError),
    #[error("{} is not empty: back up into a new directory", .0.display())]
    OutNotEmpty(PathBuf),
    #[error("{} has no data directory: nothing to back up", .0.display())]
    NoData(PathBuf),
    #[error("{}: {why}", path.display())]
    Manifest { path: PathBuf, why: String },
    #[error("the backup is damaged: {0} (nothing was restored)")]
    Damaged(String),
    #[error("{} differs from the backup's copy: restore into the home it came from, or move the file away first (nothing was restored)", .0.display())]
    Differs(PathBuf),
    #[error("the data in {} is ahead of the backup ({here}; the backup: {backup}): restoring would move the double-sign guard back in time. Nothing was restored; if the data here is lost for good, move it away and restore again", path.display())]
    Ahead {
        path: PathBuf,
        here: String,
        backup: String,
    },
}

type Result<T, E = BackupError> = std::result::Result<T, E>;

/// `backup.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    pub created_at_ms: u64,
    /// Where the backed-up data stands.
    pub data: DataPoint,
    /// Whether `home/` holds the validator's consensus key.
    pub consensus_key_included: bool,
    /// Every file of the backup but this manifest, by path under the backup directory.
    pub files: BTreeMap<String, FileEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub bytes: u64,
    pub blake3: String,
}

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    pub home: PathBuf,
    pub data: DataPoint,
    /// Files of `home/` written (absent before) and left as they were (identical).
    pub written: Vec<String>,
    pub unchanged: Vec<String>,
    /// Where data the restore replaced was moved (it was behind the backup).
    pub previous_data: Option<PathBuf>,
}

/// The consensus key files of a home: the key, its rotated successor and the marker
/// of its first signature.
fn consensus_key_files(home: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let key = crate::config::load_config(home)
        .ok()
        .and_then(|c| c.validator_key)
        .map_or_else(|| home.join("keys/validator.json"), |k| home.join(k));
    (
        key.clone(),
        crate::keys::next_consensus_key_path(&key),
        key.with_extension("signed"),
    )
}

/// Backs up the node at `home` into `out` (new or empty): through the running node's
/// control socket, or directly when no node runs there.
pub fn backup(home: &Path, out: &Path, include_consensus_key: bool) -> Result<Manifest> {
    let data = home.join("data");
    if !data.is_dir() {
        return Err(BackupError::NoData(home.to_path_buf()));
    }
    if !atonomi_api::file::is_vacant(out)? {
        return Err(BackupError::OutNotEmpty(out.to_path_buf()));
    }
    std::fs::create_dir_all(out).map_err(FileError::at("creating", out))?;
    let out = out
        .canonicalize()
        .map_err(FileError::at("resolving", out))?;
    let socket = home.join(crate::control::SOCKET_NAME);
    let point = if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        crate::control::request_backup(&socket, &out.join("data"))?
    } else {
        crate::chain::checkpoint_closed(&data, &out.join("data"))?
    };

    let skip = if include_consensus_key {
        Vec::new()
    } else {
        let (key, next, marker) = consensus_key_files(home);
        vec![key, next, marker]
    };
    // The data directory is the checkpoint's; sockets and logs are not the node's state.
    copy_tree(home, &out.join("home"), &|path| {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        path != data
            && !name.ends_with(".sock")
            && !name.ends_with(".log")
            && !skip.iter().any(|s| s == path)
    })?;
    let mut files = BTreeMap::new();
    hash_tree(&out, &out, &mut files)?;
    let manifest = Manifest {
        format: FORMAT,
        created_at_ms: crate::clock::now_ms(),
        data: point,
        consensus_key_included: include_consensus_key,
        files,
    };
    let text = serde_json::to_vec_pretty(&manifest).map_err(|e| BackupError::Manifest {
        path: out.join(MANIFEST),
        why: e.to_string(),
    })?;
    let tmp = out.join(format!("{MANIFEST}.tmp"));
    std::fs::write(&tmp, text).map_err(FileError::at("writing", &tmp))?;
    std::fs::rename(&tmp, out.join(MANIFEST)).map_err(FileError::at("renaming", &tmp))?;
    Ok(manifest)
}

fn hash_file(path: &Path) -> Result<FileEntry> {
    let mut f = std::fs::File::open(path).map_err(FileError::at("opening", path))?;
    let mut hasher = blake3::Hasher::new();
    let bytes = std::io::copy(&mut f, &mut hasher).map_err(FileError::at("reading", path))?;
    Ok(FileEntry {
        bytes,
        blake3: hasher.finalize().to_hex().to_string(),
    })
}

/// Every file under `dir` but the manifest, by path relative to `root`.
fn hash_tree(root: &Path, dir: &Path, out: &mut BTreeMap<String, FileEntry>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(FileError::at("reading", dir))? {
        let entry = entry.map_err(FileError::at("reading", dir))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(FileError::at("reading", &path))?;
        if kind.is_dir() {
            hash_tree(root, &path, out)?;
        } else if kind.is_file() {
            let rel = relative(root, &path);
            if rel != MANIFEST && !rel.ends_with(".tmp") {
                out.insert(rel, hash_file(&path)?);
            }
        }
    }
    Ok(())
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// Reads and checks a backup: the manifest, and every file it names with its size and
/// hash; nothing more, nothing less.
pub fn verify(from: &Path) -> Result<Manifest> {
    let path = from.join(MANIFEST);
    let len = std::fs::metadata(&path)
        .map_err(FileError::at("reading", &path))?
        .len();
    if len > MAX_MANIFEST {
        return Err(BackupError::Manifest {
            path,
            why: format!("{len} bytes, more than a manifest may have ({MAX_MANIFEST})"),
        });
    }
    let text = std::fs::read(&path).map_err(FileError::at("reading", &path))?;
    let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| BackupError::Manifest {
        path: path.clone(),
        why: e.to_string(),
    })?;
    if manifest.format != FORMAT {
        return Err(BackupError::Manifest {
            path,
            why: format!(
                "backup format {} (this atonomi reads format {FORMAT})",
                manifest.format
            ),
        });
    }
    let mut found = BTreeMap::new();
    hash_tree(from, from, &mut found)?;
    for (name, want) in &manifest.files {
        match found.get(name) {
            None => return Err(BackupError::Damaged(format!("{name} is missing"))),
            Some(got) if got != want => {
                return Err(BackupError::Damaged(format!(
                    "{name} has {} bytes with blake3 {}, the manifest says {} bytes with {}",
                    got.bytes, got.blake3, want.bytes, want.blake3
                )))
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = found.keys().find(|k| !manifest.files.contains_key(*k)) {
        return Err(BackupError::Damaged(format!(
            "{extra} is not in the manifest"
        )));
    }
    if !from.join("data/CURRENT").is_file() {
        return Err(BackupError::Damaged("data/ holds no RocksDB".into()));
    }
    Ok(manifest)
}

/// How a data point reads in a refusal.
fn describe(p: &DataPoint) -> String {
    match p.guard_height {
        Some(g) => format!("height {}, guard at height {g}", p.height),
        None => format!("height {}, guard never signed", p.height),
    }
}

/// Restores the backup at `from` into `home` (the node there stopped).
pub fn restore(from: &Path, home: &Path) -> Result<Restored> {
    let manifest = verify(from)?;
    let data = home.join("data");
    // Everything is checked before anything is written.
    let mut previous = None;
    if data.exists() {
        let here = read_point(&data)?;
        let backup = &manifest.data;
        if here.height > backup.height || here.guard_height > backup.guard_height {
            return Err(BackupError::Ahead {
                path: data,
                here: describe(&here),
                backup: describe(backup),
            });
        }
        previous = Some(here);
    }
    let (mut written, mut unchanged) = (Vec::new(), Vec::new());
    for (name, entry) in &manifest.files {
        let Some(rel) = name.strip_prefix("home/") else {
            continue;
        };
        let target = home.join(rel);
        if target.exists() {
            if hash_file(&target)? != *entry {
                return Err(BackupError::Differs(target));
            }
            unchanged.push(rel.to_string());
        } else {
            written.push(rel.to_string());
        }
    }

    for rel in &written {
        let target = home.join(rel);
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir).map_err(FileError::at("creating", dir))?;
        }
        let source = from.join("home").join(rel);
        std::fs::copy(&source, &target).map_err(FileError::at("copying", &source))?;
    }
    let staging = home.join("data.restoring");
    if staging.exists() {
        // Left by a restore that was interrupted: never used, safe to remove.
        std::fs::remove_dir_all(&staging).map_err(FileError::at("removing", &staging))?;
    }
    copy_tree(&from.join("data"), &staging, &|_| true)?;
    crate::chain::forget_signing(&staging)?;
    let previous_data = match previous {
        Some(p) => {
            let aside = home.join(format!("data.before-restore-{}", p.height));
            std::fs::rename(&data, &aside).map_err(FileError::at("moving", &data))?;
            Some(aside)
        }
        None => None,
    };
    std::fs::rename(&staging, &data).map_err(FileError::at("moving", &staging))?;
    // The key may have signed after the backup: the node must treat its empty guard
    // as a wiped validator's (wait for the network's height), never as a new one's.
    let (key, _, marker) = consensus_key_files(home);
    if key.exists() && !marker.exists() {
        std::fs::write(&marker, b"restored from a backup\n")
            .map_err(FileError::at("writing", &marker))?;
    }
    Ok(Restored {
        home: home.to_path_buf(),
        data: manifest.data,
        written,
        unchanged,
        previous_data,
    })
}

/// Copies the files under `from` that `keep` accepts to `to`, each synced to disk (a
/// restored directory is renamed into place only once all of it is there; a backup
/// is durable when it is reported).
fn copy_tree(from: &Path, to: &Path, keep: &dyn Fn(&Path) -> bool) -> Result<()> {
    std::fs::create_dir_all(to).map_err(FileError::at("creating", to))?;
    for entry in std::fs::read_dir(from).map_err(FileError::at("reading", from))? {
        let entry = entry.map_err(FileError::at("reading", from))?;
        let path = entry.path();
        if !keep(&path) {
            continue;
        }
        let kind = entry.file_type().map_err(FileError::at("reading", &path))?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&path, &target, keep)?;
        } else if kind.is_file() {
            std::fs::copy(&path, &target).map_err(FileError::at("copying", &path))?;
            std::fs::File::open(&target)
                .and_then(|f| f.sync_all())
                .map_err(FileError::at("syncing", &target))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup_dir(format: u32) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        std::fs::write(dir.path().join("home/config.toml"), b"x = 1\n").unwrap();
        let mut files = BTreeMap::new();
        hash_tree(dir.path(), dir.path(), &mut files).unwrap();
        let manifest = Manifest {
            format,
            created_at_ms: 1,
            data: DataPoint {
                height: 0,
                block_hash: None,
                state_root: None,
                guard_height: None,
            },
            consensus_key_included: false,
            files,
        };
        std::fs::write(
            dir.path().join(MANIFEST),
            serde_json::to_vec(&manifest).unwrap(),
        )
        .unwrap();
        dir
    }

    #[test]
    fn a_file_the_manifest_does_not_name_is_damage() {
        let dir = backup_dir(FORMAT);
        std::fs::write(dir.path().join("home/extra"), b"?").unwrap();
        let e = verify(dir.path()).unwrap_err().to_string();
        assert!(e.contains("home/extra is not in the manifest"), "{e}");
    }

    #[test]
    fn another_format_is_refused_by_name() {
        let dir = backup_dir(FORMAT + 1);
        let e = verify(dir.path()).unwrap_err().to_string();
        assert!(e.contains(&format!("backup format {}", FORMAT + 1)), "{e}");
    }

    #[test]
    fn a_backup_without_a_database_is_damage() {
        let dir = backup_dir(FORMAT);
        let e = verify(dir.path()).unwrap_err().to_string();
        assert!(e.contains("data/ holds no RocksDB"), "{e}");
    }
}
