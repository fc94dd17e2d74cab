//! State snapshots: `atonomi snapshot export` writes the state at a kept height as
//! chunk files, each named with its blake3 hash in a manifest bound to that height's
//! header and commit certificate; `atonomi snapshot import` rebuilds a node home from
//! them. Nothing in a snapshot is trusted: every chunk's hash is checked before any
//! state is written, every entry against its leaf, the whole against the header's
//! state root, the header against the certificate, and the certificate against the
//! validator set in the imported state (whose hash the header names). The import
//! builds `data.importing` and renames it to `data` only when all of that holds.

use crate::chain::{snapshot_records, voting_set_in, Chain, ChainReader};
use crate::config::{load_config, load_genesis};
use atonomi_api::file::FileError;
use atonomi_consensus::CommitCertificate;
use atonomi_genesis::Genesis;
use atonomi_primitives::block::Block;
use atonomi_primitives::{codec, Hash, Height};
use atonomi_storage::{
    LogConfig, RocksConfig, RocksStore, SnapshotChunk, SnapshotHead, StateDb, StorageError,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Why a snapshot could not be written or read. A refused import leaves nothing
/// behind.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Load(#[from] crate::config::LoadError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Chain(#[from] crate::chain::ChainError),
    #[error(transparent)]
    File(#[from] atonomi_api::file::FileError),
    #[error("{} has no data directory", .0.display())]
    NoData(PathBuf),
    #[error("opening {} (is the node still running? stop it first): {error}", path.display())]
    Busy {
        path: PathBuf,
        error: crate::chain::ChainError,
    },
    #[error("height 0 is the genesis: every node has it from genesis.json")]
    Genesis,
    #[error("no {what} at height {height}")]
    Missing { what: &'static str, height: u64 },
    #[error("{} is not empty", .0.display())]
    OutNotEmpty(PathBuf),
    #[error("height {height} is pruned: this node keeps heights {oldest} to {latest} ([storage] state_retention)")]
    Pruned {
        height: u64,
        oldest: u64,
        latest: u64,
    },
    #[error("the state of height {0} does not lead to its header's root")]
    RootMismatch(u64),
    #[error("{} already has a data directory: import into a new home", .0.display())]
    HasData(PathBuf),
    #[error("{} is too large", .0.display())]
    ManifestTooLarge(PathBuf),
    #[error("{} is not a snapshot manifest: {error}", path.display())]
    NotAManifest {
        path: PathBuf,
        error: serde_json::Error,
    },
    #[error("snapshot format {0:?}, this atonomi reads {FORMAT:?}")]
    Format(String),
    #[error(
        "the snapshot is of chain {chain_id} (genesis {snapshot}), this home's genesis is {home}"
    )]
    OtherChain {
        chain_id: String,
        snapshot: Hash,
        home: Hash,
    },
    #[error("the manifest's {what} does not decode: {reason}")]
    ManifestField { what: &'static str, reason: String },
    #[error("{0}")]
    Inconsistent(Inconsistency),
    #[error("chunk name {0:?} is not a plain file name")]
    ChunkName(String),
    #[error("chunk {0} is missing")]
    ChunkMissing(String),
    #[error("chunk {file} is {len} bytes, the manifest says {expected}: truncated or replaced")]
    ChunkLength {
        file: String,
        len: u64,
        expected: u64,
    },
    #[error("chunk {file} does not hash to {expected} (tampered or corrupt)")]
    ChunkHash { file: String, expected: Hash },
    #[error("the commit certificate does not verify: {0}")]
    Certificate(atonomi_consensus::CertificateError),
    #[error("the commit certificate carries {signed} of {total} voting power, not two thirds")]
    Quorum { signed: u128, total: u128 },
    #[error("importing {}: nothing was imported: {error}", from.display())]
    Import {
        from: PathBuf,
        error: Box<SnapshotError>,
    },
}

/// Parts of a snapshot that contradict each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Inconsistency {
    #[error("the manifest's height, head, block and certificate disagree")]
    Heights,
    #[error("the certificate is not for the manifest's block")]
    Block,
    #[error("the snapshot's root is not the header's state root")]
    Root,
    #[error("the validator set in the snapshot's state is not the one the header names")]
    ValidatorSet,
}

type Result<T, E = SnapshotError> = std::result::Result<T, E>;

/// Decodes one hex-and-borsh field of the manifest.
fn manifest_field<T: borsh::BorshDeserialize>(
    what: &'static str,
    hex_text: &str,
    max: usize,
) -> Result<T> {
    let bad = |reason: String| SnapshotError::ManifestField { what, reason };
    let bytes = hex::decode(hex_text).map_err(|e| bad(e.to_string()))?;
    codec::decode(&bytes, max).map_err(|e| bad(e.to_string()))
}

pub const FORMAT: &str = "atonomi-snapshot/1";
/// Twigs (2,048 log entries each) per chunk file.
const TWIGS_PER_CHUNK: u64 = 16;
/// Largest chunk file accepted: 16 twigs of leaves, bitmaps and entries of bounded size.
const MAX_CHUNK_BYTES: u64 = 256 << 20;
const MAX_MANIFEST_BYTES: u64 = 64 << 20;

