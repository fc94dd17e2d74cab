//! Hostile JSON-RPC input against a running node: each gets a typed error, the node
//! keeps serving and its state does not change.

use serde_json::{json, Value};

mod common;

/// Raw POST; returns (HTTP status, body).
fn post(port: u16, body: &[u8]) -> (u16, String) {
    let (status, _, body) = common::http_post(("127.0.0.1", port), body);
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn call(port: u16, v: &Value) -> Value {
    let (_, body) = post(port, v.to_string().as_bytes());
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn status(port: u16) -> Value {
    call(
        port,
        &json!({ "jsonrpc": "2.0", "id": 1, "method": "atonomi_status", "params": [] }),
    )["result"]
        .clone()
}

fn call_code(body: &str) -> i64 {
    serde_json::from_str::<Value>(body).unwrap()["error"]["code"]
        .as_i64()
        .unwrap()
}

/// The error code of a response, or of the first element of a batch response.
fn code(v: &Value) -> i64 {
    let e = if v.is_array() {
        &v[0]["error"]
    } else {
        &v["error"]
    };
    e["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("expected an error: {v}"))
}

#[test]
fn hostile_requests_get_typed_errors_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = common::DevNode::start(&dir.path().join("home"), &[]);
    let port = node.rpc_port;
    let before = status(port);

    // (case, request body, expected JSON-RPC error code)
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let cases: Vec<(&str, Vec<u8>, i64)> = vec![
        ("not JSON", b"{\"jsonrpc\":".to_vec(), -32700),
        ("invalid UTF-8", vec![b'{', 0xff, 0xfe, b'}'], -32700),
        // Read as a batch of one invalid request.
        ("deep nesting", nested.into_bytes(), -32600),
        ("unknown method", json!({ "jsonrpc": "2.0", "id": 1, "method": "atonomi_mint", "params": [] }).to_string().into_bytes(), -32601),
        ("admin method (none are exposed)", json!({ "jsonrpc": "2.0", "id": 1, "method": "admin_peers", "params": [] }).to_string().into_bytes(), -32601),
        ("huge number", br#"{"jsonrpc":"2.0","id":1,"method":"atonomi_getBlock","params":[1e400]}"#.to_vec(), -32602),
        ("number beyond u64", br#"{"jsonrpc":"2.0","id":1,"method":"atonomi_getBlock","params":[123456789012345678901234567890]}"#.to_vec(), -32602),
        ("negative id", br#"{"jsonrpc":"2.0","id":1,"method":"atonomi_getManufacturer","params":[-1]}"#.to_vec(), -32602),
        ("wrong param type", json!({ "jsonrpc": "2.0", "id": 1, "method": "atonomi_getDevice", "params": [{"x": 1}] }).to_string().into_bytes(), -32602),
        ("account not hex", json!({ "jsonrpc": "2.0", "id": 1, "method": "atonomi_getAccount", "params": ["zz"] }).to_string().into_bytes(), -32602),
        ("transaction not hex", json!({ "jsonrpc": "2.0", "id": 1, "method": "atonomi_sendTransaction", "params": ["0xnothex"] }).to_string().into_bytes(), -32602),
        ("transaction garbage", json!({ "jsonrpc": "2.0", "id": 1, "method": "atonomi_sendTransaction", "params": ["deadbeef"] }).to_string().into_bytes(), 4001),
        ("missing params", json!({ "jsonrpc": "2.0", "id": 1, "method": "atonomi_getTransaction" }).to_string().into_bytes(), -32602),
    ];
    for (name, body, want) in cases {
        let (_, text) = post(port, &body);
        let v: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}: {text}"));
        assert_eq!(code(&v), want, "{name}: {v}");
    }

    // Batches: more than 100 calls are refused whole; a transaction batch answers per item.
    let big: Vec<Value> = (0..101)
        .map(|i| json!({ "jsonrpc": "2.0", "id": i, "method": "atonomi_status", "params": [] }))
        .collect();
    let (_, text) = post(port, Value::Array(big).to_string().as_bytes());
    assert!(
        text.contains("-32") || text.contains("limit"),
        "oversized batch: {text}"
    );
    let v = call(
        port,
        &json!({ "jsonrpc": "2.0", "id": 1, "method": "atonomi_sendTransactionBatch", "params": [["00", "zz", "ff"]] }),
    );
    let items = v["result"].as_array().unwrap_or_else(|| panic!("{v}"));
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["error"]["code"], 4001);
    assert_eq!(items[1]["error"]["code"], -32602);

    // A 6 MiB body is over the 2 MiB request limit: 413 (read and discarded up to
    // 16 MiB, so the answer reaches the client instead of a reset).
    let huge = json!({ "jsonrpc": "2.0", "id": 1, "method": "atonomi_sendTransaction", "params": ["00".repeat(3 << 20)] }).to_string();
    let (http, body) = post(port, huge.as_bytes());
    assert_eq!(http, 413, "oversized request: {body}");
    assert_eq!(call_code(&body), -32007);

    // Still serving, nothing changed.
    let after = status(port);
    assert_eq!(
        after["height"], before["height"],
        "no block was produced by garbage"
    );
    assert_eq!(after["state_root"], before["state_root"]);
    assert_eq!(after["mempool"], 0);
}
