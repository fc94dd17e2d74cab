//! Key files. The ed25519 key file (account and secret seed) is a public format, in
//! `atonomi_api::keyfile`; the node adds its secp256k1 bridge key files.

pub use atonomi_api::keyfile::{read, write, KeyFileError};
pub use bridge::BridgeKeyError;

/// A secp256k1 bridge key file (a validator's checkpoint key, or a relayer's funded
/// Ethereum key): JSON with the address and the 32-byte secret, owner-only.
pub mod bridge {
    use alloy::signers::local::PrivateKeySigner;
    use atonomi_api::keyfile::KeyFileError;
    use std::path::{Path, PathBuf};

    /// Why a bridge key file could not be read or written.
    #[derive(Debug, thiserror::Error)]
    pub enum BridgeKeyError {
        #[error(transparent)]
        File(#[from] KeyFileError),
        #[error("{}: not a bridge key file: {error}", path.display())]
        Format {
            path: PathBuf,
            error: serde_json::Error,
        },
        #[error("{}: not a secp256k1 secret key", .0.display())]
        Secret(PathBuf),
        #[error("{}: the address does not match the secret key", .0.display())]
        Address(PathBuf),
    }

    #[derive(serde::Serialize, serde::Deserialize)]
    struct BridgeKeyFile {
        #[serde(default)]
        address: Option<String>,
        secret_key: String,
    }

    pub fn write(path: &Path, key: &PrivateKeySigner, force: bool) -> Result<(), BridgeKeyError> {
        let file = BridgeKeyFile {
            address: Some(key.address().to_string()),
            secret_key: alloy::hex::encode(key.to_bytes()),
        };
        let json = serde_json::to_value(&file).map_err(|error| BridgeKeyError::Format {
            path: path.to_path_buf(),
            error,
        })?;
        Ok(atonomi_api::keyfile::write_owner_only(path, &json, force)?)
    }

    pub fn read(path: &Path) -> Result<PrivateKeySigner, BridgeKeyError> {
        let v = atonomi_api::keyfile::read_json(path)?;
        let file: BridgeKeyFile =
            serde_json::from_value(v).map_err(|error| BridgeKeyError::Format {
                path: path.to_path_buf(),
                error,
            })?;
        let key: PrivateKeySigner = file
            .secret_key
            .trim_start_matches("0x")
            .parse()
            .map_err(|_| BridgeKeyError::Secret(path.to_path_buf()))?;
        if let Some(a) = &file.address {
            if !a.eq_ignore_ascii_case(&key.address().to_string()) {
                return Err(BridgeKeyError::Address(path.to_path_buf()));
            }
        }
        Ok(key)
    }

    pub fn read_or_create(path: &Path) -> Result<PrivateKeySigner, BridgeKeyError> {
        if path.exists() {
            return read(path);
        }
        let key = PrivateKeySigner::random();
        write(path, &key, false)?;
        Ok(key)
    }
}

/// A validator's consensus keys: the configured one (`validator_key`) and, once
/// `atonomi keys rotate-consensus` made it, the next one beside it
/// ([`next_consensus_key_path`]). The host signs each height with the key of the set
/// voting on it, so a rotation takes effect at its height without a restart.
#[derive(Debug)]
pub struct ConsensusKeys {
    keys: Vec<atonomi_primitives::Keypair>,
    next: Option<std::path::PathBuf>,
}

/// Where the key a rotation replaces `path` with lives: `validator.next.json` beside
/// `validator.json`.
pub fn next_consensus_key_path(path: &std::path::Path) -> std::path::PathBuf {
    path.with_extension("next.json")
}

impl ConsensusKeys {
    /// `key`, read from `path` (`None`: a key with no file, as on the dev chain, which
    /// never rotates).
    pub fn new(key: atonomi_primitives::Keypair, path: Option<&std::path::Path>) -> Self {
        ConsensusKeys {
            keys: vec![key],
            next: path.map(next_consensus_key_path),
        }
    }

    /// The key `is_member` accepts: a known one, else the next key file's when it
    /// exists and is accepted (read then, so that a rotation prepared while the node
    /// runs is found). A copy, as the engine owns its key.
    pub fn find(
        &mut self,
        is_member: impl Fn(&atonomi_primitives::AccountId) -> bool,
    ) -> Option<atonomi_primitives::Keypair> {
        let copy =
            |k: &atonomi_primitives::Keypair| atonomi_primitives::Keypair::from_seed(k.to_seed());
        if let Some(k) = self.keys.iter().find(|k| is_member(&k.account())) {
            return Some(copy(k));
        }
        let k = self.read_next()?;
        if !is_member(&k.account()) {
            return None;
        }
        tracing::info!(key = %k.account(), "the rotated consensus key is in the validator set");
        let found = copy(&k);
        self.keys.push(k);
        Some(found)
    }

    /// Every key: the known ones, and the next key file's when it exists (copies).
    pub fn all(&mut self) -> Vec<atonomi_primitives::Keypair> {
        if let Some(k) = self.read_next() {
            if self.keys.iter().all(|known| known.account() != k.account()) {
                self.keys.push(k);
            }
        }
        self.keys
            .iter()
            .map(|k| atonomi_primitives::Keypair::from_seed(k.to_seed()))
            .collect()
    }

    fn read_next(&self) -> Option<atonomi_primitives::Keypair> {
        let path = self.next.as_ref().filter(|p| p.exists())?;
        read(path)
            .inspect_err(|e| tracing::warn!("reading the next consensus key: {e}"))
            .ok()
    }
}
