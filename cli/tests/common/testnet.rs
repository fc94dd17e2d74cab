//! A network of real `atonomi run` processes on loopback (validators and full nodes,
//! libp2p sockets, RocksDB on disk, JSON-RPC), for the cluster and monitoring tests:
//! homes, genesis and configs, starting and waiting, transfer load and the checks that
//! every node agrees.

use super::{free_port, json_out, run, Killed as Proc, BIN};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A node's home and ports (`atonomi init` wrote its keys).
pub struct NodeDir {
    pub home: PathBuf,
    pub rpc: u16,
    pub p2p: u16,
    pub account: String,
    pub peer_id: String,
    pub peer_hex: String,
}

pub fn init(dir: &Path, name: &str) -> NodeDir {
    let home = dir.join(name);
    let v = json_out(&run(&["init", "--home", home.to_str().unwrap()])).unwrap();
    NodeDir {
        home,
        rpc: free_port(),
        p2p: free_port(),
        account: v["account"].as_str().unwrap().into(),
        peer_id: v["peer_id"].as_str().unwrap().into(),
        peer_hex: v["peer_id_hex"].as_str().unwrap().into(),
    }
}

pub fn configure(n: &NodeDir, genesis: &Path, peers: &[&NodeDir], validator: bool) {
    std::fs::copy(genesis, n.home.join("genesis.json")).unwrap();
    let peers: Vec<String> = peers
        .iter()
        .map(|p| format!("\"/ip4/127.0.0.1/tcp/{}/p2p/{}\"", p.p2p, p.peer_id))
        .collect();
    let vkey = if validator {
        "validator_key = \"keys/validator.json\""
    } else {
        ""
    };
    let config = format!(
        "genesis = \"genesis.json\"\n{vkey}\n[rpc]\naddr = \"127.0.0.1:{}\"\n[p2p]\nlisten = \"/ip4/127.0.0.1/tcp/{}\"\npeers = [{}]\nnode_key = \"keys/node.json\"\n[consensus]\nheartbeat_ms = 500\npropose_timeout_ms = 2000\n",
        n.rpc,
        n.p2p,
        peers.join(", ")
    );
    std::fs::write(n.home.join("config.toml"), config).unwrap();
}

pub fn start(n: &NodeDir) -> Proc {
    start_with(n, &[])
}

pub fn start_with(n: &NodeDir, extra: &[&str]) -> Proc {
    let log = std::fs::File::create(n.home.join("node.log")).unwrap();
    spawn_run(&n.home, extra, log)
}

/// `atonomi run --home HOME EXTRA…` logging at info (consensus and gossip internals at
/// warn and error) into `log`.
pub fn spawn_run(home: &Path, extra: &[&str], log: std::fs::File) -> Proc {
    let child = Command::new(BIN)
        .args(["run", "--home", home.to_str().unwrap()])
        .args(extra)
        .env(
            "ATONOMI_LOG",
            "info,arc_malachitebft_core_consensus=warn,libp2p_gossipsub=error",
        )
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Proc(child)
}

/// Starts every node of `vals`, node `special` with the extra flags `extra`.
pub fn start_all(vals: &[NodeDir], special: usize, extra: &[&str]) -> Vec<Proc> {
    vals.iter()
        .enumerate()
        .map(|(i, v)| {
            if i == special {
                start_with(v, extra)
            } else {
                start(v)
            }
        })
        .collect()
}

pub fn url(n: &NodeDir) -> String {
    format!("http://127.0.0.1:{}", n.rpc)
}

pub fn status(n: &NodeDir) -> Option<Value> {
    json_out(&run(&["query", "status", "--rpc", &url(n)])).ok()
}

pub fn height(n: &NodeDir) -> u64 {
    status(n).and_then(|s| s["height"].as_u64()).unwrap_or(0)
}

