//! Helpers shared by the process-level tests: the `atonomi` binary, free ports and its
//! JSON output.
#![allow(dead_code)]

pub mod testnet;

use serde_json::Value;
use std::net::TcpListener;
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_atonomi");

/// A port free for a node of this test to listen on. Ports come from below the
/// kernel's ephemeral range (read from /proc; 32768 by default): a port that bind(0)
/// handed out is released before the node binds it, and in between an outgoing
/// connection of any test may take it as its source port (seen: a cluster validator
/// refused to start with "Address already in use", and the test waited 120 s for a
/// quorum it could not have). Each test process walks its own sequence (seeded by its
/// pid) and checks each port binds; without a usable range, bind(0) as before.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(0);
    let low = 10_000;
    if ephemeral_low >= low + 2_000 {
        let span = ephemeral_low - low;
        let seed = std::process::id().wrapping_mul(2_654_435_761);
        for _ in 0..2_000 {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let port = low + seed.wrapping_add(n.wrapping_mul(7_919)) % span;
            if let Ok(l) = TcpListener::bind(("127.0.0.1", port as u16)) {
                drop(l);
                return port as u16;
            }
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs the first sh block under README's `heading` as it stands: bash -euo pipefail
/// in `dir`, with `A` set to this build's binary and `env` added, for at most 5
/// minutes; a background job it started is killed when it ends. Panics with its output when a command fails;
/// returns its stdout.
pub fn run_readme_block(heading: &str, dir: &std::path::Path, env: &[(&str, String)]) -> String {
    run_doc_block("README.md", heading, dir, env)
}

/// [`run_readme_block`] for another document of the repository (`docs/operators.md`).
pub fn run_doc_block(
    doc: &str,
    heading: &str,
    dir: &std::path::Path,
    env: &[(&str, String)],
) -> String {
    if Command::new("jq").arg("--version").output().is_err() {
        panic!("jq is needed by the docs' walkthroughs: scripts/test.sh installs it (apt-get install jq)");
    }
    let path = format!("{}/../{doc}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let section = &text[text
        .find(heading)
        .unwrap_or_else(|| panic!("{doc} has no {heading}"))..];
    let start = section.find("```sh\n").expect("its sh block") + "```sh\n".len();
    let block = &section[start..start + section[start..].find("```").unwrap()];
    // At most 5 minutes: a walkthrough that waits for a height that never comes fails
    // instead of hanging the suite; its node goes with it (the EXIT trap).
    let script =
        format!("trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\ntrap 'exit 124' TERM\n{block}");
    let out = Command::new("timeout")
        .args(["300", "bash", "-euo", "pipefail", "-c", &script])
        .current_dir(dir)
        .env("A", BIN)
        .env("ATONOMI_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{doc}'s {heading} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Runs `atonomi ARGS` to completion (warnings only on stderr).
pub fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("ATONOMI_LOG", "warn")
        .output()
        .unwrap()
}

/// The JSON a successful command printed, or its stderr.
pub fn json_out(o: &Output) -> Result<Value, String> {
    if !o.status.success() {
        return Err(String::from_utf8_lossy(&o.stderr).into_owned());
    }
    serde_json::from_slice(&o.stdout)
        .map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

/// A dev node (`atonomi dev`) on free loopback ports, killed when dropped.
pub struct DevNode {
    pub child: std::process::Child,
    pub rpc_port: u16,
    pub metrics_port: u16,
}

impl Drop for DevNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl DevNode {
    /// Starts a dev node with its home in `home` and waits until it answers.
    pub fn start(home: &std::path::Path, extra: &[&str]) -> DevNode {
        let (rpc_port, metrics_port) = (free_port(), free_port());
        let mut args = vec![
            "dev".to_string(),
            "--home".into(),
            home.to_str().unwrap().into(),
            "--rpc-addr".into(),
            format!("127.0.0.1:{rpc_port}"),
            "--metrics-addr".into(),
            format!("127.0.0.1:{metrics_port}"),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = Command::new(BIN)
            .args(&args)
            .env("ATONOMI_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let node = DevNode {
            child,
            rpc_port,
            metrics_port,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", rpc_port)).is_ok() {
                if let Ok(v) = node.try_rpc("atonomi_status", serde_json::json!([])) {
                    if v["result"]["chain_id"] == "atonomi-dev" {
                        return node;
                    }
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("the dev node did not answer on port {rpc_port}");
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.rpc_port)
    }

    /// One JSON-RPC call over a fresh HTTP connection; the whole response object.
    pub fn try_rpc(&self, method: &str, params: Value) -> Result<Value, String> {
        rpc_call(self.rpc_port, method, params)
    }

    /// The `result` of a call, panicking with the error otherwise.
    pub fn rpc(&self, method: &str, params: Value) -> Value {
        let v = self.try_rpc(method, params).unwrap();
        match v.get("result") {
            Some(r) => r.clone(),
            None => panic!("{method}: {v}"),
        }
    }

    pub fn height(&self) -> u64 {
        self.rpc("atonomi_status", serde_json::json!([]))["height"]
            .as_u64()
            .unwrap()
    }
}

/// One JSON-RPC call to the node on loopback `port` over a fresh HTTP connection; the
/// whole response object.
pub fn rpc_call(port: u16, method: &str, params: Value) -> Result<Value, String> {
    rpc_at(&format!("127.0.0.1:{port}"), method, params)
}

/// [`rpc_call`] to any `HOST:PORT`; an error while nothing listens there.
pub fn rpc_at(addr: &str, method: &str, params: Value) -> Result<Value, String> {
    std::net::TcpStream::connect(addr).map_err(|e| format!("{addr}: {e}"))?;
    let body = serde_json::json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
    let (status, _, text) = http_post(addr, body.to_string().as_bytes());
    serde_json::from_slice(&text)
        .map_err(|e| format!("HTTP {status}: {e}: {}", String::from_utf8_lossy(&text)))
}

/// A raw HTTP/1.1 exchange on a new connection (`Connection: close`): the status, the
/// head and the body as sent (a chunked body is not decoded).
pub fn http_exchange(addr: impl std::net::ToSocketAddrs, request: &[u8]) -> (u16, String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    // The server may answer (413) before reading all of an oversized body.
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(out.len());
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let body = out.get(split + 4..).unwrap_or_default().to_vec();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head, body)
}

/// POSTs a JSON body with a Content-Length.
pub fn http_post(addr: impl std::net::ToSocketAddrs, body: &[u8]) -> (u16, String, Vec<u8>) {
    let mut req = format!("POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).into_bytes();
    req.extend_from_slice(body);
    http_exchange(addr, &req)
}

/// A signed transfer's bytes as hex, for `atonomi_sendTransaction` on the dev chain.
pub fn signed_transfer(
    key: &atonomi_primitives::Keypair,
    nonce: u64,
    to: atonomi_primitives::AccountId,
    amount: u128,
) -> String {
    hex::encode(signed_transfer_on("atonomi-dev", key, nonce, to, amount))
}

/// A signed transfer's bytes on chain `chain`.
pub fn signed_transfer_on(
    chain: &str,
    key: &atonomi_primitives::Keypair,
    nonce: u64,
    to: atonomi_primitives::AccountId,
    amount: u128,
) -> Vec<u8> {
    use atonomi_primitives::tx::Call;
    use atonomi_primitives::{Amount, ChainId, Transaction};
    Transaction {
        chain_id: ChainId::new(chain).unwrap(),
        signer: key.account(),
        nonce,
        max_fee: None,
        call: Call::Transfer {
            to,
            amount: Amount::new(amount),
        },
    }
    .sign(key)
    .to_bytes()
}

/// A WebSocket client (soketto over tokio) for the process tests.
pub mod ws {
    use tokio::net::TcpSocket;
    use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

    pub type Sender = soketto::Sender<Compat<tokio::net::TcpStream>>;
    pub type Receiver = soketto::Receiver<Compat<tokio::net::TcpStream>>;

    /// Opens a WebSocket to `127.0.0.1:port` from the local address `from` (any
    /// 127.x.y.z works on Linux: a distinct client address without a network).
    /// `Err` carries the server's refusal.
    pub async fn connect(port: u16, from: [u8; 4]) -> Result<(Sender, Receiver), String> {
        let sock = TcpSocket::new_v4().map_err(|e| e.to_string())?;
        sock.bind((std::net::Ipv4Addr::from(from), 0).into())
            .map_err(|e| e.to_string())?;
        let stream = sock
            .connect(([127, 0, 0, 1], port).into())
            .await
            .map_err(|e| e.to_string())?;
        let mut client = soketto::handshake::Client::new(stream.compat(), "127.0.0.1", "/");
        match client.handshake().await.map_err(|e| e.to_string())? {
            soketto::handshake::ServerResponse::Accepted { .. } => {}
            other => return Err(format!("{other:?}")),
        }
        Ok(client.into_builder().finish())
    }

    /// The next text message, or `None` after `secs` seconds of silence.
    pub async fn next(rx: &mut Receiver, secs: u64) -> Option<String> {
        let mut buf = Vec::new();
        match tokio::time::timeout(
            std::time::Duration::from_secs(secs),
            rx.receive_data(&mut buf),
        )
        .await
        {
            Ok(Ok(_)) => Some(String::from_utf8_lossy(&buf).into_owned()),
            _ => None,
        }
    }

    pub async fn send(tx: &mut Sender, text: &str) {
        tx.send_text(text).await.unwrap();
        tx.flush().await.unwrap();
    }
}

/// A child process killed (and reaped) when dropped.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A one-validator chain run by `atonomi run` (not `dev`): `init`, `genesis new` with
/// that validator, and a config.toml on free loopback ports with `extra` appended
/// (more sections, e.g. `[storage]`). The heartbeat and propose timeout come first,
/// as `[consensus]`.
pub struct RunNode {
    pub home: std::path::PathBuf,
    pub rpc_port: u16,
    pub p2p_port: u16,
    pub child: Option<Killed>,
}

impl RunNode {
    pub fn create(dir: &std::path::Path, heartbeat_ms: u64, extra: &str) -> RunNode {
        let home = dir.join("v");
        let v = json_out(&run(&["init", "--home", home.to_str().unwrap()])).unwrap();
        let genesis = dir.join("genesis.json");
        let validator = format!(
            "{},{}",
            v["account"].as_str().unwrap(),
            v["peer_id_hex"].as_str().unwrap()
        );
        let out = run(&[
            "genesis",
            "new",
            "--out",
            genesis.to_str().unwrap(),
            "--validator",
            &validator,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::copy(&genesis, home.join("genesis.json")).unwrap();
        let (rpc_port, p2p_port) = (free_port(), free_port());
        std::fs::write(
            home.join("config.toml"),
            format!("genesis = \"genesis.json\"\nvalidator_key = \"keys/validator.json\"\n[rpc]\naddr = \"127.0.0.1:{rpc_port}\"\n[p2p]\nlisten = \"/ip4/127.0.0.1/tcp/{p2p_port}\"\npeers = []\nnode_key = \"keys/node.json\"\n[consensus]\nheartbeat_ms = {heartbeat_ms}\npropose_timeout_ms = 2000\n{extra}"),
        )
        .unwrap();
        RunNode {
            home,
            rpc_port,
            p2p_port,
            child: None,
        }
    }

    /// Starts (or restarts) the node and waits until its RPC answers.
    pub fn start(&mut self) {
        self.start_with(&[]);
    }

    /// [`RunNode::start`] with more arguments for `atonomi run`.
    pub fn start_with(&mut self, args: &[&str]) {
        let child = Command::new(BIN)
            .args(["run", "--home", self.home.to_str().unwrap()])
            .args(args)
            .env("ATONOMI_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(Killed(child));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while self
            .try_rpc("atonomi_status", serde_json::json!([]))
            .is_err()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the node never answered on port {}",
                self.rpc_port
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        if let Some(mut k) = self.child.take() {
            let _ = k.0.kill();
            let _ = k.0.wait();
        }
    }

    /// [`rpc_call`], or an error while nothing listens (the node is starting or killed).
    pub fn try_rpc(&self, method: &str, params: Value) -> Result<Value, String> {
        std::net::TcpStream::connect(("127.0.0.1", self.rpc_port)).map_err(|e| e.to_string())?;
        rpc_call(self.rpc_port, method, params)
    }

    pub fn height(&self) -> u64 {
        self.try_rpc("atonomi_status", serde_json::json!([]))
            .ok()
            .and_then(|v| v["result"]["height"].as_u64())
            .unwrap_or(0)
    }
}
