//! The state log through a running node: proofs at every retained height verify
//! against that height's header, a pruned height is a typed error naming what is
//! kept, and `kill -9` at arbitrary moments restarts at a committed height whose
//! state root is the header's (the store rebuilds its memory from disk and checks it
//! against the recorded root before the node serves).

mod common;

use atonomi_primitives::block::BlockHeader;
use atonomi_primitives::codec;
use atonomi_primitives::proof::{verify_raw, StateProof};
use common::RunNode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn wait_height(node: &RunNode, at_least: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let h = node.height();
        if h >= at_least {
            return h;
        }
        assert!(
            Instant::now() < deadline,
            "stuck at height {h}, waiting for {at_least}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The proof of an absent device at `height`, checked the way a light client does:
/// the header hashes to the hash the node gives, and the proof leads to its root.
fn check_proof(node: &RunNode, height: u64) {
    let nobody = "ab".repeat(32);
    let v = node
        .try_rpc("atonomi_getProof", json!([{ "device": nobody }, height]))
        .unwrap();
    let p = &v["result"];
    assert_eq!(p["height"], height, "{v}");
    assert!(p["value"].is_null());
    let header: BlockHeader = codec::decode(
        &hex::decode(p["header_bytes"].as_str().unwrap()).unwrap(),
        1 << 20,
    )
    .unwrap();
    assert_eq!(header.height.get(), height);
    assert_eq!(
        serde_json::to_value(header.hash()).unwrap(),
        p["header_hash"],
        "{v}"
    );
    let proof =
        StateProof::from_bytes(&hex::decode(p["proof"].as_str().unwrap()).unwrap()).unwrap();
    let key = hex::decode(p["key"].as_str().unwrap()).unwrap();
    verify_raw(header.state_root, &key, None, &proof).unwrap();
    assert!(verify_raw(header.state_root, &key, Some(b"x"), &proof).is_err());
}

#[test]
fn retained_heights_prove_pruned_ones_are_refused_and_kill_9_restarts_clean() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = RunNode::create(dir.path(), 1, "[storage]\nstate_retention = 128\n");
    node.start();
    let latest = wait_height(&node, 200);

    // Height 1 is long pruned: a typed error that says what is kept.
    let v = node
        .try_rpc(
            "atonomi_getProof",
            json!([{ "device": "ab".repeat(32) }, 1]),
        )
        .unwrap();
    assert_eq!(v["error"]["code"], 4041, "{v}");
    let data: &Value = &v["error"]["data"];
    let (oldest, kept_latest) = (
        data["oldest"].as_u64().unwrap(),
        data["latest"].as_u64().unwrap(),
    );
    assert!(kept_latest >= latest, "{v}");
    assert_eq!(kept_latest + 1 - oldest, 128, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("pruned"),
        "{v}"
    );

    // The oldest kept height and a few after it prove against their own headers.
    for h in [oldest, oldest + 1, oldest + 60, kept_latest] {
        check_proof(&node, h);
    }

    // kill -9 while blocks are made every few milliseconds, then restart: the node comes
    // back at a committed height and goes on; its proofs still verify.
    for (round, pause_ms) in [137u64, 421, 59].into_iter().enumerate() {
        std::thread::sleep(Duration::from_millis(pause_ms));
        node.kill();
        node.start();
        let back = node.height();
        let later = wait_height(&node, back + 5);
        check_proof(&node, later);
        check_proof(&node, later.saturating_sub(100).max(1));
        assert!(
            later > latest,
            "round {round}: height {later} after {latest}"
        );
    }
}
