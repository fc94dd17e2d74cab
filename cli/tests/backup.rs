//! Hot backup and restore (`atonomi backup`, `atonomi restore`) of a validator of a
//! 4-validator testnet of real processes under transfer load.

use serde_json::Value;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

mod common;

use common::testnet::*;
use common::{json_out, run};

fn restore(from: &Path, home: &Path) -> std::process::Output {
    run(&[
        "restore",
        "--from",
        from.to_str().unwrap(),
        "--home",
        home.to_str().unwrap(),
    ])
}

/// Backed up while it signs under load, then wiped (data, config, genesis, node key;
/// the consensus key lives elsewhere, as with a key kept apart from the disk),
/// restored and restarted: the validator catches up, every node agrees on every
/// block, every acknowledged transfer is final everywhere, nobody records evidence
/// against it, and it signs blocks again. Restoring over data that is ahead of the
/// backup is refused, and a damaged backup restores nothing.
#[test]
fn a_validator_backed_up_under_load_wiped_and_restored_catches_up_and_signs_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let vals = network(d, 4);
    let mut procs: Vec<Option<common::Killed>> = vals.iter().map(|v| Some(start(v))).collect();
    let everyone: Vec<&NodeDir> = vals.iter().collect();
    wait_height(&everyone, 3, 120);
    let stop = Arc::new(AtomicBool::new(false));
    let load = transfer_load(vals.iter().map(|v| v.rpc).collect(), stop.clone());
    wait_height(&everyone, 8, 120);

    // A hot backup: the node keeps running and signing.
    let v = &vals[3];
    let backup_dir = d.join("backup");
    let out = run(&[
        "backup",
        "--home",
        v.home.to_str().unwrap(),
        "--out",
        backup_dir.to_str().unwrap(),
    ]);
    let taken = json_out(&out).unwrap_or_else(|e| panic!("backup: {e}"));
    let backed_up = taken["data"]["height"].as_u64().unwrap();
    assert!(backed_up >= 8, "{taken}");
    assert!(
        taken["data"]["guard_height"].as_u64().is_some(),
        "a signing validator's backup has a guard: {taken}"
    );
    assert_eq!(taken["consensus_key_included"], false);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(backup_dir.join("backup.json")).unwrap()).unwrap();
    let files = manifest["files"].as_object().unwrap();
    for f in [
        "home/config.toml",
        "home/genesis.json",
        "home/keys/node.json",
    ] {
        assert!(files.contains_key(f), "{f} not in {manifest}");
    }
    assert!(
        !files.keys().any(|f| f.starts_with("home/keys/validator")),
        "the consensus key was backed up without being asked: {manifest}"
    );
    // It goes on signing well past the backup.
    wait_height(&everyone, backed_up + 6, 120);

    // Stopped; its data is ahead of the backup: refused, nothing changed.
    drop(procs[3].take());
    let ahead = restore(&backup_dir, &v.home);
    let why = String::from_utf8_lossy(&ahead.stderr);
    assert!(
        !ahead.status.success() && why.contains("ahead of the backup"),
        "{why}"
    );
    assert!(!v.home.join("data.restoring").exists());

    // The machine loses its disk: the data, config, genesis and node key.
    std::fs::remove_dir_all(v.home.join("data")).unwrap();
    for f in [
        "config.toml",
        "genesis.json",
        "keys/node.json",
        "keys/validator.signed",
    ] {
        let _ = std::fs::remove_file(v.home.join(f));
    }

    // A damaged backup restores nothing.
    let config_copy = backup_dir.join("home/config.toml");
    let original = std::fs::read(&config_copy).unwrap();
    std::fs::write(&config_copy, [&original[..], b"\n# edited\n"].concat()).unwrap();
    let damaged = restore(&backup_dir, &v.home);
    let why = String::from_utf8_lossy(&damaged.stderr);
    assert!(
        !damaged.status.success() && why.contains("home/config.toml"),
        "{why}"
    );
    assert!(!v.home.join("data").exists() && !v.home.join("config.toml").exists());
    std::fs::write(&config_copy, &original).unwrap();

    let restored = json_out(&restore(&backup_dir, &v.home)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(restored["data"]["height"], backed_up, "{restored}");
    let written: Vec<&str> = restored["written"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for f in ["config.toml", "genesis.json", "keys/node.json"] {
        assert!(written.contains(&f), "{f} not restored: {restored}");
    }
    assert!(
        v.home.join("keys/validator.signed").exists(),
        "the key's signed marker must be back: the restored guard is empty"
    );

    // Restarted: it catches up and signs again.
    let restart_at = everyone.iter().take(3).map(|n| height(n)).max().unwrap();
    procs[3] = Some(start(v));
    wait_height(&everyone, restart_at + 8, 180);
    // `atonomi init` printed the validator key's account: its consensus key.
    let key = v.account.clone();
    let top = height(&vals[0]);
    let signs_again = (restart_at + 2..=top).any(|h| signers(&vals[0], h).contains(&key));
    assert!(
        signs_again,
        "the restored validator signed no block between {restart_at} and {top}"
    );

    // Its guard, emptied by the restore, took the network's height as its floor: what
    // it signed between the backup and the wipe it cannot sign again.
    let log = std::fs::read_to_string(v.home.join("node.log")).unwrap();
    assert!(
        log.contains("refusing to sign up to the next height"),
        "the restored validator did not raise its guard to the network's height:\n{log}"
    );

    stop.store(true, Ordering::Relaxed);
    let (hashes, acknowledged) = load.join().unwrap();
    assert!(acknowledged > 0, "no transfer was acknowledged");
    let top = assert_same_blocks(&everyone);
    assert!(top > restart_at);
    assert_final_everywhere(&everyone, &hashes[..acknowledged as usize], 0);
    // It signed nothing twice: no node holds evidence against anyone.
    for n in &everyone {
        let ev = json_out(&run(&["query", "evidence", "--rpc", &url(n)])).unwrap();
        assert_eq!(ev, serde_json::json!([]), "evidence on {}", url(n));
    }
}
