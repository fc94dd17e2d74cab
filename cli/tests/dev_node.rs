//! The `atonomi dev` node as a user meets it: a real process, RocksDB on disk, JSON-RPC
//! over a socket, and the `atonomi tx` / `atonomi query` commands.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{free_port, json_out, run, BIN};

struct Node {
    child: common::Killed,
    url: String,
    metrics: String,
}

/// The whole response (head and body) to a GET of `path`.
fn http_get(addr: &str, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let (_, head, body) = common::http_exchange(addr, request.as_bytes());
    format!("{head}\r\n\r\n{}", String::from_utf8_lossy(&body))
}

fn start(home: &Path, port: u16) -> Node {
    let metrics = free_port();
    let child = Command::new(BIN)
        .args([
            "dev",
            "--home",
            home.to_str().unwrap(),
            "--rpc-addr",
            &format!("127.0.0.1:{port}"),
            "--metrics-addr",
            &format!("127.0.0.1:{metrics}"),
        ])
        .env("ATONOMI_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let node = Node {
        child: common::Killed(child),
        url: format!("http://127.0.0.1:{port}"),
        metrics: format!("127.0.0.1:{metrics}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(v) = query(&node, &["status"]) {
            if v["chain_id"] == "atonomi-dev" {
                return node;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the dev node did not answer on {}", node.url);
}

fn query(node: &Node, what: &[&str]) -> Result<Value, String> {
    let mut args = vec!["query"];
    args.extend_from_slice(&what[..1]);
    args.extend_from_slice(&["--rpc", &node.url]);
    args.extend_from_slice(&what[1..]);
    json_out(&run(&args))
}

fn tx(node: &Node, key: &Path, call: Value, extra: &[&str]) -> Result<Value, String> {
    let call = call.to_string();
    let mut args = vec!["tx", "--rpc", &node.url, "--key", key.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push(&call);
    json_out(&run(&args))
}

fn rpc(node: &Node, method: &str, params: Value) -> Value {
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }).to_string();
    // A minimal HTTP/1.1 client, so the test depends on nothing but std.
    use std::io::{Read, Write};
    let addr = node.url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let json = out.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn account(key: &Path) -> String {
    json_out(&run(&["keys", "show", key.to_str().unwrap()])).unwrap()["account"]
        .as_str()
        .unwrap()
        .to_string()
}

fn new_key(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(format!("{name}.json"));
    json_out(&run(&["keys", "new", "--out", p.to_str().unwrap()])).unwrap();
    p
}

#[test]
fn device_lifecycle_on_a_dev_node_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let port = free_port();
    let node = start(&home, port);
    let keys = home.join("keys");
    let (maker, auditor, alice, bob) = (
        keys.join("manufacturer.json"),
        keys.join("auditor.json"),
        keys.join("alice.json"),
        keys.join("bob.json"),
    );

    // Two devices with their own keys.
    let sensor_key = new_key(dir.path(), "sensor");
    let meter_key = new_key(dir.path(), "meter");
    let id = |hw: &str| {
        json_out(&run(&["device-id", "salt-1", hw])).unwrap()["device_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (sensor, meter) = (id("SN-1"), id("SN-2"));
    let reg = |d: &str, k: &Path| json!({ "device_id": d, "public_key": account(k), "protocols": ["mqtt"], "metadata": [] });

    let r = tx(&node, &maker, json!({ "register_devices": { "manufacturer": 1, "devices": [reg(&sensor, &sensor_key), reg(&meter, &meter_key)] } }), &[]).unwrap();
    assert_eq!(r["status"]["status"], "success", "{r}");
    let zero_sig = "0".repeat(128);
    let r = tx(
        &node,
        &alice,
        json!({ "activate_device": { "device": sensor, "device_signature": zero_sig } }),
        &["--device-key", sensor_key.to_str().unwrap()],
    )
    .unwrap();
    assert_eq!(r["status"]["status"], "success", "{r}");
    // With --device-key the JSON may leave the signature out.
    let r = tx(
        &node,
        &bob,
        json!({ "activate_device": { "device": meter } }),
        &["--device-key", meter_key.to_str().unwrap()],
    )
    .unwrap();
    assert_eq!(r["status"]["status"], "success", "{r}");
    // --device-key on a call that carries no device signature is refused, not ignored.
    let refused = tx(
        &node,
        &bob,
        json!({ "suspend_device": { "device": meter } }),
        &["--device-key", meter_key.to_str().unwrap()],
    )
    .unwrap_err();
    assert!(
        refused.contains("only activate_device and register_and_activate take it"),
        "{refused}"
    );
    // Activation with someone else's device key fails with the typed error, non-zero exit.
    let wrong = tx(
        &node,
        &bob,
        json!({ "activate_device": { "device": sensor, "device_signature": zero_sig } }),
        &["--device-key", meter_key.to_str().unwrap()],
    );
    assert!(wrong.is_err(), "{wrong:?}");

    let r = tx(&node, &auditor, json!({ "write_reputation": { "auditor": 1, "entries": [{ "subject": { "device": meter }, "rep_type": "trust", "score": 8000, "direction": "up" }] } }), &[]).unwrap();
    assert_eq!(r["status"]["status"], "success", "{r}");
    let v = query(&node, &["validate-device", &meter, "--requester", &sensor]).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    // An error the node answers is one line in words with its code (issue 18).
    let missing = query(&node, &["device", &"ab".repeat(32)]).unwrap_err();
    assert_eq!(missing, "error: device not found (code 4040)\n");

    // Fund the sensor and pay the meter 2 ATMI: the meter (no wallet set: its own
    // account) receives 2 ATMI, the sensor pays the 1% fee on top.
    let sensor_account = account(&sensor_key);
    let r = tx(
        &node,
        &alice,
        json!({ "transfer": { "to": sensor_account, "amount": "10000000000000000000" } }),
        &[],
    )
    .unwrap();
    assert_eq!(r["status"]["status"], "success", "{r}");
    let balance = |k: &Path| {
        query(&node, &["account", &account(k)]).unwrap()["balance"]
            .as_str()
            .unwrap()
            .parse::<u128>()
            .unwrap()
    };
    let before = balance(&meter_key);
    let r = tx(&node, &sensor_key, json!({ "pay": { "from_device": sensor, "to_device": meter, "amount": "2000000000000000000", "memo": [] } }), &[]).unwrap();
    assert_eq!(r["status"]["status"], "success", "{r}");
    assert_eq!(balance(&meter_key) - before, 2_000_000_000_000_000_000);
    assert_eq!(
        balance(&sensor_key),
        10_000_000_000_000_000_000 - 2_020_000_000_000_000_000,
        "2 ATMI plus the 1% fee"
    );

    // The device record is proven against the state root of a committed header.
    let p = query(&node, &["proof", &meter]).unwrap();
    assert!(
        p["value"].is_string()
            && p["proof"].is_string()
            && p["header"]["state_root"] == p["state_root"],
        "{p}"
    );

    // Prometheus metrics follow the chain (7 transactions, the failed activation included).
    let metrics = http_get(&node.metrics, "/metrics");
    let h = query(&node, &["status"]).unwrap()["height"]
        .as_u64()
        .unwrap();
    assert!(
        metrics.contains(&format!("atonomi_height {h}")),
        "{metrics}"
    );
    assert!(
        metrics.contains("atonomi_txs_committed_total 7"),
        "{metrics}"
    );
    // Each admitted, every height decided in its first round, an interval between each
    // two commits, and an empty pool.
    for line in [
        "atonomi_mempool_admissions_total{outcome=\"admitted\"} 7".to_string(),
        format!("atonomi_rounds_per_height_count {h}"),
        format!("atonomi_rounds_per_height_bucket{{le=\"1.0\"}} {h}"),
        format!("atonomi_block_interval_seconds_count {}", h - 1),
        "atonomi_mempool_bytes 0".to_string(),
    ] {
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }

    // Hostile input: garbage, wrong chain, replayed nonce — typed errors, nothing changes.
    let height = query(&node, &["status"]).unwrap()["height"]
        .as_u64()
        .unwrap();
    let e = rpc(&node, "atonomi_sendTransaction", json!(["zz"]));
    assert_eq!(e["error"]["code"], -32602, "{e}");
    let e = rpc(&node, "atonomi_sendTransaction", json!(["00ff00"]));
    assert_eq!(e["error"]["code"], 4001, "{e}");
    let metrics = http_get(&node.metrics, "/metrics");
    assert!(
        metrics.contains("atonomi_mempool_admissions_total{outcome=\"bad_signature\"} 1"),
        "the refusal is counted by its reason: {metrics}"
    );
    let e = rpc(&node, "atonomi_noSuchMethod", json!([]));
    assert_eq!(e["error"]["code"], -32601, "{e}");
    // JSON-RPC requests counted by declared method and outcome, timed; a name no one
    // declared is `unknown` (clients cannot grow the label set).
    let metrics = http_get(&node.metrics, "/metrics");
    for line in [
        "atonomi_rpc_requests_total{method=\"atonomi_sendTransaction\",outcome=\"error\"} 2",
        "atonomi_rpc_requests_total{method=\"unknown\",outcome=\"error\"} 1",
        "atonomi_rpc_request_seconds_count{method=\"atonomi_status\"}",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    assert!(!metrics.contains("noSuchMethod"), "{metrics}");
    // Disk by column family, sampled when scraped: blocks and state hold bytes.
    for cf in ["blocks", "state"] {
        let bytes: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("atonomi_storage_bytes{{cf=\"{cf}\"}} ")))
            .unwrap_or_else(|| panic!("no size of {cf} in {metrics}"))
            .parse()
            .unwrap();
        assert!(bytes > 0, "{cf}: {metrics}");
    }
    assert!(
        metrics.contains("atonomi_state_oldest_height "),
        "{metrics}"
    );
    assert!(
        metrics.lines().any(|l| l
            .starts_with("atonomi_rpc_requests_total{method=\"atonomi_status\",outcome=\"ok\"}")),
        "{metrics}"
    );
    // Signed transactions that must not get in: each a typed error, nothing changes.
    {
        use atonomi_primitives::tx::Call;
        use atonomi_primitives::{Amount, ChainId, Transaction};
        let alice_key = atonomi_genesis::dev::key("alice");
        let next = query(&node, &["account", &account(&alice)]).unwrap()["next_nonce"]
            .as_u64()
            .unwrap();
        let make = |chain: &str, nonce: u64| {
            let call = Call::Transfer {
                to: atonomi_genesis::dev::key("bob").account(),
                amount: Amount::new(1),
            };
            Transaction {
                chain_id: ChainId::new(chain).unwrap(),
                signer: alice_key.account(),
                nonce,
                max_fee: None,
                call,
            }
            .sign(&alice_key)
        };
        let send = |bytes: Vec<u8>| {
            rpc(
                &node,
                "atonomi_sendTransaction",
                json!([hex::encode(bytes)]),
            )
        };
        let mut bad_sig = make("atonomi-dev", next);
        bad_sig.signature.0[5] ^= 1;
        let e = send(bad_sig.to_bytes());
        assert_eq!(e["error"]["code"], 4001, "bad signature: {e}");
        let e = send(make("other-chain", next).to_bytes());
        assert_eq!(e["error"]["code"], 4001, "wrong chain: {e}");
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains("signed for chain other-chain, this chain is atonomi-dev"),
            "{e}"
        );
        let e = send(make("atonomi-dev", next - 1).to_bytes());
        assert_eq!(e["error"]["code"], 4001, "replayed nonce: {e}");
        assert!(
            e["error"]["message"].as_str().unwrap().contains("nonce"),
            "{e}"
        );
        // Over max_tx_bytes (512 KiB): refused before decoding.
        let mut big = make("atonomi-dev", next).to_bytes();
        big.resize(600 * 1024, 0);
        let e = send(big);
        assert_eq!(e["error"]["code"], 4001, "oversized");
        assert_eq!(
            query(&node, &["account", &account(&alice)]).unwrap()["next_nonce"]
                .as_u64()
                .unwrap(),
            next,
            "nothing changed"
        );
    }
    let first_tx = query(&node, &["block", "2"]).unwrap()["txs"][0]
        .as_str()
        .unwrap()
        .to_string();
    let block2 = rpc(&node, "atonomi_getTransaction", json!([first_tx]));
    assert_eq!(block2["result"]["status"], "final", "{block2}");

    // kill -9, restart on the same home: the chain and its state are there, and it goes on.
    let alice_balance = query(&node, &["account", &account(&alice)]).unwrap()["balance"].clone();
    let pid = node.child.0.id();
    std::mem::forget(node);
    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    std::thread::sleep(Duration::from_millis(300));
    let node = start(&home, port);
    let status = query(&node, &["status"]).unwrap();
    assert!(status["height"].as_u64().unwrap() >= height, "{status}");
    assert_eq!(
        query(&node, &["account", &account(&alice)]).unwrap()["balance"],
        alice_balance
    );
    let r = tx(
        &node,
        &alice,
        json!({ "transfer": { "to": account(&bob), "amount": "1" } }),
        &[],
    )
    .unwrap();
    assert_eq!(r["status"]["status"], "success", "{r}");
    assert!(r["height"].as_u64().unwrap() > height);
}

/// Filtered event subscriptions over WebSocket: only the events asked for arrive.
#[test]
fn event_subscription_delivers_the_filtered_events() {
    use jsonrpsee::core::client::{Subscription, SubscriptionClientT};
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let port = free_port();
    let node = start(&home, port);
    let key = new_key(dir.path(), "dev1");
    let device = json_out(&run(&["device-id", "s", "EV-1"])).unwrap()["device_id"]
        .as_str()
        .unwrap()
        .to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let got: Vec<Value> = rt.block_on(async {
        let ws = jsonrpsee::ws_client::WsClientBuilder::default().build(format!("ws://127.0.0.1:{port}")).await.unwrap();
        let filter = json!({ "events": ["device_registered", "device_activated"], "involving": device });
        let mut sub: Subscription<Value> = ws.subscribe("atonomi_subscribeEvents", jsonrpsee::rpc_params![filter], "atonomi_unsubscribeEvents").await.unwrap();
        let maker = home.join("keys/manufacturer.json");
        let reg = json!({ "register_devices": { "manufacturer": 1, "devices": [{ "device_id": device, "public_key": account(&key), "protocols": [], "metadata": [] }] } });
        // Another device's registration must not arrive.
        let other = json_out(&run(&["device-id", "s", "EV-2"])).unwrap()["device_id"].as_str().unwrap().to_string();
        let other_reg = json!({ "register_devices": { "manufacturer": 1, "devices": [{ "device_id": other, "public_key": account(&key), "protocols": [], "metadata": [] }] } });
        tx(&node, &maker, other_reg, &[]).unwrap();
        tx(&node, &maker, reg, &[]).unwrap();
        let zero = "0".repeat(128);
        tx(&node, &home.join("keys/alice.json"), json!({ "activate_device": { "device": device, "device_signature": zero } }), &["--device-key", key.to_str().unwrap()]).unwrap();
        let mut got = Vec::new();
        while got.len() < 2 {
            let next = tokio::time::timeout(Duration::from_secs(10), sub.next()).await.expect("an event within 10 s");
            got.push(next.unwrap().unwrap());
        }
        got
    });
    assert_eq!(got[0]["event"]["event"], "device_registered", "{got:?}");
    assert_eq!(got[0]["event"]["device"], device.as_str());
    assert_eq!(got[1]["event"]["event"], "device_activated", "{got:?}");
}

/// The device SDK's C example (static library built with size optimisation, linked by
/// gcc) produces the key, the activation signature and a signed transaction of a
/// device; the dev node accepts them, and the C verifier proves the device's record
/// against the committed header.
#[test]
fn the_c_sdk_example_activates_a_device_and_verifies_its_proof() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let cache = std::env::var("HOME")
        .map(|h| PathBuf::from(h).join(".cache/atonomi/device-sdk"))
        .unwrap();
    let built = Command::new(repo.join("device-sdk/c/build.sh"))
        .env("OUT", &cache)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "device-sdk/c/build.sh failed: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let info: Value = serde_json::from_slice(
        built
            .stdout
            .split(|b| *b == b'\n')
            .rfind(|l| !l.is_empty())
            .unwrap(),
    )
    .unwrap();
    let c = PathBuf::from(info["example"].as_str().unwrap());
    let c_run = |args: &[&str]| -> Value {
        let o = Command::new(&c).args(args).output().unwrap();
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
            panic!(
                "{e}: {} {}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
    };

    let home = out_dir.path().join("home");
    let node = start(&home, free_port());
    let keys = home.join("keys");
    let (maker, alice) = (keys.join("manufacturer.json"), keys.join("alice.json"));
    let seed = "5e".repeat(32);
    let public_key = c_run(&["pubkey", &seed])["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    let device = json_out(&run(&["device-id", "salt-c", "C-SN-1"])).unwrap()["device_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = tx(&node, &maker, json!({ "register_devices": { "manufacturer": 1, "devices": [{ "device_id": device, "public_key": public_key, "protocols": ["coap"], "metadata": [] }] } }), &[]).unwrap();
    assert_eq!(r["status"]["status"], "success", "{r}");

    // The owner activates with the signature the C code made.
    let owner = account(&alice);
    let a = c_run(&["activate", &seed, "atonomi-dev", &device, &owner]);
    assert!(a["sign_stack_bytes"].as_u64().unwrap() > 0, "{a}");
    let r = tx(
        &node,
        &alice,
        json!({ "activate_device": { "device": device, "device_signature": a["signature"] } }),
        &[],
    )
    .unwrap();
    assert_eq!(r["status"]["status"], "success", "{r}");
    // A signature for another owner does not activate anything.
    let forged = c_run(&["activate", &seed, "atonomi-dev", &device, &"11".repeat(32)]);
    assert_ne!(forged["signature"], a["signature"]);

    // A transaction built and signed in C: fund the device, then report an interaction.
    let r = tx(
        &node,
        &alice,
        json!({ "transfer": { "to": public_key, "amount": "5000000000000000000" } }),
        &[],
    )
    .unwrap();
    assert_eq!(r["status"]["status"], "success", "{r}");
    let peer = json_out(&run(&["device-id", "salt-c", "C-SN-2"])).unwrap()["device_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = tx(&node, &maker, json!({ "register_devices": { "manufacturer": 1, "devices": [{ "device_id": peer, "public_key": "22".repeat(32), "protocols": [], "metadata": [] }] } }), &[]).unwrap();
    assert_eq!(r["status"]["status"], "success", "{r}");
    let report = c_run(&["report", &seed, "atonomi-dev", "0", &device, &peer]);
    let sent = rpc(&node, "atonomi_sendTransaction", json!([report["tx"]]));
    let hash = sent["result"]["hash"]
        .as_str()
        .unwrap_or_else(|| panic!("{sent}"))
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    let receipt = loop {
        let t = rpc(&node, "atonomi_getTransaction", json!([hash]));
        if t["result"]["status"] == "final" {
            break t["result"]["receipt"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "the C-built transaction was not committed: {t}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(receipt["status"]["status"], "success", "{receipt}");

    // The C verifier proves the record (active, owned by alice) against the header.
    let p = rpc(
        &node,
        "atonomi_getProof",
        json!([{ "device": device }, null]),
    )["result"]
        .clone();
    let v = c_run(&[
        "verify",
        p["header_hash"].as_str().unwrap(),
        p["header_bytes"].as_str().unwrap(),
        &device,
        p["value"].as_str().unwrap(),
        p["proof"].as_str().unwrap(),
    ]);
    assert_eq!(v["status"], "active", "{v}");
    assert_eq!(v["owner"].as_str(), Some(owner.as_str()), "{v}");
    // Measured on a painted stack: the figure BENCHMARKS reports.
    let used = v["verify_stack_bytes"].as_u64().unwrap();
    let baseline = v["thread_baseline_stack_bytes"].as_u64().unwrap();
    assert!(used > baseline, "{v}");
    eprintln!(
        "proof verification stack: {} bytes ({used} minus a thread's {baseline})",
        used - baseline
    );
    // Tampered record: refused. Absent device: proven absent.
    let mut record = p["value"].as_str().unwrap().to_string();
    record.replace_range(0..2, if &record[0..2] == "00" { "01" } else { "00" });
    let bad = c_run(&[
        "verify",
        p["header_hash"].as_str().unwrap(),
        p["header_bytes"].as_str().unwrap(),
        &device,
        &record,
        p["proof"].as_str().unwrap(),
    ]);
    assert_eq!(bad["error"], "verify_device", "{bad}");
    let nobody = "ab".repeat(32);
    let q = rpc(
        &node,
        "atonomi_getProof",
        json!([{ "device": nobody }, null]),
    )["result"]
        .clone();
    let v = c_run(&[
        "verify",
        q["header_hash"].as_str().unwrap(),
        q["header_bytes"].as_str().unwrap(),
        &nobody,
        "-",
        q["proof"].as_str().unwrap(),
    ]);
    assert_eq!(v["status"], "not_registered", "{v}");
}

/// The reference auditor end to end: a rogue device floods validate-device lookups and
/// collects failure reports from three peers; the auditor downgrades it below the
/// network minimum and its payments are refused, while a device paying normally is
/// upgraded. Killed with -9 and restarted, the auditor does not write again.
#[test]
fn the_auditor_downgrades_a_rogue_device_until_it_cannot_pay() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let node = start(&home, free_port());
    let keys = home.join("keys");
    let (maker, alice, bob, auditor_key) = (
        keys.join("manufacturer.json"),
        keys.join("alice.json"),
        keys.join("bob.json"),
        keys.join("auditor.json"),
    );

    // Four devices: the rogue and three ordinary ones, activated by alice, funded.
    let names = ["rogue", "a", "b", "c"];
    let dkeys: Vec<PathBuf> = names.iter().map(|n| new_key(dir.path(), n)).collect();
    let ids: Vec<String> = names
        .iter()
        .map(|n| {
            json_out(&run(&["device-id", "salt-aud", n])).unwrap()["device_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let regs: Vec<Value> = ids.iter().zip(&dkeys).map(|(d, k)| json!({ "device_id": d, "public_key": account(k), "protocols": [], "metadata": [] })).collect();
    let ok = |r: Result<Value, String>| {
        let r = r.unwrap();
        assert_eq!(r["status"]["status"], "success", "{r}");
    };
    ok(tx(
        &node,
        &maker,
        json!({ "register_devices": { "manufacturer": 1, "devices": regs } }),
        &[],
    ));
    for (d, k) in ids.iter().zip(&dkeys) {
        ok(tx(
            &node,
            &alice,
            json!({ "activate_device": { "device": d, "device_signature": "0".repeat(128) } }),
            &["--device-key", k.to_str().unwrap()],
        ));
        ok(tx(
            &node,
            &alice,
            json!({ "transfer": { "to": account(k), "amount": "20000000000000000000" } }),
            &[],
        ));
    }

    let state = dir.path().join("auditor-state.json");
    let start_auditor = || {
        Command::new(BIN)
            .args([
                "auditor",
                "--rpc",
                &node.url,
                "--key",
                auditor_key.to_str().unwrap(),
                "--auditor-id",
                "1",
                "--state",
                state.to_str().unwrap(),
                "--epoch-blocks",
                "2",
                "--poll-ms",
                "100",
            ])
            .env("ATONOMI_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("auditor.log")).unwrap())
            .spawn()
            .unwrap()
    };
    let mut auditor = start_auditor();

    // The rogue floods lookups; the others look up a little. Three peers report failed
    // exchanges with the rogue; `a` pays `b` (ordinary activity).
    for i in 0..300 {
        let target = &ids[1 + i % 3];
        let r = rpc(
            &node,
            "atonomi_validateDevice",
            json!([{ "device": target, "requester": ids[0] }]),
        );
        assert!(r["result"].is_object(), "{r}");
    }
    for i in 1..4 {
        for _ in 0..3 {
            rpc(
                &node,
                "atonomi_validateDevice",
                json!([{ "device": ids[0], "requester": ids[i] }]),
            );
        }
        ok(tx(
            &node,
            &dkeys[i],
            json!({ "report_interaction": { "device": ids[i], "peer": ids[0], "outcome": "failure", "receipt": "00".repeat(32) } }),
            &[],
        ));
    }
    ok(tx(
        &node,
        &dkeys[1],
        json!({ "pay": { "from_device": ids[1], "to_device": ids[2], "amount": "1000000000000000000", "memo": [] } }),
        &[],
    ));

    let reputation = |d: &str| -> Option<u64> {
        rpc(
            &node,
            "atonomi_getReputation",
            json!([{ "device": d }, "trust"]),
        )["result"]["median"]
            .as_u64()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // Blocks keep coming (each closes part of an epoch).
        ok(tx(
            &node,
            &alice,
            json!({ "transfer": { "to": account(&bob), "amount": "1" } }),
            &[],
        ));
        if reputation(&ids[0]).is_some_and(|s| s < 1_000)
            && reputation(&ids[1]).is_some_and(|s| s > 5_000)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rogue {:?}, a {:?}; auditor log:\n{}",
            reputation(&ids[0]),
            reputation(&ids[1]),
            std::fs::read_to_string(dir.path().join("auditor.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Below the minimum the rogue cannot pay; the ordinary device still can.
    let refused = tx(
        &node,
        &dkeys[0],
        json!({ "pay": { "from_device": ids[0], "to_device": ids[1], "amount": "1000000000000000000", "memo": [] } }),
        &[],
    );
    let e = refused.expect_err("the rogue's payment must fail");
    assert!(e.contains("below_min_reputation"), "{e}");
    ok(tx(
        &node,
        &dkeys[2],
        json!({ "pay": { "from_device": ids[2], "to_device": ids[3], "amount": "1000000000000000000", "memo": [] } }),
        &[],
    ));

    // kill -9 and restart: no second write for what was already written.
    let _ = auditor.kill();
    let _ = auditor.wait();
    let rogue_score = reputation(&ids[0]);
    let writes = |n: &Node| {
        rpc(n, "atonomi_getAccount", json!([account(&auditor_key)]))["result"]["next_nonce"]
            .as_u64()
            .unwrap()
    };
    let before = writes(&node);
    let mut auditor = start_auditor();
    for _ in 0..6 {
        ok(tx(
            &node,
            &alice,
            json!({ "transfer": { "to": account(&bob), "amount": "1" } }),
            &[],
        ));
        std::thread::sleep(Duration::from_millis(150));
    }
    std::thread::sleep(Duration::from_secs(1));
    let _ = auditor.kill();
    let _ = auditor.wait();
    // The payment by `c` earns upgrades (one write at most); the rogue is not downgraded
    // again for the same reports, and nothing is written twice.
    assert!(
        writes(&node) <= before + 1,
        "auditor wrote {} times after a restart",
        writes(&node) - before
    );
    assert_eq!(
        reputation(&ids[0]),
        rogue_score,
        "the rogue was scored again for reports already counted"
    );
}

/// The load generator against a dev node, one small step of each workload: every
/// offered transaction is seen final through the block subscription, none is lost,
/// and the sampled receipts succeeded.
#[test]
fn the_load_generator_finalizes_every_workload_on_a_dev_node() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(&dir.path().join("home"), free_port());
    let key = |name: &str| {
        let p = dir.path().join(format!("{name}.json"));
        assert!(run(&["keys", "dev", name, "--out", p.to_str().unwrap()])
            .status
            .success());
        p.to_str().unwrap().to_string()
    };
    let (alice, maker, auditor) = (key("alice"), key("manufacturer"), key("auditor"));
    let workloads: [(&str, Vec<&str>); 4] = [
        (
            "transfers",
            vec![
                "--funder",
                &alice,
                "--accounts",
                "10",
                "--txs",
                "200",
                "--rate",
                "200",
            ],
        ),
        (
            "whitelist",
            vec![
                "--funder",
                &maker,
                "--devices-per-tx",
                "100",
                "--txs",
                "6",
                "--rate",
                "6",
                "--batch",
                "2",
            ],
        ),
        (
            "reputation",
            vec![
                "--funder",
                &auditor,
                "--maker",
                &maker,
                "--reputation-per-tx",
                "50",
                "--txs",
                "6",
                "--rate",
                "6",
                "--batch",
                "2",
            ],
        ),
        (
            "payments",
            vec![
                "--funder",
                &alice,
                "--maker",
                &maker,
                "--auditor-key",
                &auditor,
                "--payers",
                "5",
                "--txs",
                "50",
                "--rate",
                "50",
                "--batch",
                "10",
            ],
        ),
    ];
    for (name, extra) in workloads {
        let mut args = vec![
            "bench",
            "load",
            "--log",
            "warn",
            "--rpc",
            &node.url,
            "--drain-secs",
            "30",
        ];
        args.extend(extra);
        let out = json_out(&run(&args)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(out["finalized"], out["submitted"], "{name}: {out}");
        assert_eq!(out["lost"], 0, "{name}: {out}");
        assert!(out["submitted"].as_u64().unwrap() > 0, "{name}: {out}");
        assert_eq!(
            out["receipts_succeeded"], out["receipts_sampled"],
            "{name}: {out}"
        );
    }
}

/// `atonomi device-id --help` states the derivation; this recomputes it from that text:
/// blake3 derive-key with the context, over len(salt) as u64 LE ‖ salt ‖ hardware id.
#[test]
fn device_id_is_the_derivation_its_help_describes() {
    let help = String::from_utf8(run(&["device-id", "--help"]).stdout).unwrap();
    assert!(help.contains("\"atonomi 2026 device id v1\""), "{help}");
    assert!(help.contains("little-endian"), "{help}");
    let out = json_out(&run(&["device-id", "my-salt", "SN-0001"])).unwrap();
    let mut h = blake3::Hasher::new_derive_key("atonomi 2026 device id v1");
    h.update(&7u64.to_le_bytes());
    h.update(b"my-salt");
    h.update(b"SN-0001");
    assert_eq!(out["device_id"], h.finalize().to_hex().to_string());
}

/// README's *A device's life* block, run as it stands by bash from a directory that
/// holds `.atonomi-dev` (a dev node's home), with `A` set to this build's binary and
/// `ATONOMI_RPC` to the node: every command must succeed, and the meter ends up with
/// the 1 ATMI the sensor paid it.
#[test]
fn the_readme_device_walkthrough_runs_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let node = common::DevNode::start(&dir.path().join(".atonomi-dev"), &[]);
    let stdout = common::run_readme_block(
        "## A device's life",
        dir.path(),
        &[("ATONOMI_RPC", format!("http://127.0.0.1:{}", node.rpc_port))],
    );
    // The history holds the auditor's write; the manufacturer lists both devices.
    assert!(
        stdout.contains("\"tx_index\"") && stdout.contains("\"since\": 0"),
        "a reputation history was printed: {stdout}"
    );
    assert!(
        stdout
            .lines()
            .filter_map(|l| l.trim().parse::<u64>().ok())
            .any(|n| n >= 2),
        "the manufacturer's device count was printed: {stdout}"
    );
    let meter = account(&dir.path().join("meter.json"));
    let balance = &node.rpc("atonomi_getAccount", json!([meter]))["balance"];
    assert_eq!(balance, "1000000000000000000", "the meter was paid 1 ATMI");
}

/// README's "Governance from an offline machine" (issue 37, item 3), run as written:
/// the admin's change is prepared and signed with no node, then broadcast; the fee
/// changes.
#[test]
fn the_readme_offline_governance_runs_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let node = common::DevNode::start(&dir.path().join(".atonomi-dev"), &[]);
    let stdout = common::run_readme_block(
        "## Governance from an offline machine",
        dir.path(),
        &[("ATONOMI_RPC", format!("http://127.0.0.1:{}", node.rpc_port))],
    );
    assert!(
        stdout.contains("\"does\": \"propose\""),
        "tx show said what the file does: {stdout}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[lines.len() - 2..],
        ["success", "3000000000000000000"],
        "{stdout}"
    );
}
