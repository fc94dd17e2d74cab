//! The bridge end to end, with real processes: anvil (npm), four validators with bridge
//! keys, the checkpoint contract deployed by `atonomi bridge deploy`, validators
//! recording checkpoint signatures on chain, two of them relaying (one killed with -9
//! mid-run), a validator added by governance (the contract's set rotates through the
//! checkpoint at the change), and `atonomi verify device` proving a device registered
//! after genesis and then its revoked status — trusting only the contract.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{free_port, json_out, run, BIN};
/// anvil's first and second dev accounts (public test keys).
const ANVIL_KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const ANVIL_KEY_1: &str = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const ANVIL_ACCOUNT_1: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

use common::Killed as Proc;

/// A JSON-RPC call to `url` (`http://HOST:PORT`); null while nothing answers there.
fn post(url: &str, method: &str, params: Value) -> Value {
    common::rpc_at(url.trim_start_matches("http://"), method, params).unwrap_or(Value::Null)
}

/// anvil (the npm package) on a free port, with `args`; waits until it answers.
fn spawn_anvil(args: &[&str]) -> (Proc, String) {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("bridge/eth/node_modules/.bin/anvil");
    assert!(
        bin.exists(),
        "run scripts/eth-tools.sh first ({} missing)",
        bin.display()
    );
    let port = free_port();
    let proc = Proc(
        Command::new(&bin)
            .args(["--port", &port.to_string(), "--silent"])
            .args(args)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while post(&url, "eth_chainId", json!([])).is_null() {
        assert!(Instant::now() < deadline, "anvil did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    (proc, url)
}

fn write_dev_key(dir: &Path, name: &str) -> PathBuf {
    let k = atonomi_genesis::dev::key(name);
    let p = dir.join(format!("{name}.json"));
    let seed: String = k.to_seed().iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(
        &p,
        json!({ "account": k.account(), "secret_seed": seed }).to_string(),
    )
    .unwrap();
    p
}

struct Val {
    home: PathBuf,
    rpc: u16,
    p2p: u16,
    init: Value,
}

fn start(v: &Val) -> Proc {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(v.home.join("node.log"))
        .unwrap();
    common::testnet::spawn_run(&v.home, &[], log)
}

fn tx(rpc: u16, key: &Path, call: Value) -> Value {
    let r = json_out(&run(&[
        "tx",
        "--rpc",
        &format!("http://127.0.0.1:{rpc}"),
        "--key",
        key.to_str().unwrap(),
        &call.to_string(),
    ]))
    .unwrap_or_else(|e| panic!("{call}: {e}"));
    assert_eq!(r["status"]["status"], "success", "{call}: {r}");
    r
}

/// Waits up to 60 s for the node on `rpc` to reach `height`; panics with `what`.
fn wait_height(rpc: u16, height: u64, what: &str) {
    let url = format!("http://127.0.0.1:{rpc}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while post(&url, "atonomi_status", json!([]))["result"]["height"]
        .as_u64()
        .unwrap_or(0)
        < height
    {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Registers the device of (salt, hardware id) with manufacturer 1; returns its id.
fn register_device(rpc: u16, maker: &Path, salt: &str, hardware_id: &str) -> String {
    let device = json_out(&run(&["device-id", salt, hardware_id])).unwrap()["device_id"]
        .as_str()
        .unwrap()
        .to_string();
    tx(
        rpc,
        maker,
        json!({ "register_devices": { "manufacturer": 1, "devices": [{ "device_id": device, "public_key": "33".repeat(32), "protocols": [], "metadata": [] }] } }),
    );
    device
}

fn verify(eth: &str, contract: &str, device: &str, rpc: u16) -> Result<Value, String> {
    json_out(&run(&[
        "verify",
        "device",
        "--eth-rpc",
        eth,
        "--contract",
        contract,
        "--device",
        device,
        "--rpc",
        &format!("http://127.0.0.1:{rpc}"),
    ]))
}

fn wait_verified(
    eth: &str,
    contract: &str,
    device: &str,
    rpc: u16,
    secs: u64,
    want: impl Fn(&Value) -> bool,
    dir: &Path,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Ok(v) = verify(eth, contract, device, rpc) {
            if want(&v) {
                return v;
            }
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(dir.join("v0/node.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            panic!(
                "not verified in {secs} s: {:?}\nrelayer log (newest first):\n{}",
                verify(eth, contract, device, rpc),
                tail.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Registers a device through `rpc` and waits until `atonomi verify device` proves it
/// registered from Ethereum (through the same node); the proof must verify. `after`
/// names what happened before, for the failure message.
fn a_new_device_is_proven(
    (eth, contract): (&str, &str),
    rpc: u16,
    maker: &Path,
    hardware_id: &str,
    dir: &Path,
    after: &str,
) {
    let salt = format!("salt-{hardware_id}");
    let device = register_device(rpc, maker, &salt, hardware_id);
    let v = wait_verified(
        eth,
        contract,
        &device,
        rpc,
        120,
        |v| v["registered"] == true,
        dir,
    );
    assert_eq!(v["verified"], true, "{after}: {v}");
}

/// `n` validators with bridge keys on one genesis (chain `atonomi-bridge-test`,
/// checkpoints every 5 blocks), the contract deployed on `eth` with `eth_key`, and each
/// home configured; `relayer(i)` gives validator i's Ethereum key and takeover seconds
/// if it relays. Returns the validators and `bridge deploy`'s answer.
fn bridge_net(
    d: &Path,
    eth: &str,
    eth_key: &Path,
    n: usize,
    relayer: impl Fn(usize) -> Option<(&'static str, u64)>,
) -> (Vec<Val>, Value) {
    let vals: Vec<Val> = (0..n)
        .map(|i| {
            let home = d.join(format!("v{i}"));
            let init = json_out(&run(&["init", "--home", home.to_str().unwrap()])).unwrap();
            Val {
                home,
                rpc: free_port(),
                p2p: free_port(),
                init,
            }
        })
        .collect();
    let genesis = d.join("genesis.json");
    let mut args: Vec<String> = vec![
        "genesis".into(),
        "new".into(),
        "--chain-id".into(),
        "atonomi-bridge-test".into(),
        "--checkpoint-interval".into(),
        "5".into(),
        "--out".into(),
        genesis.to_str().unwrap().into(),
    ];
    for v in &vals {
        args.push("--validator".into());
        args.push(format!(
            "{},{},1,{}",
            v.init["account"].as_str().unwrap(),
            v.init["peer_id_hex"].as_str().unwrap(),
            v.init["bridge_address"].as_str().unwrap()
        ));
    }
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    assert!(run(&a).status.success());
    let deployed = json_out(&run(&[
        "bridge",
        "deploy",
        "--eth-rpc",
        eth,
        "--eth-key",
        eth_key.to_str().unwrap(),
        "--genesis",
        genesis.to_str().unwrap(),
    ]))
    .unwrap();
    let contract = deployed["contract"].as_str().unwrap().to_string();
    for (i, v) in vals.iter().enumerate() {
        std::fs::copy(&genesis, v.home.join("genesis.json")).unwrap();
        let peers: Vec<String> = vals
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, p)| {
                format!(
                    "\"/ip4/127.0.0.1/tcp/{}/p2p/{}\"",
                    p.p2p,
                    p.init["peer_id"].as_str().unwrap()
                )
            })
            .collect();
        let relay = match relayer(i) {
            Some((key, takeover)) => {
                std::fs::write(
                    v.home.join("keys/eth.json"),
                    json!({ "secret_key": key }).to_string(),
                )
                .unwrap();
                format!("eth_rpc = \"{eth}\"\nrelayer_key = \"keys/eth.json\"\nconfirmations = 1\ntakeover_secs = {takeover}\n")
            }
            None => String::new(),
        };
        let config = format!(
            "genesis = \"genesis.json\"\nvalidator_key = \"keys/validator.json\"\n[rpc]\naddr = \"127.0.0.1:{}\"\n[p2p]\nlisten = \"/ip4/127.0.0.1/tcp/{}\"\npeers = [{}]\nnode_key = \"keys/node.json\"\n[consensus]\nheartbeat_ms = 400\npropose_timeout_ms = 2000\n[bridge]\neth_chain_id = {}\ncontract = \"{contract}\"\nkey = \"keys/bridge.json\"\n{relay}",
            v.rpc,
            v.p2p,
            peers.join(", "),
            deployed["eth_chain_id"]
        );
        std::fs::write(v.home.join("config.toml"), config).unwrap();
    }
    (vals, deployed)
}

#[test]
fn checkpoints_reach_ethereum_and_the_verifier_proves_a_device_and_its_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_anvil, eth) = spawn_anvil(&["--slots-in-an-epoch", "1"]);
    let eth_key = d.join("eth.json");
    std::fs::write(&eth_key, json!({ "secret_key": ANVIL_KEY }).to_string()).unwrap();

    // Four validators with bridge keys; checkpoints every 5 blocks. Two relayers (v0,
    // v1, each with its own Ethereum key): the designated one per epoch goes first, the
    // other takes over after 3 s per rank.
    let (vals, deployed) = bridge_net(d, &eth, &eth_key, 4, |i| {
        (i < 2).then_some((if i == 1 { ANVIL_KEY_1 } else { ANVIL_KEY }, 3))
    });
    let contract = deployed["contract"].as_str().unwrap().to_string();
    let mut procs: Vec<Proc> = vals.iter().map(start).collect();

    // A device registered after genesis.
    let maker = write_dev_key(d, "manufacturer");
    wait_height(vals[1].rpc, 2, "the cluster did not start");
    let device = register_device(vals[1].rpc, &maker, "salt-bridge", "BR-1");

    // Proven from Ethereum's finalized checkpoint, through a node that is not the relayer.
    let v = wait_verified(
        &eth,
        &contract,
        &device,
        vals[2].rpc,
        120,
        |v| v["registered"] == true,
        d,
    );
    assert_eq!(v["verified"], true);
    assert_eq!(v["record"]["status"], "registered", "{v}");
    let first_epoch = v["checkpoint"]["epoch"].as_u64().unwrap();

    // The relayer dies (kill -9) and comes back (the other relayer covers meanwhile).
    drop(procs.remove(0));
    std::thread::sleep(Duration::from_secs(2));
    procs.insert(0, start(&vals[0]));

    // A validator-set change (a fifth validator, offline): the checkpoint at the change
    // is signed by the old set and rotates the contract's set; later ones are signed by
    // the new set (4 of 5 online is still more than 2/3).
    let admin = write_dev_key(d, "admin");
    let fifth = json_out(&run(&["init", "--home", d.join("v4").to_str().unwrap()])).unwrap();
    let add = json!({ "propose": { "action": { "add_validator": {
        "consensus_key": fifth["account"], "peer_id": fifth["peer_id_hex"], "bridge_address": fifth["bridge_address"].as_str().unwrap().trim_start_matches("0x"), "power": 1, "operator": 1
    } } } });
    tx(vals[1].rpc, &admin, add);
    // With four of five validators online again the device is revoked.
    tx(
        vals[1].rpc,
        &maker,
        json!({ "revoke_device": { "device": device } }),
    );
    let v = wait_verified(
        &eth,
        &contract,
        &device,
        vals[3].rpc,
        120,
        |v| v["record"]["status"] == "revoked",
        d,
    );
    assert!(v["checkpoint"]["epoch"].as_u64().unwrap() > first_epoch);

    // No double submission: the deployer/relayer account sent the deployment and exactly
    // one transaction per accepted epoch.
    let status = post(
        &format!("http://127.0.0.1:{}", vals[0].rpc),
        "atonomi_getBridgeStatus",
        json!([]),
    )["result"]
        .clone();
    assert!(
        status["submissions"]
            .as_array()
            .is_some_and(|s| !s.is_empty()),
        "{status}"
    );
    // Submissions move to "final" once Ethereum's finalized tag passes them.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = post(
            &format!("http://127.0.0.1:{}", vals[1].rpc),
            "atonomi_getBridgeStatus",
            json!([]),
        )["result"]
            .clone();
        if st["submissions"]
            .as_array()
            .is_some_and(|s| s.iter().any(|r| r["status"] == "final"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no submission reached final: {st}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    // Stop both relayers, then read the contract and the relayer accounts at one block.
    drop(procs.remove(0));
    drop(procs.remove(0));
    let block = post(&eth, "eth_blockNumber", json!([]))["result"]
        .as_str()
        .unwrap()
        .to_string();
    let selector = format!(
        "0x{}",
        &alloy::hex::encode(alloy::primitives::keccak256("latestEpoch()"))[..8]
    );
    let epoch_hex = post(
        &eth,
        "eth_call",
        json!([{ "to": contract, "data": selector }, block]),
    )["result"]
        .as_str()
        .unwrap()
        .to_string();
    let eth_epoch = u64::from_str_radix(epoch_hex.trim_start_matches("0x"), 16).unwrap();
    let relayer = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
    let sent =
        |who: &str| hex_u64(&post(&eth, "eth_getTransactionCount", json!([who, block]))["result"]);
    let (by0, by1) = (sent(relayer) - 1, sent(ANVIL_ACCOUNT_1));
    assert!(eth_epoch >= 2);
    let set_selector = format!(
        "0x{}",
        &alloy::hex::encode(alloy::primitives::keccak256("validatorSetHash()"))[..8]
    );
    let set_now = post(
        &eth,
        "eth_call",
        json!([{ "to": contract, "data": set_selector }, block]),
    )["result"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(
        set_now.to_lowercase(),
        deployed["genesis_set_hash"]
            .as_str()
            .unwrap()
            .to_lowercase(),
        "the contract's validator set rotated with the chain's"
    );
    assert_eq!(by0 + by1, eth_epoch, "the two relayers sent {by0} + {by1} checkpoint transactions for {eth_epoch} accepted epochs");
    assert!(
        by0 > 0 && by1 > 0,
        "both relayers were designated for some epochs: {by0}, {by1}"
    );
    // The two come back as validators that no longer relay: with four of five online
    // the chain moves on (with two of five it would stop, and the checkpoint would only
    // have aged if the chain happened to be far enough ahead already).
    for (i, v) in vals.iter().enumerate().take(2) {
        let path = v.home.join("config.toml");
        let config = std::fs::read_to_string(&path).unwrap();
        let relaying = ["eth_rpc", "relayer_key", "confirmations", "takeover_secs"];
        let kept: Vec<&str> = config
            .lines()
            .filter(|l| !relaying.iter().any(|k| l.starts_with(k)))
            .collect();
        std::fs::write(&path, kept.join("\n")).unwrap();
        procs.insert(i, start(v));
    }

    // Issue 24, item 3: with no relayer left the chain moves on and Ethereum's
    // checkpoint ages; every answer says how old it is, and --max-age refuses an old one.
    let rpc2 = format!("http://127.0.0.1:{}", vals[2].rpc);
    let with_age = |max: &str| {
        json_out(&run(&[
            "verify",
            "device",
            "--eth-rpc",
            &eth,
            "--contract",
            &contract,
            "--device",
            &device,
            "--rpc",
            &rpc2,
            "--max-age",
            max,
        ]))
    };
    let fresh = with_age("1h").unwrap();
    let as_of = fresh["as_of_height"].as_u64().unwrap();
    assert_eq!(
        fresh["checkpoint"]["height"].as_u64(),
        Some(as_of),
        "{fresh}"
    );
    wait_height(vals[2].rpc, as_of + 12, "the chain did not move on");
    let old = with_age("1h").unwrap();
    assert!(
        old["checkpoint"]["age_blocks"].as_u64().unwrap() >= 12,
        "{old}"
    );
    assert!(old["checkpoint"]["age_seconds"].as_u64().is_some(), "{old}");
    let refused = with_age("10").unwrap_err();
    assert!(
        refused.contains("blocks behind") && refused.contains("not verified"),
        "{refused}"
    );
    let refused = with_age("1s").unwrap_err();
    assert!(
        refused.contains("s old") && refused.contains(&format!("height {as_of}")),
        "{refused}"
    );
}

fn hex_u64(v: &Value) -> u64 {
    u64::from_str_radix(v.as_str().unwrap_or("0x0").trim_start_matches("0x"), 16).unwrap_or(0)
}

/// One validator that signs and relays, on an anvil we control: a submission left
/// pending (mining off) is replaced with higher fees and only the replacement lands; a
/// reorg that drops an accepted checkpoint gets it resubmitted. Throughout, the relaying
/// account sends exactly one transaction per accepted epoch.
#[test]
fn the_relayer_replaces_a_stuck_submission_and_resubmits_after_a_reorg() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_anvil, eth) = spawn_anvil(&[]);
    let eth_key = d.join("eth.json");
    std::fs::write(&eth_key, json!({ "secret_key": ANVIL_KEY }).to_string()).unwrap();
    let home = d.join("v0");
    let init = json_out(&run(&["init", "--home", home.to_str().unwrap()])).unwrap();
    let v = Val {
        home: home.clone(),
        rpc: free_port(),
        p2p: free_port(),
        init,
    };
    let genesis = d.join("genesis.json");
    let validator = format!(
        "{},{},1,{}",
        v.init["account"].as_str().unwrap(),
        v.init["peer_id_hex"].as_str().unwrap(),
        v.init["bridge_address"].as_str().unwrap()
    );
    assert!(run(&[
        "genesis",
        "new",
        "--chain-id",
        "atonomi-relay-test",
        "--checkpoint-interval",
        "3",
        "--out",
        genesis.to_str().unwrap(),
        "--validator",
        &validator
    ])
    .status
    .success());
    let deployed = json_out(&run(&[
        "bridge",
        "deploy",
        "--eth-rpc",
        &eth,
        "--eth-key",
        eth_key.to_str().unwrap(),
        "--genesis",
        genesis.to_str().unwrap(),
    ]))
    .unwrap();
    let contract = deployed["contract"].as_str().unwrap().to_string();
    std::fs::copy(&genesis, home.join("genesis.json")).unwrap();
    std::fs::copy(&eth_key, home.join("keys/eth.json")).unwrap();
    let config = format!(
        "genesis = \"genesis.json\"\nvalidator_key = \"keys/validator.json\"\n[rpc]\naddr = \"127.0.0.1:{}\"\n[p2p]\nlisten = \"/ip4/127.0.0.1/tcp/{}\"\npeers = []\nnode_key = \"keys/node.json\"\n[consensus]\nheartbeat_ms = 300\npropose_timeout_ms = 1000\n[bridge]\neth_chain_id = {}\ncontract = \"{contract}\"\nkey = \"keys/bridge.json\"\neth_rpc = \"{eth}\"\nrelayer_key = \"keys/eth.json\"\nconfirmations = 1\n",
        v.rpc, v.p2p, deployed["eth_chain_id"]
    );
    std::fs::write(home.join("config.toml"), config).unwrap();

    // Mining off: the first submission stays pending and must be replaced.
    assert!(post(&eth, "evm_setAutomine", json!([false]))["error"].is_null());
    let _node = start(&v);
    let node = format!("http://127.0.0.1:{}", v.rpc);
    let relayer = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
    let deadline = Instant::now() + Duration::from_secs(60);
    let replaced = loop {
        let st = post(&node, "atonomi_getBridgeStatus", json!([]))["result"].clone();
        if let Some(first) = st["submissions"]
            .as_array()
            .and_then(|s| s.iter().find(|r| r["epoch"] == 1))
        {
            if first["replaced"].as_array().is_some_and(|r| !r.is_empty()) {
                break first.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "no replacement of the pending submission: {st}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(post(&eth, "evm_mine", json!([]))["error"].is_null());
    let receipt = post(
        &eth,
        "eth_getTransactionReceipt",
        json!([replaced["tx_hash"]]),
    );
    assert_eq!(
        receipt["result"]["status"], "0x1",
        "the replacement was mined: {receipt}"
    );
    for old in replaced["replaced"].as_array().unwrap() {
        assert!(
            post(&eth, "eth_getTransactionReceipt", json!([old]))["result"].is_null(),
            "a replaced transaction was mined too"
        );
    }
    assert_eq!(
        hex_u64(&post(&eth, "eth_getTransactionCount", json!([relayer, "latest"]))["result"]),
        2,
        "deployment + one checkpoint"
    );

    // Mining on: checkpoints flow; then a reorg drops the last block.
    assert!(post(&eth, "evm_setAutomine", json!([true]))["error"].is_null());
    let selector = format!(
        "0x{}",
        &alloy::hex::encode(alloy::primitives::keccak256("latestEpoch()"))[..8]
    );
    let epoch_at = |block: &str| {
        hex_u64(
            &post(
                &eth,
                "eth_call",
                json!([{ "to": contract, "data": selector }, block]),
            )["result"],
        )
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while epoch_at("latest") < 3 {
        assert!(
            Instant::now() < deadline,
            "checkpoints stopped after mining resumed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // With automine every relayer transaction is its own block: depth 1 removes the
    // last accepted checkpoint.
    let before = epoch_at("latest");
    assert!(post(&eth, "anvil_reorg", json!([1, []]))["error"].is_null());
    let after_reorg = epoch_at("latest");
    assert_eq!(
        after_reorg + 1,
        before,
        "the reorg removed the last checkpoint"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while epoch_at("latest") < before + 1 {
        assert!(
            Instant::now() < deadline,
            "no progress after the reorg (epoch {before} → {after_reorg})"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Stop the node, then compare at one block: one transaction per accepted epoch.
    drop(_node);
    std::thread::sleep(Duration::from_millis(500));
    let block = post(&eth, "eth_blockNumber", json!([]))["result"]
        .as_str()
        .unwrap()
        .to_string();
    let epoch = epoch_at(&block);
    let nonce = hex_u64(&post(&eth, "eth_getTransactionCount", json!([relayer, block]))["result"]);
    assert_eq!(nonce, 1 + epoch, "relayer sent {nonce} transactions for {epoch} epochs (+1 deployment); reorg dropped epoch {before} → {after_reorg}");
}

/// Issue 24, item 1: the set that signs a checkpoint is the one that voted on its
/// height, so the checkpoint where the set rotates is the outgoing set's to sign —
/// including the validators it removes. They used to be refused (only the current set
/// could record signatures) and were cut off the network, so removing a third or more
/// of the power left the rotation epoch short of a quorum and the bridge stuck for good
/// (`InsufficientPower` on Ethereum). Each batch of removals is followed by a device
/// registered after it and proven from Ethereum, which needs the rotation accepted.
fn removals_keep_the_bridge_moving(n: usize, batches: &[&[usize]]) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_anvil, eth) = spawn_anvil(&["--slots-in-an-epoch", "1"]);
    let eth_key = d.join("eth.json");
    std::fs::write(&eth_key, json!({ "secret_key": ANVIL_KEY }).to_string()).unwrap();
    // v0 relays (never removed) and submits every epoch at once.
    let (vals, deployed) = bridge_net(d, &eth, &eth_key, n, |i| (i == 0).then_some((ANVIL_KEY, 0)));
    let contract = deployed["contract"].as_str().unwrap().to_string();
    let _procs: Vec<Proc> = vals.iter().map(start).collect();
    let url = format!("http://127.0.0.1:{}", vals[0].rpc);
    wait_height(vals[0].rpc, 2, "the cluster did not start");
    let admin = write_dev_key(d, "admin");
    let admin_account = atonomi_genesis::dev::key("admin").account();
    let maker = write_dev_key(d, "manufacturer");
    for (k, batch) in batches.iter().enumerate() {
        // A batch's removals are submitted together (consecutive nonces), so they land
        // in one validator-set change.
        let nonce = post(&url, "atonomi_getAccount", json!([admin_account]))["result"]
            ["next_nonce"]
            .as_u64()
            .unwrap();
        let children: Vec<Child> = batch
            .iter()
            .enumerate()
            .map(|(j, i)| {
                let call = json!({ "propose": { "action": { "remove_validator": {
                    "consensus_key": vals[*i].init["account"] } } } });
                Command::new(BIN)
                    .args(["tx", "--rpc", &url, "--key", admin.to_str().unwrap()])
                    .args(["--nonce", &(nonce + j as u64).to_string()])
                    .arg(call.to_string())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "removal: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        a_new_device_is_proven(
            (&eth, &contract),
            vals[0].rpc,
            &maker,
            &format!("RM-{k}"),
            d,
            &format!("after removing {batch:?}"),
        );
    }
}

#[test]
fn removing_one_of_three_validators_keeps_the_bridge_moving() {
    removals_keep_the_bridge_moving(3, &[&[2]]);
}

#[test]
fn removing_two_of_four_validators_one_at_a_time_keeps_the_bridge_moving() {
    removals_keep_the_bridge_moving(4, &[&[3], &[2]]);
}

#[test]
fn removing_two_of_four_validators_at_once_keeps_the_bridge_moving() {
    removals_keep_the_bridge_moving(4, &[&[2, 3]]);
}

/// Issue 37, item 2: after a validator rotates its consensus key, its checkpoint
/// signer records signatures with the key of the set that voted on each epoch's
/// height (the new one after the change). With three validators the contract needs
/// all three, so a signer left on the retired key would stop the bridge: a device
/// registered after the rotation is proven from Ethereum.
#[test]
fn a_rotated_consensus_key_keeps_the_bridge_moving() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_anvil, eth) = spawn_anvil(&["--slots-in-an-epoch", "1"]);
    let eth_key = d.join("eth.json");
    std::fs::write(&eth_key, json!({ "secret_key": ANVIL_KEY }).to_string()).unwrap();
    let (vals, deployed) = bridge_net(d, &eth, &eth_key, 3, |i| (i == 0).then_some((ANVIL_KEY, 0)));
    let contract = deployed["contract"].as_str().unwrap().to_string();
    let _procs: Vec<Proc> = vals.iter().map(start).collect();
    wait_height(vals[0].rpc, 2, "the cluster did not start");
    let maker = write_dev_key(d, "manufacturer");
    let r = json_out(&run(&[
        "keys",
        "rotate-consensus",
        "--home",
        vals[1].home.to_str().unwrap(),
        "--key",
        maker.to_str().unwrap(),
        "--rpc",
        &format!("http://127.0.0.1:{}", vals[1].rpc),
    ]))
    .unwrap();
    assert_eq!(r["status"]["status"], "success", "{r}");
    let at = r["events"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|e| e["effective_height"].as_u64())
        .unwrap();
    // Past the change and two checkpoint intervals.
    wait_height(vals[0].rpc, at + 12, "the chain stopped after the rotation");
    a_new_device_is_proven(
        (&eth, &contract),
        vals[0].rpc,
        &maker,
        "ROT-1",
        d,
        &format!("after the rotation at {at}"),
    );
}
