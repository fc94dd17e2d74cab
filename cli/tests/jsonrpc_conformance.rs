//! JSON-RPC 2.0 conformance of a running node, over HTTP and over WebSocket alike:
//! every id the specification allows comes back verbatim, invalid requests get -32600
//! with a null id, notifications get no answer, and parameters are decoded strictly.
//! (The cases come from an outside probe; jsonrpsee alone fails most of them.)

use serde_json::{json, Value};

mod common;

use common::{http_post, ws, DevNode};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// What a client gets for `body`, over HTTP: (status, body text).
fn over_http(node: &DevNode, body: &str) -> (u16, String) {
    let (status, _, text) = http_post(("127.0.0.1", node.rpc_port), body.as_bytes());
    (status, String::from_utf8_lossy(&text).into_owned())
}

/// What a client gets for `body` over a WebSocket: the first message back, `None` when
/// nothing comes. A probe request sent right after tells "nothing" from "not yet": the
/// node answers calls concurrently, so an answer to `body` may follow the probe's, but
/// not by long.
fn over_ws(node: &DevNode, body: &str) -> Option<String> {
    rt().block_on(async {
        let (mut tx, mut rx) = ws::connect(node.rpc_port, [127, 0, 0, 1]).await.unwrap();
        ws::send(&mut tx, body).await;
        ws::send(
            &mut tx,
            r#"{"jsonrpc":"2.0","id":"probe","method":"atonomi_status","params":[]}"#,
        )
        .await;
        let mut answer = None;
        let mut probed = false;
        while answer.is_none() {
            let wait = if probed { 1 } else { 10 };
            let Some(m) = ws::next(&mut rx, wait).await else {
                assert!(probed, "the node answered nothing at all");
                break;
            };
            if m.contains(r#""id":"probe""#) {
                probed = true;
            } else {
                answer = Some(m);
            }
        }
        answer
    })
}

/// Both transports give the same answer for `body`; returns it (`None`: no answer).
fn answer(node: &DevNode, body: &str) -> Option<String> {
    let (status, http) = over_http(node, body);
    let ws = over_ws(node, body);
    if status == 204 {
        assert!(http.is_empty(), "204 with a body: {http}");
        assert_eq!(ws, None, "{body}: HTTP said nothing, WebSocket said {ws:?}");
        return None;
    }
    assert_eq!(status, 200, "{body}: HTTP {status} {http}");
    let ws = ws.unwrap_or_else(|| panic!("{body}: HTTP answered {http}, WebSocket nothing"));
    let norm = |s: &str| {
        serde_json::from_str::<Value>(s).map(|v| {
            // The status result differs by the instant; compare its shape.
            if v["result"].is_object() {
                json!({"id": v["id"], "result": "object"})
            } else {
                v
            }
        })
    };
    if let (Ok(a), Ok(b)) = (norm(&http), norm(&ws)) {
        assert_eq!(a, b, "{body}: HTTP and WebSocket disagree");
    }
    Some(http)
}

