//! Key files. The ed25519 key file (account and secret seed) is a public format, in
//! `atonomi_api::keyfile`; the node adds its secp256k1 bridge key files.

pub use atonomi_api::keyfile::{read, write, KeyFileError};

/// A secp256k1 bridge key file (a validator's checkpoint key, or a relayer's funded
/// Ethereum key): JSON with the address and the 32-byte secret, owner-only.
pub mod bridge {
    use alloy::signers::local::PrivateKeySigner;
    use anyhow::{bail, Context, Result};
    use std::path::Path;

    pub fn write(path: &Path, key: &PrivateKeySigner, force: bool) -> Result<()> {
        Ok(atonomi_api::keyfile::write_owner_only(
            path,
            &serde_json::json!({ "address": key.address().to_string(), "secret_key": alloy::hex::encode(key.to_bytes()) }),
            force,
        )?)
    }

    pub fn read(path: &Path) -> Result<PrivateKeySigner> {
        let v = atonomi_api::keyfile::read_json(path)?;
        let secret = v["secret_key"]
            .as_str()
            .with_context(|| format!("{}: no secret_key", path.display()))?;
        let key: PrivateKeySigner = secret
            .trim_start_matches("0x")
            .parse()
            .with_context(|| format!("{}: not a secp256k1 secret key", path.display()))?;
        if let Some(a) = v["address"].as_str() {
            if !a.eq_ignore_ascii_case(&key.address().to_string()) {
                bail!(
                    "{}: the address does not match the secret key",
                    path.display()
                );
            }
        }
        Ok(key)
    }

    pub fn read_or_create(path: &Path) -> Result<PrivateKeySigner> {
        if path.exists() {
            return read(path);
        }
        let key = PrivateKeySigner::random();
        write(path, &key, false)?;
        Ok(key)
    }
}
