//! Hardening against cheap requests that degrade a node for everyone (issue 14): each
//! test reproduces one finding of the outside probe against a real node process.

use serde_json::{json, Value};
use std::time::{Duration, Instant};

mod common;

use common::{signed_transfer, DevNode};

/// A transaction whose nonce is ahead of its account's (a gap nobody fills) is pooled,
/// but it cannot run: the node must not start heights for it. Before the fix the host
/// started a height whenever the pool was non-empty and produced ~100 blocks per second.
#[test]
fn a_gapped_transaction_does_not_make_the_chain_spin() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("home"), &[]);
    let alice = atonomi_genesis::dev::key("alice");
    let bob = atonomi_genesis::dev::key("bob").account();
    let next = node.rpc("atonomi_getAccount", json!([alice.account()]))["next_nonce"]
        .as_u64()
        .unwrap();
    let gapped = signed_transfer(&alice, next + 2, bob, 0);
    let r = node.rpc("atonomi_sendTransaction", json!([gapped]));
    assert!(
        r["hash"].is_string(),
        "a gapped nonce within the bound is pooled: {r}"
    );

    let before = node.height();
    std::thread::sleep(Duration::from_secs(4));
    let after = node.height();
    let status = node.rpc("atonomi_status", json!([]));
    assert_eq!(
        status["mempool"], 1,
        "the gapped transaction waits in the pool"
    );
    // The dev heartbeat is 10 s: at most one heartbeat block in 4 s.
    assert!(
        after - before <= 1,
        "the chain spun on an unexecutable transaction: {before} -> {after} in 4 s"
    );

    // Filling the gap makes all three run at once.
    let start = Instant::now();
    for n in [next, next + 1] {
        node.rpc(
            "atonomi_sendTransaction",
            json!([signed_transfer(&alice, n, bob, 1)]),
        );
    }
    while node.rpc("atonomi_status", json!([]))["mempool"] != 0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the filled run did not commit"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let acct = node.rpc("atonomi_getAccount", json!([alice.account()]));
    assert_eq!(acct["next_nonce"].as_u64().unwrap(), next + 3);
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Keep-alive connections that stay idle after a request are closed by the node (the
/// probe found 300 of them all open after 35 s, open files 29 -> 479).
#[test]
fn idle_keep_alive_connections_are_closed() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("home"), &[]);
    let before = open_fds(node.child.id());
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"atonomi_status","params":[]}"#;
    let mut conns: Vec<std::net::TcpStream> = (0..100)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", node.rpc_port)).unwrap();
            write!(s, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap();
            assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
            s
        })
        .collect();
    let during = open_fds(node.child.id());
    assert!(
        during >= before + 90,
        "the connections are open: {before} -> {during}"
    );
    // The default idle timeout is 10 s.
    std::thread::sleep(Duration::from_secs(14));
    for s in &mut conns {
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 16];
        assert!(
            matches!(s.read(&mut buf), Ok(0) | Err(_)),
            "an idle connection was left open"
        );
    }
    let after = open_fds(node.child.id());
    assert!(
        after <= before + 5,
        "descriptors were not released: {before} -> {after}"
    );
}

/// One client holding many WebSockets cannot lock others out, nor HTTP (the probe: 256
/// held WebSockets made every HTTP request answer 429).
#[test]
fn one_address_cannot_take_every_connection() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("home"), &[]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut held = Vec::new();
        let mut refused = 0;
        for _ in 0..256 {
            match common::ws::connect(node.rpc_port, [127, 0, 0, 2]).await {
                Ok(c) => held.push(c),
                Err(_) => refused += 1,
            }
        }
        assert_eq!(held.len(), 32, "the per-address WebSocket budget");
        assert_eq!(refused, 224);
        // HTTP from the same address and from another, and a WebSocket from another.
        for from in [[127, 0, 0, 2], [127, 0, 0, 1]] {
            let sock = tokio::net::TcpSocket::new_v4().unwrap();
            sock.bind((std::net::Ipv4Addr::from(from), 0).into()).unwrap();
            let stream = sock.connect(([127, 0, 0, 1], node.rpc_port).into()).await.unwrap();
            let std = stream.into_std().unwrap();
            std.set_nonblocking(false).unwrap();
            let body = br#"{"jsonrpc":"2.0","id":1,"method":"atonomi_status","params":[]}"#;
            let req = format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let (status, _, text) = tokio::task::spawn_blocking(move || {
                use std::io::{Read, Write};
                let mut s = std;
                s.write_all(req.as_bytes()).unwrap();
                s.write_all(body).unwrap();
                let mut out = Vec::new();
                let _ = s.read_to_end(&mut out);
                let text = String::from_utf8_lossy(&out).into_owned();
                let status: u16 = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
                (status, (), text)
            })
            .await
            .unwrap();
            assert_eq!(status, 200, "HTTP from {from:?} while WebSockets are held: {text}");
        }
        let (mut tx, mut rx) = common::ws::connect(node.rpc_port, [127, 0, 0, 1])
            .await
            .expect("another address still gets a WebSocket");
        common::ws::send(&mut tx, r#"{"jsonrpc":"2.0","id":1,"method":"atonomi_status","params":[]}"#).await;
        assert!(common::ws::next(&mut rx, 10).await.unwrap().contains("result"));
        drop(held);
    });
}

