//! State snapshots: `atonomi snapshot export` writes the state at a kept height as
//! chunk files, each named with its blake3 hash in a manifest bound to that height's
//! header and commit certificate; `atonomi snapshot import` rebuilds a node home from
//! them. Nothing in a snapshot is trusted: every chunk's hash is checked before any
//! state is written, every entry against its leaf, the whole against the header's
//! state root, the header against the certificate, and the certificate against the
//! validator set in the imported state (whose hash the header names). The import
//! builds `data.importing` and renames it to `data` only when all of that holds.

use crate::chain::{snapshot_records, voting_set_in, Chain};
use crate::launch::{load_config, load_genesis};
use anyhow::{bail, ensure, Context, Result};
use atonomi_consensus::CommitCertificate;
use atonomi_primitives::block::Block;
use atonomi_primitives::{codec, Hash, Height};
use atonomi_storage::{
    LogConfig, RocksConfig, RocksStore, SnapshotChunk, SnapshotHead, StateDb, StorageError,
};
use serde::{Deserialize, Serialize};
use std::path::Path;

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
    ensure!(data.exists(), "{} has no data directory", home.display());
    let chain = Chain::open(
        &data,
        &genesis,
        &RocksConfig::default(),
        LogConfig {
            retention: config.storage.state_retention,
        },
    )
    .with_context(|| {
        format!(
            "opening {} (is the node still running? stop it first)",
            data.display()
        )
    })?;
    let height = height.unwrap_or(chain.height().get());
    ensure!(
        height > 0,
        "height 0 is the genesis: every node has it from genesis.json"
    );
    let block = chain
        .block(Height::new(height))?
        .with_context(|| format!("no block at height {height}"))?;
    let commit = chain
        .certificate(Height::new(height))?
        .with_context(|| format!("no commit certificate at height {height}"))?;
    let epoch = chain.checkpoint_epoch_at(Height::new(height))?;
    if out.exists() && std::fs::read_dir(out)?.next().is_some() {
        bail!("{} is not empty", out.display());
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
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
        Err(StorageError::Pruned { oldest, latest, .. }) => bail!(
            "height {height} is pruned: this node keeps heights {oldest} to {latest} ([storage] state_retention)"
        ),
        other => other?,
    };
    ensure!(
        head.root == block.header.state_root,
        "the state of height {height} does not lead to its header's root"
    );
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
    std::fs::write(
        out.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest)?,
    )?;
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
    ensure!(
        Path::new(&c.file).file_name() == Some(std::ffi::OsStr::new(&c.file)),
        "chunk name {:?} is not a plain file name",
        c.file
    );
    let len = std::fs::metadata(&path)
        .with_context(|| format!("chunk {} is missing", c.file))?
        .len();
    ensure!(
        len == c.bytes && len <= MAX_CHUNK_BYTES,
        "chunk {} is {len} bytes, the manifest says {}: truncated or replaced",
        c.file,
        c.bytes
    );
    let bytes = std::fs::read(&path).with_context(|| format!("reading chunk {}", c.file))?;
    ensure!(
        Hash::of(&bytes) == c.blake3,
        "chunk {} does not hash to {} (tampered or corrupt)",
        c.file,
        c.blake3
    );
    Ok(bytes)
}

/// Restores `home` (made by `atonomi init`, with its genesis.json and no data yet) from
/// the snapshot in `from`.
pub fn import(home: &Path, from: &Path) -> Result<serde_json::Value> {
    let config = load_config(home)?;
    let genesis = load_genesis(&home.join(&config.genesis))?;
    let data = home.join("data");
    ensure!(
        !data.exists(),
        "{} already has a data directory: import into a new home",
        home.display()
    );
    let mpath = from.join("manifest.json");
    let mlen = std::fs::metadata(&mpath)
        .with_context(|| format!("reading {}", mpath.display()))?
        .len();
    ensure!(
        mlen <= MAX_MANIFEST_BYTES,
        "{} is too large",
        mpath.display()
    );
    let manifest: Manifest = serde_json::from_slice(&std::fs::read(&mpath)?)
        .with_context(|| format!("{} is not a snapshot manifest", mpath.display()))?;
    ensure!(
        manifest.format == FORMAT,
        "snapshot format {:?}, this atonomi reads {FORMAT:?}",
        manifest.format
    );
    let genesis_hash = Hash::of(genesis.to_json().as_bytes());
    ensure!(
        manifest.genesis_hash == genesis_hash,
        "the snapshot is of chain {} (genesis {}), this home's genesis is {genesis_hash}",
        manifest.chain_id,
        manifest.genesis_hash
    );
    let head: SnapshotHead =
        codec::decode(&hex::decode(&manifest.head)?, 1 << 10).context("the manifest's head")?;
    let block: Block =
        codec::decode(&hex::decode(&manifest.block)?, 64 << 20).context("the manifest's block")?;
    let commit: CommitCertificate = codec::decode(&hex::decode(&manifest.commit)?, 16 << 20)
        .context("the manifest's commit certificate")?;
    let height = block.header.height.get();
    ensure!(
        height == manifest.height && head.version == height && commit.height == block.header.height,
        "the manifest's height, head, block and certificate disagree"
    );
    ensure!(
        block.hash() == commit.block && block.hash() == manifest.block_hash,
        "the certificate is not for the manifest's block"
    );
    ensure!(
        block.header.state_root == head.root && head.root == manifest.state_root,
        "the snapshot's root is not the header's state root"
    );
    // Every chunk is read and hashed before anything is written.
    for c in &manifest.chunks {
        read_chunk(from, c)?;
    }

    let staging = home.join("data.importing");
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    let result = (|| -> Result<serde_json::Value> {
        let kv = RocksStore::open(&staging, &RocksConfig::default())?;
        let chunks = manifest.chunks.iter().map(|c| {
            let bytes = read_chunk(from, c).map_err(|e| StorageError::Invalid(format!("{e:#}")))?;
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
        ensure!(
            set.hash() == block.header.validator_set_hash,
            "the validator set in the snapshot's state is not the one the header names"
        );
        let signed = commit
            .verify(&genesis.chain_id, &set)
            .map_err(|e| anyhow::anyhow!("the commit certificate does not verify: {e}"))?;
        ensure!(
            signed.saturating_mul(3) > set.total_power().saturating_mul(2),
            "the commit certificate carries {signed} of {} voting power, not two thirds",
            set.total_power()
        );
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
                .with_context(|| format!("moving {} to {}", staging.display(), data.display()))?;
            Ok(v)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(e.context(format!(
                "importing {}: nothing was imported",
                from.display()
            )))
        }
    }
}
