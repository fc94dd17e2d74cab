//! `atonomi tx` and `atonomi query`: a JSON-RPC client that signs locally.

use anyhow::{bail, Context, Result};
use atonomi_primitives::event::TxStatus;
use atonomi_primitives::tx::{sign_activation, Call};
use atonomi_primitives::{ChainId, DeviceId, Hash, Transaction};
use jsonrpsee::core::client::ClientT;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee::rpc_params;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

pub fn connect(url: &str) -> Result<HttpClient> {
    HttpClientBuilder::default()
        .request_timeout(Duration::from_secs(30))
        .build(url)
        .with_context(|| format!("connecting to {url}"))
}

pub async fn call(
    client: &HttpClient,
    method: &str,
    params: jsonrpsee::core::params::ArrayParams,
) -> Result<Value> {
    client
        .request(method, params)
        .await
        .map_err(|e| readable(method, e))
}

/// One line a person can read: the node's message and code for an error it answered
/// (`device not found (code 4040)`, with its data when it sent some), or what went wrong
/// reaching it.
pub fn readable(method: &str, e: jsonrpsee::core::ClientError) -> anyhow::Error {
    use jsonrpsee::core::ClientError;
    match e {
        ClientError::Call(obj) => match obj.data() {
            Some(data) => {
                anyhow::anyhow!("{} (code {}; {})", obj.message(), obj.code(), data.get())
            }
            None => anyhow::anyhow!("{} (code {})", obj.message(), obj.code()),
        },
        ClientError::Transport(t) => anyhow::anyhow!("cannot reach the node ({method}): {t}"),
        ClientError::RequestTimeout => {
            anyhow::anyhow!("the node did not answer {method} in time")
        }
        other => anyhow::anyhow!("{method}: {other}"),
    }
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
    let client = connect(url)?;
    let mut json: Value = serde_json::from_str(call_json).context("the call is not valid JSON")?;
    if device_key.is_some() {
        leave_room_for_device_signature(&mut json);
    }
    let mut the_call: Call = serde_json::from_value(json)
        .context("the call is not valid JSON for any call (see `atonomi tx --help`)")?;
    let status = call_status(&client).await?;
    let chain_id: ChainId =
        serde_json::from_value(status["chain_id"].clone()).context("status has no chain id")?;
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
        None => call_account(&client, &key.account().to_string()).await?["next_nonce"]
            .as_u64()
            .context("account has no next_nonce")?,
    };
    let stx = Transaction {
        chain_id,
        signer: key.account(),
        nonce,
        max_fee: None,
        call: the_call,
    }
    .sign(&key);
    let hash = stx.hash();
    let sent = call(
        &client,
        "atonomi_sendTransaction",
        rpc_params![hex::encode(stx.to_bytes())],
    )
    .await?;
    tracing::debug!(?sent, "submitted");
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match client
            .request::<Value, _>("atonomi_getTransaction", rpc_params![hash])
            .await
        {
            // Admitted, then dropped (its nonce went to another transaction, or it was
            // replaced or evicted): waiting longer cannot help.
            Ok(v) if v["status"] == "dropped" => bail!(
                "transaction {hash} (nonce {nonce}) was dropped by the node: {}; run the command again to sign with the account's current nonce",
                v["message"].as_str().unwrap_or("no reason given")
            ),
            Ok(v) if v["status"] == "final" => {
                println!("{}", serde_json::to_string_pretty(&v["receipt"])?);
                let status: TxStatus = serde_json::from_value(v["receipt"]["status"].clone())
                    .context("receipt status")?;
                return match status {
                    TxStatus::Success => Ok(()),
                    other => bail!("transaction {hash} is final but did not succeed: {other}"),
                };
            }
            _ => {}
        }
        if tokio::time::Instant::now() > deadline {
            bail!("transaction {hash} is not final after {} s", wait.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The parameters `current` (as atonomi_getParams returns them) with each NAME=VALUE
/// of `changes` applied: only known names, each value of the type it replaces (a
/// number, or a decimal string for amounts), and the result must decode as Params.
pub fn change_params(mut current: Value, changes: &[String]) -> Result<Value> {
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

async fn call_status(client: &HttpClient) -> Result<Value> {
    call(client, "atonomi_status", rpc_params![]).await
}

async fn call_account(client: &HttpClient, account: &str) -> Result<Value> {
    call(client, "atonomi_getAccount", rpc_params![account]).await
}

/// Prints the device id for a salt and hardware id (both as given, UTF-8).
pub fn device_id(salt: &str, hardware_id: &str) -> DeviceId {
    DeviceId::derive(salt.as_bytes(), hardware_id.as_bytes())
}

/// Runs one query and prints its JSON.
pub async fn query(url: &str, method: &str, params: Vec<Value>) -> Result<()> {
    let client = connect(url)?;
    let mut p = jsonrpsee::core::params::ArrayParams::new();
    for v in params {
        p.insert(v).context("parameter")?;
    }
    let v = call(&client, method, p).await?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

pub fn parse_hash(s: &str) -> Result<Hash> {
    serde_json::from_value(Value::String(s.to_string()))
        .with_context(|| format!("{s} is not a 32-byte hex hash"))
}
