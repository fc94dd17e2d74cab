//! A 4-validator + 1-full-node network of real `atonomi run` processes on loopback:
//! libp2p sockets, RocksDB on disk, JSON-RPC.

use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::testnet::*;
use common::{free_port, json_out, run, Killed as Proc, BIN};

#[test]
fn four_validators_and_a_full_node_agree_through_a_device_lifecycle_and_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Dev key files (admin, manufacturer, auditor, alice, bob) via a short-lived dev node.
    {
        let port = free_port();
        let mut dev = Proc(
            Command::new(BIN)
                .args([
                    "dev",
                    "--home",
                    d.join("devhome").to_str().unwrap(),
                    "--rpc-addr",
                    &format!("127.0.0.1:{port}"),
                ])
                .env("ATONOMI_LOG", "error")
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while !d.join("devhome/keys/bob.json").exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(200));
        let _ = dev.0.kill();
        std::fs::rename(d.join("devhome/keys"), d.join("devkeys")).unwrap();
    }

    let vals: Vec<NodeDir> = (0..4).map(|i| init(d, &format!("v{i}"))).collect();
    let full = init(d, "full");
    let stranger = init(d, "stranger");
    let genesis = write_genesis(d, &vals, &["--node-peer", &full.peer_hex]);
    configure_mesh(&vals, &genesis);
    let all_vals: Vec<&NodeDir> = vals.iter().collect();
    configure(&full, &genesis, &all_vals, false);
    configure(&stranger, &genesis, &all_vals, false);

    let mut procs: Vec<Proc> = vals.iter().map(start).collect();
    wait_height(&all_vals, 2, 60);

    // Device lifecycle, each step through a different validator.
    let keys = |n: &str| write_dev_key(d, n);
    let sensor_key = d.join("sensor.json");
    let meter_key = d.join("meter.json");
    json_out(&run(&[
        "keys",
        "new",
        "--out",
        sensor_key.to_str().unwrap(),
    ]))
    .unwrap();
    json_out(&run(&["keys", "new", "--out", meter_key.to_str().unwrap()])).unwrap();
    let acct = |k: &Path| {
        json_out(&run(&["keys", "show", k.to_str().unwrap()])).unwrap()["account"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let id = |hw: &str| {
        json_out(&run(&["device-id", "s", hw])).unwrap()["device_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (sensor, meter) = (id("A-1"), id("A-2"));
    let reg = |dev: &str, k: &Path| json!({ "device_id": dev, "public_key": acct(k), "protocols": [], "metadata": [] });
    tx(
        &vals[0],
        &keys("manufacturer"),
        json!({ "register_devices": { "manufacturer": 1, "devices": [reg(&sensor, &sensor_key), reg(&meter, &meter_key)] } }),
        &[],
    );
    let zero = "0".repeat(128);
    tx(
        &vals[1],
        &keys("alice"),
        json!({ "activate_device": { "device": sensor, "device_signature": zero } }),
        &["--device-key", sensor_key.to_str().unwrap()],
    );
    tx(
        &vals[2],
        &keys("bob"),
        json!({ "activate_device": { "device": meter, "device_signature": zero } }),
        &["--device-key", meter_key.to_str().unwrap()],
    );
    tx(
        &vals[3],
        &keys("auditor"),
        json!({ "write_reputation": { "auditor": 1, "entries": [{ "subject": { "device": meter }, "rep_type": "trust", "score": 9000, "direction": "up" }] } }),
        &[],
    );
    let v = json_out(&run(&[
        "query",
        "validate-device",
        "--rpc",
        &url(&vals[0]),
        &meter,
    ]))
    .unwrap();
    assert_eq!(v["ok"], true, "{v}");
    tx(
        &vals[0],
        &keys("alice"),
        json!({ "transfer": { "to": acct(&sensor_key), "amount": "5000000000000000000" } }),
        &[],
    );
    tx(
        &vals[1],
        &sensor_key,
        json!({ "pay": { "from_device": sensor, "to_device": meter, "amount": "1000000000000000000", "memo": [] } }),
        &[],
    );
    tx(
        &vals[2],
        &keys("bob"),
        json!({ "transfer_device": { "device": meter, "to": acct(&keys("alice")), "with_wallet": false } }),
        &[],
    );
    tx(
        &vals[3],
        &keys("manufacturer"),
        json!({ "revoke_device": { "device": meter } }),
        &[],
    );
    let v = json_out(&run(&[
        "query",
        "validate-device",
        "--rpc",
        &url(&vals[1]),
        &meter,
    ]))
    .unwrap();
    assert_eq!(v["ok"], false, "a revoked device does not validate: {v}");

    // The full node, started late, catches up by sync and serves the same state.
    let target = height(&vals[0]);
    procs.push(start(&full));
    let stranger_proc = start(&stranger);
    wait_height(&[&full], target, 60);
    let d_full = json_out(&run(&["query", "device", "--rpc", &url(&full), &meter])).unwrap();
    let d_val = json_out(&run(&["query", "device", "--rpc", &url(&vals[3]), &meter])).unwrap();
    assert_eq!(d_full, d_val);
    // Same state root at the same height.
    let root = |n: &NodeDir| {
        json_out(&run(&[
            "query",
            "proof",
            "--rpc",
            &url(n),
            &meter,
            "--height",
            &target.to_string(),
        ]))
        .unwrap()["state_root"]
            .clone()
    };
    assert_eq!(root(&full), root(&vals[0]));
    // A peer that is neither a validator nor registered is refused: it never syncs.
    assert_eq!(height(&stranger), 0, "an unknown peer got blocks");
    drop(stranger_proc);

    // kill -9 one validator: the other three keep finalizing; it restarts and catches up.
    let before = height(&vals[1]);
    procs[3].0.kill().unwrap();
    procs[3].0.wait().unwrap();
    wait_height(&[&vals[0], &vals[1], &vals[2]], before + 3, 60);
    procs[3] = start(&vals[3]);
    let now = height(&vals[0]);
    wait_height(&[&vals[3]], now, 60);

    // Every node agrees on every block hash.
    let everyone: Vec<&NodeDir> = all_vals.iter().copied().chain([&full]).collect();
    assert_same_blocks(&everyone);
}

/// One validator of four equivocates on every vote and proposal: the others keep
/// finalizing the same blocks and record the evidence, queryable over RPC.
#[test]
fn a_byzantine_validator_cannot_fork_the_chain_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let vals = network(dir.path(), 4);
    let honest: Vec<&NodeDir> = vals[1..].iter().collect();
    let _procs: Vec<Proc> = start_all(&vals, 0, &["--byzantine-equivocate"]);
    wait_height(&honest, 12, 120);
    assert_same_blocks(&honest);
    let byzantine = vals[0].account.clone();
    for n in &honest {
        let ev = json_out(&run(&["query", "evidence", "--rpc", &url(n)])).unwrap();
        let blamed: Vec<&Value> = ev
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|e| {
                e["double_votes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| &d["validator"])
                    .chain(
                        e["double_proposals"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|d| &d["proposer"]),
                    )
            })
            .collect();
        assert!(!blamed.is_empty(), "no evidence recorded on {}", url(n));
        assert!(
            blamed
                .iter()
                .all(|b| b.as_str() == Some(byzantine.as_str())),
            "only the byzantine validator is blamed: {blamed:?}"
        );
    }
}

/// One validator of four floods its peers with undecodable gossip and badly signed
/// transactions: each honest node penalises and bans exactly that peer (disconnects it
/// and refuses it), says so in its status, and the three keep finalizing.
#[test]
fn a_validator_sending_garbage_is_banned_and_the_others_keep_finalizing() {
    let dir = tempfile::tempdir().unwrap();
    let vals = network(dir.path(), 4);
    let honest: Vec<&NodeDir> = vals[1..].iter().collect();
    let _procs: Vec<Proc> = start_all(&vals, 0, &["--byzantine-garbage"]);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let statuses: Vec<Value> = honest
            .iter()
            .map(|n| status(n).unwrap_or(Value::Null))
            .collect();
        let banned: Vec<i64> = statuses
            .iter()
            .map(|s| s["banned_peers"].as_i64().unwrap_or(0))
            .collect();
        let peers: Vec<i64> = statuses
            .iter()
            .map(|s| s["peers"].as_i64().unwrap_or(-1))
            .collect();
        if banned.iter().all(|b| *b >= 1) && peers.iter().all(|p| *p == 2) {
            assert!(
                banned.iter().all(|b| *b == 1),
                "an honest peer was banned too: {banned:?}"
            );
            assert!(statuses
                .iter()
                .all(|s| s["peer_penalties"].as_u64().unwrap_or(0) >= 1));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "garbage sender not banned by all: banned {banned:?}, peers {peers:?}; logs in {}",
            dir.path().display()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let h = honest.iter().map(|n| height(n)).max().unwrap();
    wait_height(&honest, h + 3, 60);
    let banned_again: Vec<i64> = honest
        .iter()
        .map(|n| status(n).unwrap()["banned_peers"].as_i64().unwrap())
        .collect();
    assert_eq!(
        banned_again,
        vec![1, 1, 1],
        "no honest peer banned while finalizing"
    );
}

/// A validator that never signed (no marker beside its key) joins a running network
/// and signs at once — with one of the first three stopped, the chain depends on it —
/// while a validator whose data directory was wiped (marker kept beside its key)
/// refuses every height the network had reached, since it may have signed there.
#[test]
fn a_new_validator_signs_at_once_and_a_wiped_one_refuses_what_it_may_have_signed() {
    let dir = tempfile::tempdir().unwrap();
    let vals = network(dir.path(), 4);
    let marker = |n: &NodeDir| n.home.join("keys/validator.signed");
    let mut procs: Vec<Proc> = vals[..3].iter().map(start).collect();
    let first: Vec<&NodeDir> = vals[..3].iter().collect();
    wait_height(&first, 4, 90);
    assert!(
        first.iter().all(|n| marker(n).exists()),
        "validators that signed have the marker"
    );
    assert!(
        !marker(&vals[3]).exists(),
        "a validator that never ran has none"
    );

    // v1 stops: v0 and v2 alone are 2 of 4, so progress needs the new v3 to sign.
    drop(procs.remove(1));
    let h = vals.iter().map(height).max().unwrap();
    let _v3 = start(&vals[3]);
    let live = [&vals[0], &vals[2], &vals[3]];
    wait_height(&live, h + 3, 90);
    assert!(
        marker(&vals[3]).exists(),
        "the new validator marked its key before signing"
    );

    // v1's data is wiped, its keys (and marker) kept: it must not sign up to the height
    // the network had reached, and says so.
    std::fs::remove_dir_all(vals[1].home.join("data")).unwrap();
    let reached = vals.iter().map(height).max().unwrap();
    let _v1 = start(&vals[1]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = std::fs::read_to_string(vals[1].home.join("node.log")).unwrap_or_default();
        if log.contains("a wiped data directory may have signed there") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the wiped validator did not refuse the heights it may have signed:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    wait_height(&[&vals[1]], reached, 90);
}

/// The value of `name=` in a tracing log line.
fn log_field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(&format!(" {name}="))? + name.len() + 2;
    line[start..].split_whitespace().next()
}

/// A proposer killed after its proposal was signed and made durable, but before it was
/// sent, proposes the very same block for that (height, round) after its restart —
/// never a second one — and the round it proposed in commits it. (Before, it built a
/// new block, the guard refused to sign it, and the round was lost.)
#[test]
fn a_restarted_proposer_proposes_the_block_it_signed_not_another() {
    let dir = tempfile::tempdir().unwrap();
    let vals = network(dir.path(), 4);
    // A propose timeout long enough for the killed proposer to come back in its round.
    for v in &vals {
        let path = v.home.join("config.toml");
        let c = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            c.replace("propose_timeout_ms = 2000", "propose_timeout_ms = 15000"),
        )
        .unwrap();
    }
    let mut procs: Vec<Proc> = start_all(&vals, 0, &["--crash-after-signing-proposal"]);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if procs[0].0.try_wait().unwrap().is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "validator 0 never proposed");
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = std::fs::read_to_string(vals[0].home.join("node.log")).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("aborting after signing our proposal"))
        .unwrap_or_else(|| panic!("no crash line in the log:\n{log}"));
    let height: u64 = log_field(line, "height")
        .unwrap_or_else(|| panic!("{line:?}"))
        .parse()
        .unwrap();
    let round: u64 = log_field(line, "round").unwrap().parse().unwrap();
    let block = log_field(line, "block").unwrap().to_string();
    std::fs::rename(
        vals[0].home.join("node.log"),
        vals[0].home.join("crashed.log"),
    )
    .unwrap();

    procs[0] = start(&vals[0]);
    let all: Vec<&NodeDir> = vals.iter().collect();
    wait_height(&all, height + 1, 120);
    let relevant = |path: &Path| -> String {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter(|l| {
                l.contains("propos")
                    || l.contains("refused")
                    || l.contains("WAL")
                    || l.contains("round")
            })
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    };
    let b = json_out(&run(&[
        "query",
        "block",
        "--rpc",
        &url(&vals[1]),
        &height.to_string(),
    ]))
    .unwrap();
    assert_eq!(
        (b["hash"].as_str().unwrap(), b["commit"]["round"].as_u64().unwrap()),
        (block.as_str(), round),
        "height {height} committed another block or in another round than the one proposed before the crash\nrestarted validator:\n{}\nvalidator 1:\n{}",
        relevant(&vals[0].home.join("node.log")),
        relevant(&vals[1].home.join("node.log"))
    );
    let log = std::fs::read_to_string(vals[0].home.join("node.log")).unwrap();
    assert!(
        log.contains("sending again the proposal this validator signed before it restarted"),
        "{log}"
    );
    assert!(!log.contains("refused to sign"), "{log}");
    // Nobody saw two proposals of validator 0.
    for n in &vals[1..] {
        let ev = json_out(&run(&["query", "evidence", "--rpc", &url(n)])).unwrap();
        assert_eq!(ev, serde_json::json!([]), "evidence on {}", url(n));
    }
}

