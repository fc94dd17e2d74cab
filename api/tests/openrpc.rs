//! `docs/openrpc.json` is held to the interface as declared (`atonomi_api::rpc`): the
//! same methods, each parameter by name, position, type and whether it is required,
//! each result by type, each subscription with its notification and unsubscribe
//! method. Change the declaration and this fails until the document says the same.

use atonomi_api::rpc::declare::Kind;
use atonomi_api::rpc::METHODS;
use serde_json::Value;
use std::collections::BTreeMap;

fn document() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openrpc.json");
    let text = std::fs::read_to_string(path).expect("docs/openrpc.json");
    serde_json::from_str(&text).expect("docs/openrpc.json is JSON")
}

fn documented() -> BTreeMap<String, Value> {
    document()["methods"]
        .as_array()
        .expect("methods")
        .iter()
        .map(|m| (m["name"].as_str().expect("name").to_string(), m.clone()))
        .collect()
}

/// Whitespace-free, so that `Page < Manufacturer >` (as `stringify!` may space it)
/// and `Page<Manufacturer>` compare equal.
fn ty(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

#[test]
fn every_declared_method_is_documented_as_declared() {
    let doc = documented();
    let mut problems = Vec::new();
    // Admin methods are test-only and left out of the public document.
    for m in METHODS.iter().filter(|m| !m.name.starts_with("admin_")) {
        let Some(d) = doc.get(m.name) else {
            problems.push(format!("{}: not in docs/openrpc.json", m.name));
            continue;
        };
        let params = d["params"].as_array().cloned().unwrap_or_default();
        let names: Vec<&str> = params.iter().filter_map(|p| p["name"].as_str()).collect();
        let declared: Vec<&str> = m.params.iter().map(|p| p.name).collect();
        if names != declared {
            problems.push(format!(
                "{}: parameters {names:?}, declared {declared:?}",
                m.name
            ));
            continue;
        }
        for (p, dp) in m.params.iter().zip(&params) {
            let required = dp["required"].as_bool().unwrap_or(false);
            if required != p.required {
                problems.push(format!(
                    "{} {}: required is {required}, declared {}",
                    m.name, p.name, p.required
                ));
            }
            let doc_ty = dp["x-rust-type"].as_str().map(ty);
            if doc_ty.as_deref() != Some(ty(p.ty).as_str()) {
                problems.push(format!(
                    "{} {}: x-rust-type is {doc_ty:?}, declared {}",
                    m.name, p.name, p.ty
                ));
            }
        }
        let result = d["result"]["name"].as_str().map(ty);
        if result.as_deref() != Some(ty(m.result).as_str()) {
            problems.push(format!(
                "{}: result is {result:?}, declared {}",
                m.name, m.result
            ));
        }
        if let Kind::Subscription {
            notification,
            unsubscribe,
        } = m.kind
        {
            if d["x-notification"].as_str() != Some(notification) {
                problems.push(format!("{}: x-notification is not {notification}", m.name));
            }
            match doc.get(unsubscribe) {
                None => problems.push(format!("{unsubscribe}: not in docs/openrpc.json")),
                Some(u) => {
                    let p = &u["params"];
                    if p.as_array().map(Vec::len) != Some(1)
                        || p[0]["name"] != "subscription"
                        || p[0]["required"] != true
                    {
                        problems.push(format!("{unsubscribe}: takes one required subscription"));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Nothing is documented that is not declared (admin methods are served only when
/// enabled and are left out of the public document).
#[test]
fn nothing_undeclared_is_documented() {
    let mut declared: Vec<&str> = METHODS.iter().map(|m| m.name).collect();
    declared.extend(METHODS.iter().filter_map(|m| match m.kind {
        Kind::Subscription { unsubscribe, .. } => Some(unsubscribe),
        Kind::Call => None,
    }));
    let extra: Vec<String> = documented()
        .into_keys()
        .filter(|n| !declared.contains(&n.as_str()))
        .collect();
    assert!(extra.is_empty(), "documented, not declared: {extra:?}");
    assert!(
        METHODS.iter().any(|m| m.name.starts_with("admin_")),
        "the admin namespace is declared"
    );
}

/// Each documented example is valid for the declared types (the parameter check the
/// server runs accepts it), and each documented method with parameters has one.
#[test]
fn the_examples_fit_the_declaration() {
    let doc = documented();
    for m in METHODS.iter().filter(|m| !m.name.starts_with("admin_")) {
        let d = &doc[m.name];
        let examples = d["examples"].as_array().cloned().unwrap_or_default();
        if !m.params.is_empty() {
            assert!(!examples.is_empty(), "{}: no example", m.name);
        }
        for e in examples {
            let values: Vec<Value> = e["params"]
                .as_array()
                .expect("example params")
                .iter()
                .map(|p| p["value"].clone())
                .collect();
            let raw = serde_json::value::to_raw_value(&values).expect("raw");
            let checked = atonomi_api::rpc::check_params(m.name, Some(&raw));
            assert_eq!(checked, Some(Ok(())), "{} example {values:?}", m.name);
        }
    }
}