fn code(text: &str) -> i64 {
    let v: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    v["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("expected an error: {text}"))
}

#[test]
fn the_node_speaks_json_rpc_2_0_over_http_and_websocket() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("home"), &[]);

    // Any JSON number or string is an id, returned exactly as sent.
    for id in [
        "-1",
        "1.5",
        "18446744073709551616",
        "1e400",
        "\"a b\"",
        "0",
        "null",
    ] {
        let body =
            format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"atonomi_status","params":[]}}"#);
        let a = answer(&node, &body).unwrap_or_else(|| panic!("id {id}: no answer"));
        assert!(
            a.contains(&format!(r#""id":{id}"#)),
            "id {id} not returned verbatim: {a}"
        );
        assert!(a.contains(r#""result""#), "id {id}: {a}");
    }

    // Ids of other types, and valid JSON that is not a request: -32600 with a null id.
    for body in [
        r#"{"jsonrpc":"2.0","id":true,"method":"atonomi_status"}"#,
        r#"{"jsonrpc":"2.0","id":{"a":1},"method":"atonomi_status"}"#,
        r#"{"jsonrpc":"2.0","id":[1],"method":"atonomi_status"}"#,
        r#"{"foo":"boo"}"#,
        "1",
        "\"hello\"",
        "null",
        "[]",
    ] {
        let a = answer(&node, body).unwrap_or_else(|| panic!("{body}: no answer"));
        assert_eq!(code(&a), -32600, "{body}: {a}");
        let v: Value = serde_json::from_str(&a).unwrap();
        assert_eq!(v["id"], Value::Null, "{body}: {a}");
    }

    // Not JSON: -32700. Whitespace before a request is still a request.
    assert_eq!(
        code(&answer(&node, r#"{"jsonrpc":"2.0","#).unwrap()),
        -32700
    );
    let spaced = format!(
        "{}{}",
        " ".repeat(200),
        r#"{"jsonrpc":"2.0","id":3,"method":"atonomi_status","params":[]}"#
    );
    assert!(answer(&node, &spaced).unwrap().contains(r#""result""#));

    // Notifications are never answered: known, unknown, and a batch of them.
    for body in [
        r#"{"jsonrpc":"2.0","method":"atonomi_status","params":[]}"#,
        r#"{"jsonrpc":"2.0","method":"atonomi_noSuchMethod"}"#,
        r#"[{"jsonrpc":"2.0","method":"atonomi_status"},{"jsonrpc":"2.0","method":"x"}]"#,
    ] {
        assert_eq!(answer(&node, body), None, "{body} was answered");
    }

    // A mixed batch: answers in request order with the client's ids, the notification
    // left out, the invalid member answered -32600.
    let a = answer(
        &node,
        r#"[{"jsonrpc":"2.0","id":"x","method":"atonomi_status"},{"jsonrpc":"2.0","method":"atonomi_status"},5,{"jsonrpc":"2.0","id":-7,"method":"atonomi_noSuchMethod"}]"#,
    )
    .unwrap();
    let v: Vec<Value> = serde_json::from_str(&a).unwrap();
    assert_eq!(v.len(), 3, "{a}");
    assert_eq!(v[0]["id"], "x");
    assert_eq!(v[1]["error"]["code"], -32600);
    assert_eq!(
        (v[2]["id"].clone(), v[2]["error"]["code"].clone()),
        (json!(-7), json!(-32601))
    );

    // A subscription over HTTP says it needs a WebSocket.
    let (_, a) = over_http(
        &node,
        r#"{"jsonrpc":"2.0","id":1,"method":"atonomi_subscribeBlocks","params":[]}"#,
    );
    assert_eq!(code(&a), -32004, "{a}");
}

#[test]
fn parameters_are_decoded_strictly() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(&dir.path().join("home"), &[]);
    let call = |method: &str, params: Value| node.try_rpc(method, params).unwrap();
    for (method, params) in [
        ("atonomi_getEvidence", json!(["abc"])),
        ("atonomi_getEvidence", json!([-5])),
        ("atonomi_getLookupCounts", json!(["abc"])),
        ("atonomi_getLookupCounts", json!([{ "limit": 5 }])),
        ("atonomi_getLookupCounts", json!([0])),
        ("atonomi_getLookupCounts", json!([99999])),
        ("atonomi_status", json!([1])),
        ("atonomi_getBridgeStatus", json!(["x"])),
        ("atonomi_getProof", json!([])),
        ("atonomi_getProof", json!(["params", 0, 1])),
        (
            "atonomi_validateDevice",
            json!([{ "device": "00".repeat(32), "typo": 1 }]),
        ),
    ] {
        let v = call(method, params.clone());
        assert_eq!(v["error"]["code"], -32602, "{method} {params}: {v}");
    }
    // In range, or absent where optional: answered.
    assert!(call("atonomi_getLookupCounts", json!([5]))["result"].is_object());
    assert!(call("atonomi_getLookupCounts", json!([]))["result"].is_object());
    assert!(call("atonomi_getEvidence", json!([]))["result"].is_array());
    // getProof's height defaults to the latest, as documented.
    let p = call("atonomi_getProof", json!(["params"]));
    assert!(p["result"]["height"].is_u64(), "{p}");

    // A malformed event filter is refused, not widened to every event.
    rt().block_on(async {
        for filter in [json!({ "events": 5 }), json!({ "evnts": ["device_activated"] })] {
            let (mut tx, mut rx) = ws::connect(node.rpc_port, [127, 0, 0, 1]).await.unwrap();
            let req = json!({ "jsonrpc": "2.0", "id": 1, "method": "atonomi_subscribeEvents", "params": [filter] });
            ws::send(&mut tx, &req.to_string()).await;
            let a = ws::next(&mut rx, 10).await.unwrap();
            assert_eq!(code(&a), -32602, "{filter}: {a}");
        }
    });

    // Every method and unsubscribe method is in the served OpenRPC document.
    let doc = node.rpc("rpc.discover", json!([]));
    let names: Vec<&str> = doc["methods"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    for m in [
        "atonomi_unsubscribeBlocks",
        "atonomi_unsubscribeEvents",
        "atonomi_getEvidence",
    ] {
        assert!(names.contains(&m), "{m} is missing from rpc.discover");
    }
    // Every method refuses a malformed parameter at every position (an object with a
    // field no parameter has: not a number, not hex, not a known query; the ones
    // before it from the documented example) with -32602 and a message naming it,
    // never a default.
    let methods = doc["methods"].as_array().unwrap();
    let mut checked = 0;
    for m in methods {
        let name = m["name"].as_str().unwrap();
        let params = m["params"].as_array().cloned().unwrap_or_default();
        if params.is_empty() || name.contains("subscribe") {
            continue;
        }
        let example: Vec<Value> = m["examples"][0]["params"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} has no example"))
            .iter()
            .map(|p| p["value"].clone())
            .collect();
        for (i, p) in params.iter().enumerate() {
            let param = p["name"].as_str().unwrap();
            let mut args: Vec<Value> = example[..i].to_vec();
            args.push(json!({ "no_such_field": 1 }));
            let v = call(name, Value::Array(args.clone()));
            assert_eq!(
                v["error"]["code"], -32602,
                "{name} with a malformed {param}: {v}"
            );
            let message = v["error"]["message"].as_str().unwrap_or_default();
            assert!(
                message.contains(&format!("{param}: ")),
                "{name} {args:?}: the message does not name {param}: {v}"
            );
            checked += 1;
        }
        // The same by name: an unknown name is refused, naming it.
        let v = call(name, json!({ "no_such_param": 1 }));
        assert_eq!(v["error"]["code"], -32602, "{name} by an unknown name: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|t| t.contains("no_such_param")),
            "{name}: {v}"
        );
    }
    assert!(checked >= 24, "only {checked} parameters were checked");
    // Every method refuses parameters it does not take (too many, of any type) with
    // -32602; subscriptions say over HTTP that they need a WebSocket.
    for m in &names {
        let v = call(m, json!([1, 2, 3, 4, 5, 6, 7]));
        let want = if m.contains("subscribe") {
            -32004
        } else {
            -32602
        };
        assert_eq!(v["error"]["code"], want, "{m} with seven parameters: {v}");
    }
}