#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub chain_id: String,
    pub genesis_hash: Hash,
    pub height: u64,
    pub state_root: Hash,
    pub block_hash: Hash,
    /// hex of the borsh `SnapshotHead`.
    pub head: String,
    /// hex of the borsh block and commit certificate of `height`.
    pub block: String,
    pub commit: String,
    /// The bridge's checkpoint count at `height`, and the height of the last one.
    pub checkpoint_epoch: u64,
    pub checkpoint_height: Option<u64>,
    pub chunks: Vec<ChunkFile>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ChunkFile {
    pub file: String,
    pub blake3: Hash,
    pub bytes: u64,
}

/// Writes the state of `height` (default: the latest) of the stopped node at `home`.
pub fn export(home: &Path, height: Option<u64>, out: &Path) -> Result<serde_json::Value> {
    let config = load_config(home)?;
    let genesis = load_genesis(&home.join(&config.genesis))?;
    let data = home.join("data");
    if !data.exists() {
        return Err(SnapshotError::NoData(home.to_path_buf()));
    }
    let chain = Chain::open(
        &data,
        &genesis,
        &RocksConfig::default(),
        LogConfig {
            retention: config.storage.state_retention,
        },
    )
    .map_err(|error| SnapshotError::Busy {
        path: data.clone(),
        error,
    })?
    .reader();
    let height = height.unwrap_or(chain.height().get());
    export_at(&chain, &genesis, height, out)
}

/// Writes the state of the kept `height` of `chain` (a running node's reader will do:
/// the state of a kept height does not change) into `out` (new or empty).
pub fn export_at(
    chain: &ChainReader,
    genesis: &Genesis,
    height: u64,
    out: &Path,
) -> Result<serde_json::Value> {
    if height == 0 {
        return Err(SnapshotError::Genesis);
    }
    let missing = |what| SnapshotError::Missing { what, height };
    let block = chain
        .block(Height::new(height))?
        .ok_or_else(|| missing("block"))?;
    let commit = chain
        .certificate(Height::new(height))?
        .ok_or_else(|| missing("commit certificate"))?;
    let epoch = chain.checkpoint_epoch_at(Height::new(height))?;
    if !atonomi_api::file::is_vacant(out)? {
        return Err(SnapshotError::OutNotEmpty(out.to_path_buf()));
    }
    std::fs::create_dir_all(out).map_err(FileError::at("creating", out))?;
    let mut chunks = Vec::new();
    let head = chain.db().snapshot(height, TWIGS_PER_CHUNK, |chunk| {
        let bytes = codec::encode(&chunk);
        let file = format!("chunk-{:06}.bin", chunks.len());
        std::fs::write(out.join(&file), &bytes)
            .map_err(|e| StorageError::Invalid(format!("writing {file}: {e}")))?;
        chunks.push(ChunkFile {
            file,
            blake3: Hash::of(&bytes),
            bytes: bytes.len() as u64,
        });
        Ok(())
    });
    let head = match head {
        Err(StorageError::Pruned { oldest, latest, .. }) => {
            return Err(SnapshotError::Pruned {
                height,
                oldest,
                latest,
            })
        }
        other => other?,
    };
    if head.root != block.header.state_root {
        return Err(SnapshotError::RootMismatch(height));
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        chain_id: genesis.chain_id.to_string(),
        genesis_hash: Hash::of(genesis.to_json().as_bytes()),
        height,
        state_root: head.root,
        block_hash: block.hash(),
        head: hex::encode(codec::encode(&head)),
        block: hex::encode(codec::encode(&block)),
        commit: hex::encode(codec::encode(&commit)),
        checkpoint_epoch: epoch.0,
        checkpoint_height: epoch.1.map(Height::get),
        chunks,
    };
    let mpath = out.join("manifest.json");
    let text =
        serde_json::to_vec_pretty(&manifest).map_err(|error| SnapshotError::NotAManifest {
            path: mpath.clone(),
            error,
        })?;
    std::fs::write(&mpath, text).map_err(FileError::at("writing", &mpath))?;
    Ok(serde_json::json!({
        "height": height,
        "state_root": head.root,
        "block_hash": manifest.block_hash,
        "entries": head.active,
        "chunks": manifest.chunks.len(),
        "bytes": manifest.chunks.iter().map(|c| c.bytes).sum::<u64>(),
        "out": out,
    }))
}