pub fn wait_height(nodes: &[&NodeDir], at_least: u64, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let hs: Vec<u64> = nodes.iter().map(|n| height(n)).collect();
        if hs.iter().all(|h| *h >= at_least) {
            return;
        }
        if Instant::now() >= deadline {
            // The temporary directory goes with the failing test: keep the evidence here.
            let tails: Vec<String> = nodes
                .iter()
                .map(|n| {
                    let log = std::fs::read_to_string(n.home.join("node.log")).unwrap_or_default();
                    let lines: Vec<&str> = log.lines().collect();
                    format!(
                        "--- {} ---\n{}",
                        n.home.display(),
                        lines[lines.len().saturating_sub(25)..].join("\n")
                    )
                })
                .collect();
            panic!(
                "heights {hs:?} did not reach {at_least} in {secs} s\n{}",
                tails.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn block_hash(n: &NodeDir, h: u64) -> String {
    let b = json_out(&run(&["query", "block", "--rpc", &url(n), &h.to_string()])).unwrap();
    b["hash"].as_str().unwrap().to_string()
}

/// Every node has the same block at every height up to the lowest head; that height.
pub fn assert_same_blocks(nodes: &[&NodeDir]) -> u64 {
    let top = nodes.iter().map(|n| height(n)).min().unwrap();
    for h in 1..=top {
        let hashes: Vec<String> = nodes.iter().map(|n| block_hash(n, h)).collect();
        assert!(
            hashes.windows(2).all(|w| w[0] == w[1]),
            "fork at height {h}: {hashes:?}"
        );
    }
    top
}

pub fn tx(n: &NodeDir, key: &Path, call: Value, extra: &[&str]) -> Value {
    let call = call.to_string();
    let u = url(n);
    let mut args = vec!["tx", "--rpc", &u, "--key", key.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push(&call);
    let r = json_out(&run(&args)).unwrap_or_else(|e| panic!("{call}: {e}"));
    assert_eq!(r["status"]["status"], "success", "{call}: {r}");
    r
}

pub fn write_dev_key(dir: &Path, name: &str) -> PathBuf {
    // The testnet genesis keeps the dev genesis' admin, manufacturer, auditor and
    // funded accounts; `atonomi dev` writes their key files.
    let p = dir.join("devkeys").join(format!("{name}.json"));
    assert!(p.exists(), "{}", p.display());
    p
}

/// `atonomi genesis new` naming `vals` as the validators (with `extra` flags) at
/// `d/genesis.json`; its path.
pub fn write_genesis(d: &Path, vals: &[NodeDir], extra: &[&str]) -> PathBuf {
    let genesis = d.join("genesis.json");
    let mut args = vec![
        "genesis".to_string(),
        "new".into(),
        "--out".into(),
        genesis.to_str().unwrap().into(),
    ];
    for v in vals {
        args.push("--validator".into());
        args.push(format!("{},{}", v.account, v.peer_hex));
    }
    args.extend(extra.iter().map(|a| a.to_string()));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&a);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    genesis
}

/// Configures each validator of `vals` to dial all the others.
pub fn configure_mesh(vals: &[NodeDir], genesis: &Path) {
    for (i, v) in vals.iter().enumerate() {
        let peers: Vec<&NodeDir> = vals
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, p)| p)
            .collect();
        configure(v, genesis, &peers, true);
    }
}

/// `n` validators' homes, a genesis naming them, and configs dialing each other.
pub fn network(d: &Path, n: usize) -> Vec<NodeDir> {
    let vals: Vec<NodeDir> = (0..n).map(|i| init(d, &format!("v{i}"))).collect();
    let genesis = write_genesis(d, &vals, &[]);
    configure_mesh(&vals, &genesis);
    vals
}

/// Alice pays Bob 1 base unit per transaction, nonce after nonce, in batches of 20 sent
/// to the validators in turn (a node that is down is skipped; a batch is sent again
/// from the chain's next nonce, and the same nonce always makes the same bytes, so
/// a transaction a stopped node's pool lost is simply sent again). Returns the hash of
/// each nonce sent and the highest next nonce a node reported: every nonce below it
/// was acknowledged as committed (callers check each is final on every node).
pub fn transfer_load(
    ports: Vec<u16>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<(Vec<String>, u64)> {
    use atonomi_primitives::SignedTransaction;
    std::thread::spawn(move || {
        let alice = atonomi_genesis::dev::key("alice");
        let bob = atonomi_genesis::dev::key("bob").account();
        let signed = |nonce| super::signed_transfer_on("atonomi-testnet", &alice, nonce, bob, 1);
        let mut hashes: Vec<String> = Vec::new();
        let mut acknowledged = 0u64;
        let mut turn = 0usize;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            turn += 1;
            let port = ports[turn % ports.len()];
            let next = super::rpc_call(port, "atonomi_getAccount", json!([alice.account()]))
                .ok()
                .and_then(|v| v["result"]["next_nonce"].as_u64());
            let Some(next) = next else {
                std::thread::sleep(Duration::from_millis(200));
                continue;
            };
            // A node still catching up (restarted, say) reports an older state: ask
            // another. Whether anything acknowledged was lost is checked at the end,
            // on every node.
            if next < acknowledged {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            acknowledged = next;
            let batch: Vec<String> = (next..next + 20)
                .map(|n| {
                    let bytes = signed(n);
                    if n as usize == hashes.len() {
                        hashes.push(SignedTransaction::hash_of(&bytes).to_string());
                    }
                    hex::encode(bytes)
                })
                .collect();
            let _ = super::rpc_call(port, "atonomi_sendTransactionBatch", json!([batch]));
            std::thread::sleep(Duration::from_millis(300));
        }
        (hashes, acknowledged)
    })
}

/// Each transaction of `hashes` is final on every node of `nodes`, at the same
/// height; how many of them landed above height `above`.
pub fn assert_final_everywhere(nodes: &[&NodeDir], hashes: &[String], above: u64) -> usize {
    let mut after = 0;
    for (i, hash) in hashes.iter().enumerate() {
        let heights: Vec<u64> = nodes
            .iter()
            .map(|n| {
                let t = super::rpc_call(n.rpc, "atonomi_getTransaction", json!([hash])).unwrap();
                assert_eq!(
                    t["result"]["status"],
                    "final",
                    "transaction {i} on {}: {t}",
                    url(n)
                );
                t["result"]["receipt"]["height"].as_u64().unwrap()
            })
            .collect();
        assert!(
            heights.windows(2).all(|w| w[0] == w[1]),
            "transaction {i}: {heights:?}"
        );
        if heights[0] > above {
            after += 1;
        }
    }
    after
}

/// Waits for a process to exit; how it ended.
pub fn exit_status(p: &mut Proc, secs: u64) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = p.0.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The validators whose signatures a block's commit certificate holds.
pub fn signers(n: &NodeDir, h: u64) -> Vec<String> {
    let b = json_out(&run(&["query", "block", "--rpc", &url(n), &h.to_string()])).unwrap();
    b["commit"]["signatures"]
        .as_array()
        .unwrap_or_else(|| panic!("block {h} has no certificate: {b}"))
        .iter()
        .map(|s| s[0].as_str().unwrap().to_string())
        .collect()
}
