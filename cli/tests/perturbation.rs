//! Findings of the outside perturbation run (issue 15) on real node processes.

use serde_json::json;
use std::time::{Duration, Instant};

mod common;

use common::{signed_transfer, ws, DevNode};

/// A transaction that was accepted and then dropped (here: replaced by another with the
/// same sender and nonce) is reported as dropped, with the reason, by
/// `atonomi_getTransaction` and the event subscription, and `atonomi tx` fails at once
/// instead of waiting out its timeout. Before, the hash was simply "not found".
#[test]
fn a_dropped_transaction_says_why_and_atonomi_tx_fails_fast() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let node = DevNode::start(&home, &[]);
    let alice = atonomi_genesis::dev::key("alice");
    let bob = atonomi_genesis::dev::key("bob").account();
    let next = node.rpc("atonomi_getAccount", json!([alice.account()]))["next_nonce"]
        .as_u64()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (mut sub_tx, mut sub_rx) = rt.block_on(async {
        let (mut tx, mut rx) = ws::connect(node.rpc_port, [127, 0, 0, 1]).await.unwrap();
        let req = json!({ "jsonrpc": "2.0", "id": 1, "method": "atonomi_subscribeEvents",
            "params": [{ "events": ["transaction_dropped"], "involving": alice.account().to_string() }] });
        ws::send(&mut tx, &req.to_string()).await;
        let ok = ws::next(&mut rx, 10).await.unwrap();
        assert!(ok.contains("result"), "{ok}");
        (tx, rx)
    });

    // `atonomi tx` with a nonce one ahead: the transaction waits in the pool.
    let gap = (next + 1).to_string();
    let call = json!({ "transfer": { "to": bob, "amount": "1" } }).to_string();
    let key = home.join("keys/alice.json");
    let client = std::process::Command::new(common::BIN)
        .args([
            "tx",
            "--rpc",
            &node.url(),
            "--key",
            key.to_str().unwrap(),
            "--nonce",
            &gap,
            "--wait",
            "60",
            &call,
        ])
        .env("ATONOMI_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while node.rpc("atonomi_status", json!([]))["mempool"] != 1 {
        assert!(
            Instant::now() < deadline,
            "the gapped transaction never reached the pool"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // Another transaction with the same nonce replaces it.
    let replacement = node.rpc(
        "atonomi_sendTransaction",
        json!([signed_transfer(&alice, next + 1, bob, 2)]),
    )["hash"]
        .as_str()
        .unwrap()
        .to_string();
    let started = Instant::now();
    let mut client = client;
    let status = loop {
        if let Some(s) = client.try_wait().unwrap() {
            break Some(s);
        }
        if started.elapsed() > Duration::from_secs(15) {
            let _ = client.kill();
            let _ = client.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let waited = started.elapsed();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut client.stderr.take().unwrap(), &mut stderr).unwrap();
    let status =
        status.unwrap_or_else(|| panic!("atonomi tx still waited after {waited:?}: {stderr}"));
    assert!(!status.success(), "atonomi tx succeeded: {stderr}");
    assert!(
        stderr.contains("dropped") && stderr.contains("replaced"),
        "{stderr}"
    );
    assert!(
        waited < Duration::from_secs(10),
        "atonomi tx waited {waited:?} for a dropped transaction"
    );

    // The subscription announced it, and the node still knows why.
    let event: serde_json::Value = rt.block_on(async {
        let m = ws::next(&mut sub_rx, 10).await.expect("no drop event");
        serde_json::from_str(&m).unwrap()
    });
    let ev = &event["params"]["result"];
    assert_eq!(ev["event"]["event"], "transaction_dropped", "{event}");
    assert_eq!(ev["event"]["reason"], "replaced");
    assert_eq!(ev["event"]["by"], replacement.as_str());
    let dropped = ev["tx_hash"].as_str().unwrap();
    let t = node.rpc("atonomi_getTransaction", json!([dropped]));
    assert_eq!(t["status"], "dropped", "{t}");
    assert_eq!(t["reason"], "replaced");
    assert_eq!(t["nonce"], next + 1);
    assert!(
        stderr.contains(dropped),
        "the error names the hash: {stderr}"
    );
    let _ = rt.block_on(sub_tx.close());

    // Filling the gap commits the replacement; the dropped one stays dropped.
    node.rpc(
        "atonomi_sendTransaction",
        json!([signed_transfer(&alice, next, bob, 1)]),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while node.rpc("atonomi_getTransaction", json!([replacement]))["status"] != "final" {
        assert!(Instant::now() < deadline, "the replacement never committed");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        node.rpc("atonomi_getTransaction", json!([dropped]))["status"],
        "dropped"
    );
}
