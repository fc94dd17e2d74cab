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

    // Status says what is kept: every block, state from `oldest` (or later: blocks land
    // between the two calls) on.
    let status = node.try_rpc("atonomi_status", json!([])).unwrap()["result"].clone();
    assert_eq!(status["lowest_block_height"], 1, "{status}");
    let lowest_state = status["lowest_state_height"].as_u64().unwrap();
    assert!(lowest_state >= oldest && lowest_state > 1, "{status}");

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

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// A home like `node`'s (genesis, config, keys) without its data.
fn fresh_home_like(node: &RunNode, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in ["genesis.json", "config.toml"] {
        std::fs::copy(node.home.join(f), to.join(f)).unwrap();
    }
    copy_dir(&node.home.join("keys"), &to.join("keys"));
}

#[test]
fn a_snapshot_restores_a_home_that_goes_on_and_a_tampered_or_cut_chunk_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = RunNode::create(dir.path(), 1, "[storage]\nstate_retention = 128\n");
    node.start();
    // Past the retention, so that height 1 is pruned.
    let latest = wait_height(&node, 150);
    node.kill();
    let home = node.home.to_str().unwrap().to_string();

    // Export the latest height and one twenty heights back (from the undo history).
    let (now_dir, past_dir) = (dir.path().join("snap-now"), dir.path().join("snap-past"));
    let now = common::json_out(&common::run(&[
        "snapshot",
        "export",
        "--home",
        &home,
        "--out",
        now_dir.to_str().unwrap(),
    ]))
    .unwrap();
    assert!(now["height"].as_u64().unwrap() >= latest, "{now}");
    let past_height = now["height"].as_u64().unwrap() - 20;
    let past = common::json_out(&common::run(&[
        "snapshot",
        "export",
        "--home",
        &home,
        "--height",
        &past_height.to_string(),
        "--out",
        past_dir.to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(past["height"], past_height);
    // A pruned height is refused by name.
    let out = common::run(&[
        "snapshot",
        "export",
        "--home",
        &home,
        "--height",
        "1",
        "--out",
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("pruned"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A flipped byte, then a cut file: refused, naming the chunk, and nothing imported.
    for (case, damage) in [("flipped", 0u8), ("cut", 1)] {
        let bad = dir.path().join(format!("snap-{case}"));
        copy_dir(&past_dir, &bad);
        let chunk = bad.join("chunk-000000.bin");
        let mut bytes = std::fs::read(&chunk).unwrap();
        if damage == 0 {
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0x40;
        } else {
            bytes.truncate(bytes.len() - 7);
        }
        std::fs::write(&chunk, bytes).unwrap();
        let target = dir.path().join(format!("home-{case}"));
        fresh_home_like(&node, &target);
        let out = common::run(&[
            "snapshot",
            "import",
            "--home",
            target.to_str().unwrap(),
            "--from",
            bad.to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{case}: a damaged snapshot was imported"
        );
        assert!(err.contains("chunk-000000.bin"), "{case}: {err}");
        assert!(
            !target.join("data").exists() && !target.join("data.importing").exists(),
            "{case}: something was left"
        );
    }

    // The good past snapshot restores a home whose node resumes from that height.
    let mut restored = RunNode {
        home: dir.path().join("home-restored"),
        rpc_port: node.rpc_port,
        p2p_port: node.p2p_port,
        child: None,
    };
    fresh_home_like(&node, &restored.home);
    let v = common::json_out(&common::run(&[
        "snapshot",
        "import",
        "--home",
        restored.home.to_str().unwrap(),
        "--from",
        past_dir.to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(v["height"], past_height, "{v}");
    restored.start();
    let h0 = restored.height();
    assert!(
        h0 >= past_height,
        "restored at {h0}, snapshot at {past_height}"
    );
    let later = wait_height(&restored, h0 + 5);
    // It has blocks and state from the snapshot's height on, none before.
    let status = restored.try_rpc("atonomi_status", json!([])).unwrap()["result"].clone();
    assert_eq!(status["lowest_block_height"], past_height, "{status}");
    assert_eq!(status["lowest_state_height"], past_height, "{status}");
    check_proof(&restored, past_height);
    check_proof(&restored, later);
}

/// `[storage] snapshot_interval = 5, snapshot_keep = 2` on a running node: it takes a
/// snapshot at every multiple of 5 in the background and keeps the newest two, its
/// metrics say which, and the newest restores a new home.
#[test]
fn a_running_node_snapshots_every_interval_and_keeps_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = RunNode::create(
        dir.path(),
        100,
        "[storage]\nsnapshot_interval = 5\nsnapshot_keep = 2\n",
    );
    let metrics_port = common::free_port();
    node.start_with(&["--metrics-addr", &format!("127.0.0.1:{metrics_port}")]);
    let snapshots = node.home.join("snapshots");
    let finished = || -> Vec<u64> {
        let mut heights: Vec<u64> = std::fs::read_dir(&snapshots)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter_map(|e| {
                        e.file_name()
                            .to_str()?
                            .strip_prefix("snapshot-")?
                            .parse()
                            .ok()
                    })
                    .collect()
            })
            .unwrap_or_default();
        heights.sort();
        heights
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let heights = loop {
        let h = finished();
        if h.len() == 2 && h[1] >= 20 {
            break h;
        }
        assert!(Instant::now() < deadline, "snapshots: {h:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        heights.iter().all(|h| h.is_multiple_of(5)) && heights[1] - heights[0] == 5,
        "{heights:?}"
    );
    let (_, _, text) = common::http_exchange(
        ("127.0.0.1", metrics_port),
        b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&text);
    let shown: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("atonomi_snapshot_height "))
        .unwrap_or_else(|| panic!("{text}"))
        .parse()
        .unwrap();
    assert!(
        shown >= heights[1] && shown.is_multiple_of(5),
        "{shown} {heights:?}"
    );
    node.kill();

    let newest = *finished().last().unwrap();
    let target = dir.path().join("restored");
    fresh_home_like(&node, &target);
    let imported = common::json_out(&common::run(&[
        "snapshot",
        "import",
        "--home",
        target.to_str().unwrap(),
        "--from",
        snapshots
            .join(format!("snapshot-{newest:012}"))
            .to_str()
            .unwrap(),
    ]))
    .unwrap();
    assert_eq!(imported["height"], newest, "{imported}");
}
