//! `atonomi keys` (ed25519 key files: new, show, the dev keys) and `atonomi device-id`.

use anyhow::Result;
use atonomi_api::keyfile as keys;
use atonomi_primitives::DeviceId;
use clap::Subcommand;
use serde_json::json;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a new key from the operating system's randomness and write it to --out
    /// (permissions 0600). Prints the account.
    New {
        /// Where to write the key file.
        #[arg(long)]
        out: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Print the account (public key, hex) of a key file.
    Show {
        /// The key file.
        file: PathBuf,
    },
    /// Write one of the dev genesis keys (admin, validator, manufacturer, auditor, alice,
    /// bob). They come from public labels: for dev chains and testnets made with
    /// `genesis new`, never for real value.
    Dev {
        /// admin, validator, manufacturer, auditor, alice or bob.
        name: String,
        /// Where to write the key file.
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(cmd: KeysCommand) -> Result<()> {
    match cmd {
        KeysCommand::New { out, force } => {
            let key = atonomi_primitives::Keypair::generate()?;
            keys::write(&out, &key, force)?;
            println!("{}", json!({ "account": key.account(), "file": out }));
        }
        KeysCommand::Dev { name, out } => {
            if !atonomi_genesis::dev::NAMES.contains(&name.as_str()) {
                anyhow::bail!(
                    "{name} is not a dev key; one of {:?}",
                    atonomi_genesis::dev::NAMES
                );
            }
            let key = atonomi_genesis::dev::key(&name);
            keys::write(&out, &key, false)?;
            println!("{}", json!({ "account": key.account() }));
        }
        KeysCommand::Show { file } => {
            let key = keys::read(&file)?;
            println!("{}", json!({ "account": key.account() }));
        }
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct DeviceIdArgs {
    /// The manufacturer's secret salt.
    salt: String,
    /// The device's hardware identifier (serial number, MAC, …).
    hardware_id: String,
}

/// Prints the device id of a salt and hardware id (both as given, UTF-8).
pub fn device_id(args: DeviceIdArgs) -> Result<()> {
    let id = DeviceId::derive(args.salt.as_bytes(), args.hardware_id.as_bytes());
    println!("{}", json!({ "device_id": id }));
    Ok(())
}
