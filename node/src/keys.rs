//! Key files: JSON with the account (public key) and the 32-byte secret seed, written
//! with owner-only permissions.

use anyhow::{bail, Context, Result};
use atonomi_primitives::{AccountId, Keypair};
use serde_json::json;
use std::io::Write;
use std::path::Path;

/// Largest key file read.
const MAX_KEY_FILE: u64 = 4096;

pub fn write(path: &Path, key: &Keypair, force: bool) -> Result<()> {
    write_secret(
        path,
        &json!({ "account": key.account(), "secret_seed": hex_seed(key) }),
        force,
    )
}

/// Writes a key file's JSON with owner-only permissions (refusing to overwrite unless
/// `force`), synced.
fn write_secret(path: &Path, body: &serde_json::Value, force: bool) -> Result<()> {
    if path.exists() && !force {
        bail!("{} exists; pass --force to overwrite it", path.display());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    writeln!(f, "{}", serde_json::to_string_pretty(body)?)?;
    f.sync_all()?;
    Ok(())
}

fn hex_seed(key: &Keypair) -> String {
    key.to_seed().iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads a key file and checks that its account matches its secret.
pub fn read(path: &Path) -> Result<Keypair> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("reading key file {}", path.display()))?;
    if meta.len() > MAX_KEY_FILE {
        bail!(
            "{} is {} bytes; a key file is under {MAX_KEY_FILE}",
            path.display(),
            meta.len()
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading key file {}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a key file (JSON)", path.display()))?;
    let seed = v
        .get("secret_seed")
        .and_then(|s| s.as_str())
        .context("key file has no \"secret_seed\"")?;
    let seed = atonomi_primitives::hash::parse_hex32(seed)
        .context("\"secret_seed\" must be 64 hex characters")?;
    let key = Keypair::from_seed(seed);
    if let Some(account) = v.get("account").and_then(|a| a.as_str()) {
        let account: AccountId = account
            .parse()
            .context("\"account\" must be 64 hex characters")?;
        if account != key.account() {
            bail!(
                "{}: \"account\" does not match \"secret_seed\"",
                path.display()
            );
        }
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_and_refuse_overwrite() {
        let dir = std::env::temp_dir().join(format!("atonomi-keys-test-{}", std::process::id()));
        let path = dir.join("k.json");
        let _ = std::fs::remove_dir_all(&dir);
        let key = Keypair::from_label("keys test");
        write(&path, &key, false).unwrap();
        assert_eq!(read(&path).unwrap().account(), key.account());
        assert!(write(&path, &key, false).is_err());
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
        assert!(read(&path).is_err());
        std::fs::write(&path, b"\xff\x00garbage").unwrap();
        assert!(read(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// A secp256k1 bridge key file (a validator's checkpoint key, or a relayer's funded
/// Ethereum key): JSON with the address and the 32-byte secret, owner-only.
pub mod bridge {
    use alloy::signers::local::PrivateKeySigner;
    use anyhow::{bail, Context, Result};
    use std::path::Path;

    pub fn write(path: &Path, key: &PrivateKeySigner, force: bool) -> Result<()> {
        super::write_secret(
            path,
            &serde_json::json!({ "address": key.address().to_string(), "secret_key": alloy::hex::encode(key.to_bytes()) }),
            force,
        )
    }

    pub fn read(path: &Path) -> Result<PrivateKeySigner> {
        let meta = std::fs::metadata(path)
            .with_context(|| format!("reading bridge key file {}", path.display()))?;
        if meta.len() > 4096 {
            bail!("{} is too large for a key file", path.display());
        }
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path)?)
            .with_context(|| format!("{} is not JSON", path.display()))?;
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
