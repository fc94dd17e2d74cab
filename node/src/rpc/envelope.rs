//! The JSON-RPC 2.0 envelope, checked before the method table sees a message.
//!
//! jsonrpsee's own parser takes ids it cannot represent (`-1`, `1.5`, `1e400`, numbers
//! beyond u64) for notifications and answers nothing, answers `-32700` for valid JSON
//! that is not a request, and replies to notifications. We serve it, so we own that:
//! [`prepare`] checks every request of a message against the specification, answers
//! the malformed ones itself, and forwards the rest with ids the library handles (a
//! per-connection counter); [`Envelope::finish`] puts the client's ids back — verbatim,
//! as the raw JSON they sent — and drops the answers to notifications.

use serde_json::value::RawValue;
use std::collections::BTreeMap;

pub const PARSE_ERROR: i32 = -32700;
pub const INVALID_REQUEST: i32 = -32600;
/// jsonrpsee's code for a batch over the limit, kept so clients see one code.
pub const TOO_BIG_BATCH: i32 = -32010;
/// A subscription asked for over HTTP.
pub const NEEDS_WEBSOCKET: i32 = atonomi_api::rpc::code::NEEDS_WEBSOCKET;
pub const INVALID_PARAMS: i32 = atonomi_api::rpc::code::INVALID_PARAMS;

/// What becomes of one request of a message.
#[derive(Debug)]
enum Entry {
    /// Answered here (an invalid request): the response object.
    Answered(String),
    /// Forwarded with internal id `internal`; `id` is the client's raw id, `None` for a
    /// notification (executed, never answered).
    Forwarded { internal: u64, id: Option<String> },
    /// A notification whose parameters do not fit the method: not run, not answered.
    Refused,
}

/// A prepared message: what to forward, and how to turn the answers back.
#[derive(Debug)]
pub struct Envelope {
    batch: bool,
    entries: Vec<Entry>,
}

/// The result of [`prepare`].
#[derive(Debug)]
pub enum Prepared {
    /// Nothing to forward; answer this.
    Answer(String),
    /// Nothing to forward and nothing to answer: notifications only, each refused for
    /// its parameters (JSON-RPC 2.0 answers no notification).
    Silent,
    /// Forward `body` to the method table; `envelope` finishes its answer.
    Forward { body: String, envelope: Envelope },
    /// Over HTTP, a message the method table handles exactly as the specification
    /// says (every member a call with a u64 or plain-string id and nothing else):
    /// forward `body` as it is and return the answer as it is.
    PassThrough { body: String },
}

pub fn error_object(id: Option<&str>, code: i32, message: &str) -> String {
    let message = serde_json::to_string(message).unwrap_or_else(|_| "\"error\"".into());
    format!(
        r#"{{"jsonrpc":"2.0","error":{{"code":{code},"message":{message}}},"id":{}}}"#,
        id.unwrap_or("null")
    )
}

/// Whether a raw JSON value is a valid request id (a string, a number or null).
fn valid_id(raw: &RawValue) -> bool {
    matches!(
        raw.get().as_bytes().first(),
        Some(b'"' | b'-' | b'0'..=b'9' | b'n')
    )
}

/// One request object, checked (`Err` from [`check_request`] is the error response
/// to send).
struct Checked<'a> {
    id: Option<&'a RawValue>,
    /// The method as sent (raw JSON string) and decoded.
    method: &'a RawValue,
    name: String,
    params: Option<&'a RawValue>,
    /// Nothing but `jsonrpc`, a plain id, `method` and `params`.
    plain: bool,
}

/// An id jsonrpsee returns exactly as sent: a u64 without leading zeros, or a string
/// without escapes.
fn plain_id(raw: &RawValue) -> bool {
    let t = raw.get();
    if let Some(inner) = t.strip_prefix('"') {
        return !inner.contains('\\');
    }
    (t == "0" || !t.starts_with('0'))
        && t.bytes().all(|b| b.is_ascii_digit())
        && t.parse::<u64>().is_ok()
}

