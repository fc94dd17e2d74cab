//! `atonomi keys` (ed25519 key files: new, show, the dev keys) and `atonomi device-id`.

use anyhow::{bail, Result};
use atonomi_api::keyfile as keys;
use atonomi_primitives::DeviceId;
use clap::Subcommand;
use serde_json::json;
use std::path::{Path, PathBuf};

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
    /// Replace a validator's consensus key (suspected exposure, or routine): makes the
    /// new key beside the node's (keys/validator.next.json beside keys/validator.json;
    /// kept when it exists, so running this again sends the same rotation), signs the
    /// new key's proof of possession, and sends the rotation signed by --key, a key of
    /// the manufacturer operating the validator (or writes it with --out, as `atonomi
    /// tx` does; without either, prints the call). The change takes effect 2 blocks
    /// after the block that includes it; the running node signs with the new key from
    /// that height on, with no restart and never a second signature at a height its
    /// old key signed. Once the new key is in force, running this again retires the
    /// old file (validator.retired-ACCOUNT.json) and makes the next key the node's key.
    /// Example: atonomi keys rotate-consensus --home v1 --key operator.json --rpc http://127.0.0.1:8645
    RotateConsensus {
        /// The validator node's home (its config.toml names the key file).
        #[arg(long, env = "ATONOMI_HOME")]
        home: PathBuf,
        /// The operator's key file (a key of the manufacturer operating the validator).
        #[arg(long, env = "ATONOMI_KEY")]
        key: Option<PathBuf>,
        /// Node JSON-RPC URL.
        #[arg(long, env = "ATONOMI_RPC", default_value = "http://127.0.0.1:8645")]
        rpc: String,
        /// The height the proof names (default: the node's latest); the rotation must
        /// be included within 1,000 heights of it.
        #[arg(long)]
        height: Option<u64>,
        #[command(flatten)]
        file: super::tx::FileArgs,
    },
}

pub fn run(cmd: KeysCommand) -> Result<()> {
    match cmd {
        KeysCommand::RotateConsensus {
            home,
            key,
            rpc,
            height,
            file,
        } => {
            return super::runtime()?.block_on(rotate_consensus(
                &home,
                key.as_deref(),
                &rpc,
                height,
                &file,
            ))
        }
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

/// `atonomi keys rotate-consensus`.
async fn rotate_consensus(
    home: &Path,
    operator: Option<&Path>,
    url: &str,
    height: Option<u64>,
    file: &super::tx::FileArgs,
) -> Result<()> {
    use atonomi_client::{Answered, AtonomiApiClient, Node};
    use atonomi_primitives::{tx::sign_rotation, Height, Keypair};
    let config = atonomi_node::config::load_config(home)?;
    let Some(rel) = config.validator_key else {
        bail!(
            "{} names no validator_key: this node is not a validator",
            home.join("config.toml").display()
        );
    };
    let path = home.join(rel);
    let next_path = atonomi_node::keys::next_consensus_key_path(&path);
    let node = if file.offline {
        None
    } else {
        Some(Node::connect(url)?)
    };
    // Once the last rotation is in force, its key becomes the node's key file.
    if let (Some(node), true) = (&node, next_path.exists()) {
        let set = node.rpc().get_validators(None).await.or_node(node)?;
        let next = keys::read(&next_path)?.account();
        if set.current.is_some_and(|s| s.get(&next).is_some()) {
            let old = keys::read(&path)?.account();
            let retired = path.with_file_name(format!("validator.retired-{old}.json"));
            std::fs::rename(&path, &retired)?;
            std::fs::rename(&next_path, &path)?;
            eprintln!(
                "the last rotation is in force: {} now holds {next}; the old key is in {}",
                path.display(),
                retired.display()
            );
        }
    }
    let current = keys::read(&path)?;
    let new = if next_path.exists() {
        keys::read(&next_path)?
    } else {
        let k = Keypair::generate()?;
        keys::write(&next_path, &k, false)?;
        k
    };
    let chain_id = super::tx::chain_id_of(file, node.as_ref(), url).await?;
    let height = match (height, &node) {
        (Some(h), _) => h,
        (None, Some(node)) => node.rpc().status().await.or_node(node)?.height.get(),
        (None, None) => bail!("--offline: give the proof's height with --height H (the chain's latest, or close below it)"),
    };
    let proof = sign_rotation(&new, &chain_id, &current.account(), Height::new(height));
    let call = json!({ "rotate_consensus_key": {
        "validator": current.account(),
        "new_key": new.account(),
        "height": height,
        "proof": proof,
    } });
    if operator.is_none() && file.out.is_none() {
        println!(
            "{}",
            json!({ "validator": current.account(), "new_key": new.account(),
                    "new_key_file": next_path, "call": call })
        );
        eprintln!("send it with: atonomi tx --key OPERATOR.json '{call}'");
        return Ok(());
    }
    super::tx::send(
        url,
        operator,
        &call.to_string(),
        None,
        std::time::Duration::from_secs(30),
        file,
    )
    .await
}