/// An oversized body is refused with 413 however it is framed (the probe: a 3 MiB
/// chunked body got HTTP 500 -32603). Also: only `/metrics` itself is the metrics page.
#[test]
fn oversized_chunked_bodies_get_413_and_metrics_paths_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("home"), &[]);
    let payload = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"atonomi_sendTransaction","params":["{}"]}}"#,
        "00".repeat(3 << 19)
    );
    let mut req = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for chunk in payload.as_bytes().chunks(64 << 10) {
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let (status, _, body) = common::http_exchange(("127.0.0.1", node.rpc_port), &req);
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&body));
    let get = |path: &str| {
        common::http_exchange(
            ("127.0.0.1", node.metrics_port),
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .0
    };
    assert_eq!(get("/metrics"), 200);
    assert_eq!(get("/metricsXYZ"), 404);
    assert_eq!(get("/"), 404);
}

/// `/health` and `/ready` on the metrics port (issue 39, item 1): a running dev node is
/// healthy, naming each part it checks, and ready at its height with no peer ahead;
/// only GET is served; a malformed request line gets 400 and the port keeps serving;
/// past the connection bound a connection is closed and the port still serves.
#[test]
fn health_and_readiness_are_served_beside_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("home"), &[]);
    let addr = ("127.0.0.1", node.metrics_port);
    let get = |path: &str| {
        let (status, head, body) = common::http_exchange(
            addr,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        (status, head, String::from_utf8_lossy(&body).into_owned())
    };
    let (status, head, body) = get("/health");
    assert_eq!(status, 200, "{body}");
    assert!(
        head.to_ascii_lowercase().contains("application/json"),
        "{head}"
    );
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["healthy"], true, "{health}");
    for part in ["mempool", "rpc", "consensus"] {
        assert!(
            health["parts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p == part),
            "{part} is checked: {health}"
        );
    }
    let (status, _, body) = get("/ready");
    assert_eq!(status, 200, "{body}");
    let ready: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(ready["reasons"], json!([]), "{ready}");
    assert_eq!(ready["best_peer_height"], 0, "{ready}");
    assert!(ready["height"].as_u64().is_some(), "{ready}");
    let (status, _, _) = common::http_exchange(
        addr,
        b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 405);
    let (status, _, _) = common::http_exchange(addr, b"NOT HTTP AT ALL\r\n\r\n");
    assert_eq!(status, 400);
    // Past the bound: the extra connections are closed, the port serves again after.
    let held: Vec<_> = (0..80)
        .filter_map(|_| std::net::TcpStream::connect(addr).ok())
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let closed = held
        .iter()
        .filter(|s| {
            use std::io::Read;
            s.set_nonblocking(true).unwrap();
            matches!((&**s).read(&mut [0u8; 1]), Ok(0))
        })
        .count();
    assert!(
        closed >= 80 - 64,
        "{closed} of 80 held connections were closed"
    );
    drop(held);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(get("/ready").0, 200);
    let metrics = get("/metrics").2;
    assert!(metrics.contains("atonomi_best_peer_height 0"), "{metrics}");
}

fn dir_bytes(p: &std::path::Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let m = e.metadata().unwrap();
            total += if m.is_dir() {
                dir_bytes(&e.path())
            } else {
                m.len()
            };
        }
    }
    total
}