/// A validator that receives no gossip while its connections stay up (as when its
/// peers score it below their publish threshold) still follows the chain through
/// block sync, within a couple of heights of the others — before, it waited for a
/// peer's gossiped status that never came, and stayed behind until a peer
/// reconnected.
#[test]
fn a_validator_deaf_to_gossip_follows_the_chain_by_sync() {
    let dir = tempfile::tempdir().unwrap();
    let vals = network(dir.path(), 4);
    let _procs: Vec<Proc> = start_all(&vals, 3, &["--deaf-to-gossip"]);
    let hearing: Vec<&NodeDir> = vals[..3].iter().collect();
    wait_height(&hearing, 3, 120);
    let target = hearing.iter().map(|n| height(n)).max().unwrap() + 5;
    wait_height(&hearing, target, 120);
    // Ten seconds is many polls; the deaf validator has no other way to learn blocks.
    wait_height(&[&vals[3]], target - 1, 10);
    let top = height(&vals[3]);
    for h in 1..=top {
        assert_eq!(
            block_hash(&vals[3], h),
            block_hash(&vals[0], h),
            "height {h}"
        );
    }
}

fn gov(n: &NodeDir, admin: &Path, args: &[&str]) -> Value {
    let u = url(n);
    let mut a = vec!["gov"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["--rpc", &u, "--key", admin.to_str().unwrap()]);
    let r = json_out(&run(&a)).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert_eq!(r["status"]["status"], "success", "{args:?}: {r}");
    assert!(
        r["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "proposal_executed"),
        "{args:?} did not execute: {r}"
    );
    r
}

/// The old binary (playing one that implements no upgrade) runs a 4-validator network
/// under transfer load; governance schedules and cancels one plan (nobody stops), then
/// schedules `v2`. Every validator stops after the block before its height with exit
/// status 3; restarted as the old binary, one refuses to start, naming the plan; all
/// four restarted as the new binary run the migration in the block of the height and
/// go on: the same blocks everywhere, protocol version 2 on every node, and every
/// transfer acknowledged before the stop still final after it.
#[test]
fn an_upgrade_at_a_height_stops_the_old_binary_and_the_new_one_migrates() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let vals = network(d, 4);
    let all: Vec<&NodeDir> = vals.iter().collect();
    let old = ["--known-upgrades", ""];
    let mut procs: Vec<Proc> = vals.iter().map(|v| start_with(v, &old)).collect();
    wait_height(&all, 2, 60);
    let admin = d.join("admin.json");
    atonomi_api::keyfile::write(&admin, &atonomi_genesis::dev::key("admin"), false).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = transfer_load(vals.iter().map(|v| v.rpc).collect(), stop.clone());

    gov(&vals[0], &admin, &["set-params", "upgrade_min_delay=6"]);
    // A plan cancelled before its height stops nobody.
    let h = height(&vals[1]);
    let cancelled_at = (h + 10).to_string();
    gov(
        &vals[1],
        &admin,
        &[
            "propose",
            "schedule-upgrade",
            "--name",
            "v9",
            "--height",
            &cancelled_at,
        ],
    );
    let shown = json_out(&run(&["query", "upgrade", "--rpc", &url(&vals[2])])).unwrap();
    assert_eq!(shown["upgrade"]["plan"]["name"], "v9", "{shown}");
    assert_eq!(shown["known"], false, "{shown}");
    gov(
        &vals[2],
        &admin,
        &["propose", "cancel-upgrade", "--name", "v9"],
    );
    wait_height(&all, h + 12, 60);
    assert!(
        procs.iter_mut().all(|p| p.0.try_wait().unwrap().is_none()),
        "a node stopped for a cancelled plan"
    );

    let h = height(&vals[3]);
    let at = h + 12;
    let info = "atonomi with upgrade v2";
    gov(
        &vals[3],
        &admin,
        &[
            "propose",
            "schedule-upgrade",
            "--name",
            "v2",
            "--height",
            &at.to_string(),
            "--info",
            info,
        ],
    );
    let shown = json_out(&run(&["query", "upgrade", "--rpc", &url(&vals[0])])).unwrap();
    assert_eq!(shown["upgrade"]["status"], "scheduled", "{shown}");
    assert_eq!(shown["protocol_version"], 1, "{shown}");
    for (i, p) in procs.iter_mut().enumerate() {
        let status = exit_status(p, 120);
        let log = std::fs::read_to_string(vals[i].home.join("node.log")).unwrap_or_default();
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(3),
            "v{i} did not stop for the upgrade ({status:?}):\n{}",
            &log[log.len().saturating_sub(3000)..]
        );
        assert!(
            log.contains("\"v2\"") && log.contains(info),
            "v{i} does not say what to install:\n{}",
            &log[log.len().saturating_sub(3000)..]
        );
    }
    // Restarted as the old binary: refuses at once, naming the plan.
    let mut again = start_with(&vals[0], &old);
    let status = exit_status(&mut again, 30);
    let log = std::fs::read_to_string(vals[0].home.join("node.log")).unwrap();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(3),
        "restarted as the old binary ({status:?}):\n{}",
        &log[log.len().saturating_sub(3000)..]
    );
    assert!(
        log.contains(&format!("upgrade \"v2\" is scheduled at height {at}")),
        "{log}"
    );

    // The new binary on the same homes: the migration runs in block `at`, the chain goes on.
    let _procs: Vec<Proc> = vals.iter().map(start).collect();
    wait_height(&all, at + 4, 120);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (hashes, acknowledged) = load.join().unwrap();
    assert_same_blocks(&all);
    for n in &all {
        let u = json_out(&run(&["query", "upgrade", "--rpc", &url(n), "v2"])).unwrap();
        assert_eq!(u["protocol_version"], 2, "{u}");
        assert_eq!(u["upgrade"]["status"], "applied", "{u}");
        assert_eq!(u["upgrade"]["at"], at, "{u}");
        assert_eq!(u["known"], true, "{u}");
    }
    // Every acknowledged transfer is final on every node, and the load went on after
    // the upgrade.
    let after = assert_final_everywhere(&all, &hashes[..acknowledged as usize], at);
    println!(
        "upgrade at height {at}: {acknowledged} transfers acknowledged, all final on 4 nodes, {after} of them after the upgrade"
    );
    assert!(
        acknowledged > 0 && after > 0,
        "{acknowledged} acknowledged, {after} after the upgrade"
    );
}

