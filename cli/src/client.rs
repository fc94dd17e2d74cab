//! `atonomi tx` and `atonomi query`: a JSON-RPC client that signs locally.

use anyhow::{bail, Context, Result};
use atonomi_client::{Answered, AtonomiApiClient, Error, Node};
use atonomi_primitives::event::TxStatus;
use atonomi_primitives::tx::{sign_activation, Call};
use atonomi_primitives::{DeviceId, Hash, Transaction};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// Prints an answer as the node sent it (pretty JSON).
pub fn print<T: serde::Serialize>(answer: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(answer)?);
    Ok(())
}

/// Signs `call` with the key file, submits it, waits until it is final and prints the
/// receipt. Fails (non-zero exit) when the call failed or the transaction was invalid.
pub async fn send(
    url: &str,
    key_file: &Path,
    call_json: &str,
    device_key: Option<&Path>,
    wait: Duration,
    nonce: Option<u64>,
) -> Result<()> {
    let key = atonomi_node::keys::read(key_file)?;
    let node = Node::connect(url)?;
    let mut json: Value = serde_json::from_str(call_json).context("the call is not valid JSON")?;
    if device_key.is_some() {
        leave_room_for_device_signature(&mut json);
    }
    let mut the_call: Call = serde_json::from_value(json)
        .context("the call is not valid JSON for any call (see `atonomi tx --help`)")?;
    let chain_id = node.chain_id().await?;
    if let Some(dk) = device_key {
        let dkey = atonomi_node::keys::read(dk)?;
        // The device consents to its owner: the signer activating it, or the owner
        // named in a manufacturer's register-and-activate.
        match &mut the_call {
            Call::ActivateDevice {
                device,
                device_signature,
            } => *device_signature = sign_activation(&dkey, &chain_id, device, &key.account()),
            Call::RegisterAndActivate {
                device,
                owner,
                device_signature,
                ..
            } => {
                *device_signature = sign_activation(&dkey, &chain_id, &device.device_id, owner)
            }
            other => bail!(
                "--device-key signs a device's consent to its owner: only activate_device and register_and_activate take it, not {}",
                other.name()
            ),
        }
    }
    let nonce = match nonce {
        Some(n) => n,
        None => node.next_nonce(key.account()).await?,
    };
    let stx = Transaction {
        chain_id,
        signer: key.account(),
        nonce,
        max_fee: None,
        call: the_call,
    }
    .sign(&key);
    let hash = node.submit(&stx).await?;
    tracing::debug!(%hash, "submitted");
    let receipt = match node.wait_final(hash, wait).await {
        Ok(r) => r,
        Err(Error::Dropped { reason, .. }) => bail!(
            "transaction {hash} (nonce {nonce}) was dropped by the node: {reason}; run the command again to sign with the account's current nonce"
        ),
        Err(e) => return Err(e.into()),
    };
    print(&receipt)?;
    match receipt.status {
        TxStatus::Success => Ok(()),
        other => bail!("transaction {hash} is final but did not succeed: {other}"),
    }
}

/// The parameters `current` (as atonomi_getParams returns them) with each NAME=VALUE
/// of `changes` applied: only known names, each value of the type it replaces (a
/// number, or a decimal string for amounts), and the result must decode as Params.
pub fn change_params(current: &atonomi_primitives::Params, changes: &[String]) -> Result<Value> {
    let mut current = serde_json::to_value(current)?;
    for change in changes {
        let (name, value) = change
            .split_once('=')
            .with_context(|| format!("{change}: expected NAME=VALUE"))?;
        let Some(slot) = current.get_mut(name) else {
            bail!("{name} is not a network parameter (`atonomi query params` lists them)");
        };
        *slot = match slot {
            Value::Number(_) => Value::Number(
                value
                    .parse::<u64>()
                    .with_context(|| format!("{name}: a whole number"))?
                    .into(),
            ),
            _ => Value::String(value.to_string()),
        };
    }
    serde_json::from_value::<atonomi_primitives::params::Params>(current.clone())
        .context("the changed parameters are not valid")?;
    Ok(current)
}

/// With `--device-key` the device's signature comes from its key, so the JSON of a
/// call that carries one may leave it out: a placeholder is put in, to be replaced.
pub fn leave_room_for_device_signature(json: &mut Value) {
    let Some(obj) = json.as_object_mut() else {
        return;
    };
    for name in ["activate_device", "register_and_activate"] {
        if let Some(body) = obj.get_mut(name).and_then(Value::as_object_mut) {
            body.entry("device_signature")
                .or_insert_with(|| Value::String("0".repeat(128)));
        }
    }
}

/// Prints the device id for a salt and hardware id (both as given, UTF-8).
pub fn device_id(salt: &str, hardware_id: &str) -> DeviceId {
    DeviceId::derive(salt.as_bytes(), hardware_id.as_bytes())
}

pub fn parse_hash(s: &str) -> Result<Hash> {
    serde_json::from_value(Value::String(s.to_string()))
        .with_context(|| format!("{s} is not a 32-byte hex hash"))
}

/// The network parameters in force, changed as `changes` say (see [`change_params`]).
pub async fn params_changed(node: &Node, changes: &[String]) -> Result<Value> {
    let current = node.rpc().get_params().await.or_node(node)?;
    change_params(&current, changes)
}