/// Sends a transfer and waits until it is final; the latency.
fn transfer_latency(
    node: &DevNode,
    key: &atonomi_primitives::Keypair,
    to: atonomi_primitives::AccountId,
) -> Duration {
    let nonce = node.rpc("atonomi_getAccount", json!([key.account()]))["next_nonce"]
        .as_u64()
        .unwrap();
    let start = Instant::now();
    let r = node.rpc(
        "atonomi_sendTransaction",
        json!([signed_transfer(key, nonce, to, 1)]),
    );
    let hash = r["hash"].as_str().unwrap().to_string();
    loop {
        let t = node
            .try_rpc("atonomi_getTransaction", json!([hash]))
            .unwrap();
        if t["result"]["status"] == "final" {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "an honest transfer never finalized"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Zero-fee admission: 10,000 fresh keys flood the node with free transactions while an
/// honest client transfers. The flood is refused by the admission policy before any
/// signature is verified; honest transfers stay final within their usual latency, and
/// the chain makes no extra blocks or disk growth for the flood.
#[test]
fn a_flood_from_fresh_keys_is_refused_and_honest_transfers_stay_fast() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let node = DevNode::start(&home, &[]);
    let alice = atonomi_genesis::dev::key("alice");
    let bob = atonomi_genesis::dev::key("bob").account();
    let baseline: Vec<Duration> = (0..5)
        .map(|_| transfer_latency(&node, &alice, bob))
        .collect();

    // 10,000 fresh keys, one free transfer of 0 each.
    let flood: Vec<String> = (0..10_000u32)
        .map(|i| {
            let k = atonomi_primitives::Keypair::from_label(&format!("flood {i}"));
            signed_transfer(&k, 0, bob, 0)
        })
        .collect();
    let height0 = node.height();
    let disk0 = dir_bytes(&home.join("data"));
    let rss0 = rss_kib(node.child.id());
    let port = node.rpc_port;
    let flooder = std::thread::spawn(move || {
        let mut codes = std::collections::BTreeMap::<i64, usize>::new();
        for batch in flood.chunks(500) {
            let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "atonomi_sendTransactionBatch", "params": [batch] });
            let (_, _, text) = common::http_post(("127.0.0.1", port), body.to_string().as_bytes());
            let v: serde_json::Value = serde_json::from_slice(&text).unwrap();
            for item in v["result"].as_array().unwrap() {
                *codes
                    .entry(item["error"]["code"].as_i64().unwrap_or(0))
                    .or_default() += 1;
            }
        }
        codes
    });
    let during: Vec<Duration> = (0..5)
        .map(|_| transfer_latency(&node, &alice, bob))
        .collect();
    let codes = flooder.join().unwrap();
    let blocks = node.height() - height0;
    let disk = dir_bytes(&home.join("data")).saturating_sub(disk0);
    let worst = |v: &[Duration]| v.iter().max().copied().unwrap();
    println!(
        "honest transfer latency: baseline worst {:?}, during the flood worst {:?}; {blocks} blocks, {disk} bytes of disk; RSS {rss0} -> {} KiB",
        worst(&baseline),
        worst(&during),
        rss_kib(node.child.id())
    );
    assert_eq!(
        codes,
        [(4005, 10_000)].into_iter().collect(),
        "every flood transaction is refused as not admitted"
    );
    assert_eq!(node.rpc("atonomi_status", json!([]))["mempool"], 0);
    // The honest transfers made their blocks; the flood made none (a heartbeat may add one).
    assert!(blocks <= 5 + 1, "{blocks} blocks for 5 honest transfers");
    assert!(
        disk < 4 << 20,
        "the flood grew the data directory by {disk} bytes"
    );
    assert!(
        worst(&during) <= worst(&baseline) * 3 + Duration::from_secs(1),
        "honest latency rose under the flood: {:?} -> {:?}",
        worst(&baseline),
        worst(&during)
    );
}

/// Sockets that open and say nothing cannot hold every pending inbound slot of the p2p
/// port (the probe: 40 silent sockets and a new connection was closed at once).
#[test]
fn silent_sockets_do_not_shut_out_inbound_peers() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let mut node = common::RunNode::create(dir.path(), 500, "");
    node.start();
    let p2p = node.p2p_port;
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", p2p)).is_err() {
        assert!(Instant::now() < deadline, "the node never listened on p2p");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // 40 silent sockets from 127.0.0.2.
    let _silent: Vec<tokio::net::TcpStream> = rt.block_on(async {
        let mut v = Vec::new();
        for _ in 0..40 {
            let sock = tokio::net::TcpSocket::new_v4().unwrap();
            sock.bind(([127, 0, 0, 2], 0).into()).unwrap();
            v.push(sock.connect(([127, 0, 0, 1], p2p).into()).await.unwrap());
        }
        v
    });
    std::thread::sleep(Duration::from_millis(300));
    // A peer from another address still gets the multistream-select answer.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", p2p)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.write_all(b"\x13/multistream/1.0.0\n").unwrap();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap_or(0);
    assert!(
        String::from_utf8_lossy(&buf[..n]).contains("/multistream/1.0.0"),
        "the new inbound connection was shut out: {:?}",
        &buf[..n]
    );
}

/// A port in use is a clear error and exit status 1: the node closes its store before
/// it exits (it used to abort in RocksDB, "pthread lock: Invalid argument", while the
/// metrics' samplers held the store open from the mempool's thread). Twice, for the
/// metrics port and for the RPC port, both bound after the store is open.
#[test]
fn a_port_in_use_is_a_clean_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let node = common::RunNode::create(dir.path(), 500, "");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    for flag in ["--metrics-addr", "--rpc-addr"] {
        let out = std::process::Command::new(common::BIN)
            .args(["run", "--home", node.home.to_str().unwrap(), flag, &addr])
            .env("ATONOMI_LOG", "warn")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{flag}: {stderr}");
        assert!(stderr.contains(&addr), "{flag}: {stderr}");
        assert!(!stderr.contains("pthread"), "{flag}: {stderr}");
    }
}