/// `atonomi keys rotate-consensus` for `v`, signed by the operator: the old key, the
/// new one and the height the change takes effect at.
fn rotate_key(v: &NodeDir, operator: &Path) -> (String, String, u64) {
    let out = run(&[
        "keys",
        "rotate-consensus",
        "--home",
        v.home.to_str().unwrap(),
        "--key",
        operator.to_str().unwrap(),
        "--rpc",
        &url(v),
    ]);
    let r = json_out(&out).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r["status"]["status"], "success", "{r}");
    let e = r["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "consensus_key_rotated")
        .unwrap_or_else(|| panic!("{r}"))
        .clone();
    (
        e["validator"].as_str().unwrap().into(),
        e["new_key"].as_str().unwrap().into(),
        e["effective_height"].as_u64().unwrap(),
    )
}

/// Issue 37, item 2, on four validators under transfer load: one validator rotates its
/// consensus key and signs with the new one from the change's height, without a
/// restart; a second rotates and is killed with -9 right after, then restarted: it
/// signs with its new key. No height is lost, no double sign is recorded, every node
/// has the same blocks, and a validator left with only its retired key (its new key
/// file moved away) votes in vain: no certificate after the change holds a retired key.
#[test]
fn consensus_keys_rotate_under_load_and_a_killed_validator_resumes_with_its_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let vals = network(d, 4);
    let all: Vec<&NodeDir> = vals.iter().collect();
    let mut procs: Vec<Proc> = vals.iter().map(start).collect();
    wait_height(&all, 2, 60);
    let operator = d.join("operator.json");
    atonomi_api::keyfile::write(&operator, &atonomi_genesis::dev::key("manufacturer"), false)
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = transfer_load(vals.iter().map(|v| v.rpc).collect(), stop.clone());
    let in_certificates = |key: &str, from: u64, to: u64| {
        (from..=to)
            .filter(|h| signers(&vals[2], *h).iter().any(|s| s == key))
            .count()
    };

    let (old0, new0, at0) = rotate_key(&vals[0], &operator);
    wait_height(&all, at0 + 6, 60);
    assert!(
        in_certificates(&new0, at0, at0 + 6) > 0,
        "v0's new key never signed"
    );
    assert_eq!(
        in_certificates(&old0, at0, at0 + 6),
        0,
        "v0's old key signed after the change"
    );
    assert!(
        in_certificates(&old0, 1, at0 - 1) > 0,
        "v0's old key signed before it"
    );

    let (old1, new1, at1) = rotate_key(&vals[1], &operator);
    // kill -9 during its rotation, then back on the same home.
    procs[1].0.kill().unwrap();
    procs[1].0.wait().unwrap();
    procs[1] = start(&vals[1]);
    wait_height(&all, at1 + 8, 90);
    assert!(
        in_certificates(&new1, at1, at1 + 8) > 0,
        "v1's new key never signed"
    );
    assert_eq!(
        in_certificates(&old1, at1, at1 + 8),
        0,
        "v1's old key signed after the change"
    );

    // v0 without its new key file: it can only vote with the retired key, in vain.
    procs[0].0.kill().unwrap();
    procs[0].0.wait().unwrap();
    std::fs::rename(
        vals[0].home.join("keys/validator.next.json"),
        d.join("v0-new-key.json"),
    )
    .unwrap();
    procs[0] = start(&vals[0]);
    let from = height(&vals[2]);
    wait_height(&all, from + 6, 90);
    assert_eq!(
        in_certificates(&old0, from, from + 6),
        0,
        "a retired key's vote counted"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (hashes, acknowledged) = load.join().unwrap();
    assert_final_everywhere(&all, &hashes[..acknowledged as usize], 0);

    let top = assert_same_blocks(&all);
    for n in &all {
        let ev = json_out(&run(&["query", "evidence", "--rpc", &url(n)])).unwrap();
        assert_eq!(
            ev.as_array().map(Vec::len),
            Some(0),
            "double signs on {}: {ev}",
            url(n)
        );
    }
    println!(
        "key rotations at heights {at0} and {at1} (v1 killed -9 right after its rotation); {top} heights, {acknowledged} transfers acknowledged"
    );
}