fn read_chunk(dir: &Path, c: &ChunkFile) -> Result<Vec<u8>> {
    let path = dir.join(&c.file);
    if Path::new(&c.file).file_name() != Some(std::ffi::OsStr::new(&c.file)) {
        return Err(SnapshotError::ChunkName(c.file.clone()));
    }
    let len = std::fs::metadata(&path)
        .map_err(|_| SnapshotError::ChunkMissing(c.file.clone()))?
        .len();
    if len != c.bytes || len > MAX_CHUNK_BYTES {
        return Err(SnapshotError::ChunkLength {
            file: c.file.clone(),
            len,
            expected: c.bytes,
        });
    }
    let bytes = std::fs::read(&path).map_err(FileError::at("reading", &path))?;
    if Hash::of(&bytes) != c.blake3 {
        return Err(SnapshotError::ChunkHash {
            file: c.file.clone(),
            expected: c.blake3,
        });
    }
    Ok(bytes)
}

/// Restores `home` (made by `atonomi init`, with its genesis.json and no data yet) from
/// the snapshot in `from`.
pub fn import(home: &Path, from: &Path) -> Result<serde_json::Value> {
    let config = load_config(home)?;
    let genesis = load_genesis(&home.join(&config.genesis))?;
    let data = home.join("data");
    if data.exists() {
        return Err(SnapshotError::HasData(home.to_path_buf()));
    }
    let mpath = from.join("manifest.json");
    let mlen = std::fs::metadata(&mpath)
        .map_err(FileError::at("reading", &mpath))?
        .len();
    if mlen > MAX_MANIFEST_BYTES {
        return Err(SnapshotError::ManifestTooLarge(mpath));
    }
    let text = std::fs::read(&mpath).map_err(FileError::at("reading", &mpath))?;
    let manifest: Manifest =
        serde_json::from_slice(&text).map_err(|error| SnapshotError::NotAManifest {
            path: mpath.clone(),
            error,
        })?;
    if manifest.format != FORMAT {
        return Err(SnapshotError::Format(manifest.format));
    }
    let genesis_hash = Hash::of(genesis.to_json().as_bytes());
    if manifest.genesis_hash != genesis_hash {
        return Err(SnapshotError::OtherChain {
            chain_id: manifest.chain_id,
            snapshot: manifest.genesis_hash,
            home: genesis_hash,
        });
    }
    let head: SnapshotHead = manifest_field("head", &manifest.head, 1 << 10)?;
    let block: Block = manifest_field("block", &manifest.block, 64 << 20)?;
    let commit: CommitCertificate =
        manifest_field("commit certificate", &manifest.commit, 16 << 20)?;
    let height = block.header.height.get();
    let inconsistent = |i| Err(SnapshotError::Inconsistent(i));
    if height != manifest.height || head.version != height || commit.height != block.header.height {
        return inconsistent(Inconsistency::Heights);
    }
    if block.hash() != commit.block || block.hash() != manifest.block_hash {
        return inconsistent(Inconsistency::Block);
    }
    if block.header.state_root != head.root || head.root != manifest.state_root {
        return inconsistent(Inconsistency::Root);
    }
    // Every chunk is read and hashed before anything is written.
    for c in &manifest.chunks {
        read_chunk(from, c)?;
    }

    let staging = home.join("data.importing");
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(FileError::at("removing", &staging))?;
    }
    let result = (|| -> Result<serde_json::Value> {
        let kv = RocksStore::open(&staging, &RocksConfig::default())?;
        let chunks = manifest.chunks.iter().map(|c| {
            let bytes = read_chunk(from, c).map_err(|e| StorageError::Invalid(e.to_string()))?;
            codec::decode::<SnapshotChunk>(&bytes, MAX_CHUNK_BYTES as usize).map_err(|e| {
                StorageError::Invalid(format!("chunk {} does not decode: {e}", c.file))
            })
        });
        let extra = snapshot_records(
            &genesis,
            &block,
            &commit,
            (
                manifest.checkpoint_epoch,
                manifest.checkpoint_height.map(Height::new),
            ),
        );
        let db = StateDb::import(
            kv,
            &head,
            chunks,
            extra,
            LogConfig {
                retention: config.storage.state_retention,
            },
        )?;
        // The certificate must carry two thirds of the set that voted at this height,
        // the one in the imported state whose hash the header names.
        let set = voting_set_in(block.header.height, |k| Ok(db.get(&k.to_bytes())?))?;
        if set.hash() != block.header.validator_set_hash {
            return inconsistent(Inconsistency::ValidatorSet);
        }
        let signed = commit
            .verify(&genesis.chain_id, &set)
            .map_err(SnapshotError::Certificate)?;
        if signed.saturating_mul(3) <= set.total_power().saturating_mul(2) {
            return Err(SnapshotError::Quorum {
                signed,
                total: set.total_power(),
            });
        }
        // The devices index comes from the imported state; the reputation history
        // this node can tell starts here.
        crate::index::rebuild_from_state(&db, height)?;
        Ok(serde_json::json!({
            "height": height,
            "state_root": head.root,
            "entries": head.active,
            "chunks": manifest.chunks.len(),
            "home": home,
        }))
    })();
    match result {
        Ok(v) => {
            std::fs::rename(&staging, &data)
                .map_err(FileError::at("moving the import to", &data))?;
            Ok(v)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(SnapshotError::Import {
                from: from.to_path_buf(),
                error: Box::new(e),
            })
        }
    }
}