fn check_request(raw: &RawValue) -> Result<Checked<'_>, String> {
    let invalid = |id: Option<&RawValue>, why: &str| {
        Err(error_object(
            id.filter(|i| valid_id(i)).map(RawValue::get),
            INVALID_REQUEST,
            &format!("Invalid request: {why}"),
        ))
    };
    if !raw.get().starts_with('{') {
        return invalid(None, "a request is a JSON object");
    }
    let Ok(fields) = serde_json::from_str::<BTreeMap<String, &RawValue>>(raw.get()) else {
        return invalid(None, "a request is a JSON object");
    };
    let id = fields.get("id").copied();
    if let Some(i) = id {
        if !valid_id(i) {
            return invalid(None, "the id must be a string, a number or null");
        }
    }
    match fields.get("jsonrpc") {
        Some(v) if serde_json::from_str::<String>(v.get()).is_ok_and(|s| s == "2.0") => {}
        _ => return invalid(id, "\"jsonrpc\" must be \"2.0\""),
    }
    let (method, name) = match fields.get("method") {
        Some(m) => match serde_json::from_str::<String>(m.get()) {
            Ok(name) => (*m, name),
            Err(_) => return invalid(id, "\"method\" must be a string"),
        },
        None => return invalid(id, "\"method\" must be a string"),
    };
    let params = fields.get("params").copied();
    if let Some(p) = params {
        if !(p.get().starts_with('[') || p.get().starts_with('{')) {
            return invalid(id, "\"params\" must be an array or an object");
        }
    }
    let plain = id.is_some_and(plain_id)
        && fields
            .keys()
            .all(|k| matches!(k.as_str(), "jsonrpc" | "id" | "method" | "params"));
    Ok(Checked {
        id,
        method,
        name,
        params,
        plain,
    })
}

/// Checks a message (one request or a batch) and prepares what to forward. Internal
/// ids come from `next_id`, which the caller keeps unique per connection.
pub fn prepare(body: &[u8], max_batch: usize, next_id: &mut u64, websocket: bool) -> Prepared {
    let parse_error = || Prepared::Answer(error_object(None, PARSE_ERROR, "Parse error"));
    let Ok(text) = std::str::from_utf8(body) else {
        return parse_error();
    };
    let Ok(top) = serde_json::from_str::<&RawValue>(text) else {
        return parse_error();
    };
    let (batch, items): (bool, Vec<&RawValue>) = if top.get().starts_with('[') {
        match serde_json::from_str::<Vec<&RawValue>>(top.get()) {
            Ok(items) => (true, items),
            Err(_) => return parse_error(),
        }
    } else {
        (false, vec![top])
    };
    if batch && items.is_empty() {
        return Prepared::Answer(error_object(
            None,
            INVALID_REQUEST,
            "Invalid request: an empty batch",
        ));
    }
    if items.len() > max_batch {
        return Prepared::Answer(error_object(
            None,
            TOO_BIG_BATCH,
            &format!("The batch request was too large: at most {max_batch} calls"),
        ));
    }
    let mut entries = Vec::with_capacity(items.len());
    let mut forward = Vec::with_capacity(items.len());
    // Whether the message may go to the method table untouched (HTTP only: over a
    // WebSocket, answers arrive out of order and are matched by internal id).
    let mut plain = !websocket;
    for raw in items {
        match check_request(raw) {
            Err(answer) => entries.push(Entry::Answered(answer)),
            Ok(r)
                if !websocket
                    && (r.name.starts_with("atonomi_subscribe")
                        || r.name.starts_with("atonomi_unsubscribe")) =>
            {
                entries.push(Entry::Answered(error_object(
                    r.id.map(RawValue::get),
                    NEEDS_WEBSOCKET,
                    "subscriptions need a WebSocket connection (ws://, the same address)",
                )));
            }
            Ok(Checked {
                id,
                method,
                name,
                params,
                plain: is_plain,
            }) => {
                // The declared parameters, checked here so that every method refuses a
                // malformed or extra one with a message naming it.
                if let Some(Err(why)) = atonomi_api::rpc::check_params(&name, params) {
                    entries.push(match id {
                        Some(id) => Entry::Answered(error_object(
                            Some(id.get()),
                            INVALID_PARAMS,
                            &format!("Invalid params of {name}: {why}"),
                        )),
                        None => Entry::Refused,
                    });
                    continue;
                }
                plain &= is_plain;
                let internal = *next_id;
                *next_id = next_id.wrapping_add(1);
                let params = params.map_or(String::new(), |p| format!(r#","params":{}"#, p.get()));
                forward.push(format!(
                    r#"{{"jsonrpc":"2.0","id":{internal},"method":{}{params}}}"#,
                    method.get()
                ));
                entries.push(Entry::Forwarded {
                    internal,
                    id: id.map(|i| i.get().to_string()),
                });
            }
        }
    }
    let envelope = Envelope { batch, entries };
    if forward.is_empty() {
        return match envelope.finish(&[]) {
            Some(answer) => Prepared::Answer(answer),
            None => Prepared::Silent,
        };
    }
    if plain
        && envelope
            .entries
            .iter()
            .all(|e| matches!(e, Entry::Forwarded { .. }))
    {
        return Prepared::PassThrough {
            body: top.get().to_string(),
        };
    }
    let body = if batch {
        format!("[{}]", forward.join(","))
    } else {
        forward.swap_remove(0)
    };
    Prepared::Forward { body, envelope }
}

/// The internal id of one response object from the method table.
pub fn response_id(raw: &RawValue) -> Option<u64> {
    let fields = serde_json::from_str::<BTreeMap<String, &RawValue>>(raw.get()).ok()?;
    serde_json::from_str::<u64>(fields.get("id")?.get()).ok()
}

/// Splits a message from the method table into its response objects (one, or a batch).
pub fn responses(text: &str) -> Vec<&RawValue> {
    match serde_json::from_str::<&RawValue>(text) {
        Ok(top) if top.get().starts_with('[') => {
            serde_json::from_str::<Vec<&RawValue>>(top.get()).unwrap_or_default()
        }
        Ok(top) => vec![top],
        Err(_) => Vec::new(),
    }
}

impl Envelope {
    /// The internal ids this message forwarded.
    pub fn internal_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.entries.iter().filter_map(|e| match e {
            Entry::Forwarded { internal, .. } => Some(*internal),
            Entry::Answered(_) | Entry::Refused => None,
        })
    }

    /// The client's answer from the method table's `responses`: each with the client's
    /// id, in request order, notifications left out. `None`: nothing to send (a
    /// notification, or a batch of them).
    pub fn finish(&self, responses: &[&RawValue]) -> Option<String> {
        let by_id: BTreeMap<u64, &RawValue> = responses
            .iter()
            .filter_map(|r| Some((response_id(r)?, *r)))
            .collect();
        let mut out = Vec::new();
        for e in &self.entries {
            match e {
                Entry::Answered(a) => out.push(a.clone()),
                Entry::Forwarded { id: None, .. } | Entry::Refused => {}
                Entry::Forwarded {
                    internal,
                    id: Some(id),
                } => {
                    let answer = by_id
                        .get(internal)
                        .and_then(|r| with_id(r, id))
                        .unwrap_or_else(|| {
                            error_object(Some(id), -32603, "Internal error: no answer")
                        });
                    out.push(answer);
                }
            }
        }
        match (self.batch, out.len()) {
            (_, 0) => None,
            (true, _) => Some(format!("[{}]", out.join(","))),
            (false, _) => out.pop(),
        }
    }
}

/// A response object with its id replaced by the client's raw id.
fn with_id(response: &RawValue, id: &str) -> Option<String> {
    let mut fields = serde_json::from_str::<BTreeMap<String, &RawValue>>(response.get()).ok()?;
    let id = RawValue::from_string(id.to_string()).ok()?;
    fields.insert("id".into(), &id);
    serde_json::to_string(&fields).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn answer(body: &str) -> Value {
        let mut n = 0;
        match prepare(body.as_bytes(), 100, &mut n, false) {
            Prepared::Answer(a) => serde_json::from_str(&a).unwrap(),
            Prepared::Forward { body, .. } | Prepared::PassThrough { body } => {
                panic!("forwarded {body}")
            }
            Prepared::Silent => panic!("no answer"),
        }
    }

    /// A declared method's parameters are checked here: a malformed, missing or extra
    /// one is answered with -32602 naming it; a notification with one is neither run
    /// nor answered; good calls beside it in a batch still go through.
    #[test]
    fn declared_parameters_are_checked_before_forwarding() {
        let a = answer(r#"{"jsonrpc":"2.0","id":3,"method":"atonomi_getAccount","params":["zz"]}"#);
        assert_eq!(a["error"]["code"], INVALID_PARAMS, "{a}");
        assert!(
            a["error"]["message"]
                .as_str()
                .unwrap()
                .contains("account: "),
            "{a}"
        );
        assert_eq!(a["id"], 3);
        let a = answer(r#"{"jsonrpc":"2.0","id":4,"method":"atonomi_getAccount"}"#);
        assert!(
            a["error"]["message"]
                .as_str()
                .unwrap()
                .contains("account is required"),
            "{a}"
        );
        let a = answer(r#"{"jsonrpc":"2.0","id":5,"method":"atonomi_status","params":[1]}"#);
        assert_eq!(a["error"]["code"], INVALID_PARAMS, "{a}");
        let mut n = 0;
        let quiet = r#"{"jsonrpc":"2.0","method":"atonomi_getBlock","params":[{"x":1}]}"#;
        assert!(matches!(
            prepare(quiet.as_bytes(), 100, &mut n, false),
            Prepared::Silent
        ));
        let mixed = format!(
            r#"[{quiet},{{"jsonrpc":"2.0","id":1,"method":"atonomi_getBlock","params":[2]}},{{"jsonrpc":"2.0","id":2,"method":"atonomi_getBlock","params":[-2]}}]"#
        );
        let Prepared::Forward { body, envelope } = prepare(mixed.as_bytes(), 100, &mut n, false)
        else {
            panic!("the good call was not forwarded");
        };
        let fwd: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(fwd.as_array().unwrap().len(), 1, "{fwd}");
        assert_eq!(envelope.internal_ids().count(), 1);
        // Methods not declared here (jsonrpsee answers -32601) are forwarded untouched.
        let other = r#"{"jsonrpc":"2.0","id":1,"method":"no_such","params":[1,2,3]}"#;
        assert!(!matches!(
            prepare(other.as_bytes(), 100, &mut n, false),
            Prepared::Answer(_)
        ));
    }

    /// Forwards, answers each forwarded call with `{"result": <internal id>}` and
    /// returns what the client gets.
    fn round_trip(body: &str) -> Option<Value> {
        let mut n = 7;
        let Prepared::Forward { body, envelope } = prepare(body.as_bytes(), 100, &mut n, true)
        else {
            panic!("answered directly");
        };
        let fwd: Value = serde_json::from_str(&body).unwrap();
        let calls = if fwd.is_array() {
            fwd.as_array().unwrap().clone()
        } else {
            vec![fwd]
        };
        let replies: Vec<String> = calls
            .iter()
            .map(|c| {
                assert!(c["id"].is_u64(), "internal ids are numbers: {c}");
                format!(
                    r#"{{"jsonrpc":"2.0","result":{},"id":{}}}"#,
                    c["id"], c["id"]
                )
            })
            .collect();
        let raws: Vec<Box<RawValue>> = replies
            .into_iter()
            .map(|r| RawValue::from_string(r).unwrap())
            .collect();
        let refs: Vec<&RawValue> = raws.iter().map(|r| r.as_ref()).collect();
        envelope.finish(&refs).map(|s| {
            // Raw ids like 1e400 do not fit serde_json's numbers; compare as text.
            serde_json::from_str(&s).unwrap_or(Value::String(s))
        })
    }

    #[test]
    fn any_json_number_or_string_is_an_id_and_comes_back_verbatim() {
        for id in ["-1", "1.5", "18446744073709551616", "\"x\"", "null", "0"] {
            let out = round_trip(&format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":"m","params":[]}}"#
            ))
            .unwrap();
            let want: Value = serde_json::from_str(id).unwrap();
            assert_eq!(out["id"], want, "{id}");
            assert_eq!(out["result"], 7);
        }
        let out = round_trip(r#"{"jsonrpc":"2.0","id":1e400,"method":"m"}"#).unwrap();
        assert!(out.as_str().unwrap().contains(r#""id":1e400"#), "{out}");
    }

    #[test]
    fn invalid_ids_and_non_requests_get_invalid_request_with_a_null_id() {
        for body in [
            r#"{"jsonrpc":"2.0","id":true,"method":"m"}"#,
            r#"{"jsonrpc":"2.0","id":{"a":1},"method":"m"}"#,
            r#"{"jsonrpc":"2.0","id":[1],"method":"m"}"#,
            r#"{"foo":"boo"}"#,
            "1",
            "\"hello\"",
            "null",
            "[]",
        ] {
            let a = answer(body);
            assert_eq!(a["error"]["code"], INVALID_REQUEST, "{body}: {a}");
            assert_eq!(a["id"], Value::Null, "{body}");
        }
        let a = answer(r#"{"jsonrpc":"1.0","id":5,"method":"m"}"#);
        assert_eq!(a["error"]["code"], INVALID_REQUEST);
        assert_eq!(a["id"], 5, "a valid id is kept in the error");
        let a = answer(r#"{"jsonrpc":"2.0","id":5,"method":"m","params":3}"#);
        assert_eq!(a["error"]["code"], INVALID_REQUEST);
        let a = answer(r#"{"jsonrpc":"2.0","id":5,"method":"atonomi_subscribeBlocks"}"#);
        assert_eq!(a["error"]["code"], NEEDS_WEBSOCKET, "over HTTP");
        assert_eq!(a["id"], 5);
    }

    #[test]
    fn plain_calls_over_http_pass_through_untouched() {
        let mut n = 0;
        for body in [
            r#"  {"jsonrpc":"2.0","id":7,"method":"m","params":[]}"#,
            r#"[{"jsonrpc":"2.0","id":"a","method":"m"},{"jsonrpc":"2.0","id":0,"method":"m"}]"#,
        ] {
            match prepare(body.as_bytes(), 100, &mut n, false) {
                Prepared::PassThrough { body: b } => assert_eq!(b, body.trim()),
                other => panic!("{body}: {other:?}"),
            }
        }
        for body in [
            r#"{"jsonrpc":"2.0","id":-1,"method":"m"}"#,
            r#"{"jsonrpc":"2.0","id":007,"method":"m"}"#,
            r#"{"jsonrpc":"2.0","id":"a\u0041","method":"m"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"m","extra":1}"#,
            r#"[{"jsonrpc":"2.0","id":1,"method":"m"},{"jsonrpc":"2.0","method":"n"}]"#,
        ] {
            assert!(
                !matches!(
                    prepare(body.as_bytes(), 100, &mut n, false),
                    Prepared::PassThrough { .. }
                ),
                "{body} needs the envelope"
            );
        }
        let plain = r#"{"jsonrpc":"2.0","id":7,"method":"m"}"#;
        assert!(
            matches!(
                prepare(plain.as_bytes(), 100, &mut n, true),
                Prepared::Forward { .. }
            ),
            "never over a WebSocket"
        );
    }

    #[test]
    fn parse_errors_and_leading_whitespace() {
        assert_eq!(answer("{\"jsonrpc\":")["error"]["code"], PARSE_ERROR);
        assert_eq!(answer("[1,")["error"]["code"], PARSE_ERROR);
        let spaced = format!(
            "{}{}",
            " ".repeat(200),
            r#"{"jsonrpc":"2.0","id":1,"method":"m"}"#
        );
        assert_eq!(round_trip(&spaced).unwrap()["id"], 1);
    }

    #[test]
    fn notifications_get_no_answer_and_batches_keep_order() {
        assert_eq!(round_trip(r#"{"jsonrpc":"2.0","method":"m"}"#), None);
        assert_eq!(
            round_trip(r#"[{"jsonrpc":"2.0","method":"m"},{"jsonrpc":"2.0","method":"x"}]"#),
            None
        );
        let out = round_trip(
            r#"[{"jsonrpc":"2.0","id":"a","method":"m"},{"jsonrpc":"2.0","method":"n"},1,{"jsonrpc":"2.0","id":-2,"method":"m"}]"#,
        )
        .unwrap();
        let out = out.as_array().unwrap();
        assert_eq!(out.len(), 3, "the notification is not answered: {out:?}");
        assert_eq!(out[0]["id"], "a");
        assert_eq!(out[1]["error"]["code"], INVALID_REQUEST);
        assert_eq!(out[2]["id"], -2);
        let mut n = 0;
        let big = format!(
            "[{}]",
            vec![r#"{"jsonrpc":"2.0","id":1,"method":"m"}"#; 101].join(",")
        );
        match prepare(big.as_bytes(), 100, &mut n, true) {
            Prepared::Answer(a) => assert!(a.contains(&TOO_BIG_BATCH.to_string())),
            Prepared::Forward { .. } | Prepared::PassThrough { .. } | Prepared::Silent => {
                panic!("an oversized batch was forwarded")
            }
        }
    }
}
