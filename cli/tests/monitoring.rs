//! The dashboard (`docs/grafana/atonomi.json`) and the alerting rules
//! (`docs/prometheus/alerts.yml`) against a real Prometheus (Debian's `prometheus`
//! package; `scripts/test.sh` installs it) scraping a 4-validator testnet under load.
//! This is what keeps them true as the node's metrics change.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::testnet::*;
use common::{free_port, http_exchange, Killed as Proc};

/// `name` on the PATH.
fn tool(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!("{name} not found: this test needs Debian's prometheus package (scripts/test.sh installs it)")
        })
}

fn docs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs")
}

/// Every `expr` of the dashboard's panels, with Grafana's variables replaced by what
/// Prometheus understands (all nodes; a 30 s rate window).
fn dashboard_exprs(dashboard: &Value) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(e)) = m.get("expr") {
                    out.push(
                        e.replace("$__rate_interval", "30s")
                            .replace("$instance", ".+"),
                    );
                }
                m.values().for_each(|v| walk(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// Every `expr:` of the rules file (each on one line, as the file's header asks).
fn alert_exprs(rules: &str) -> Vec<String> {
    rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr:"))
        .map(|e| {
            let e = e.trim();
            assert!(
                !e.is_empty() && !e.starts_with('|') && !e.starts_with('>'),
                "an alert's expr must stay on its line: {e:?}"
            );
            e.to_string()
        })
        .collect()
}

/// The metric names an expression reads.
fn metric_names(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("atonomi_"))
        .map(str::to_string)
        .collect()
}

/// Whether a metric family of the node's `/metrics` is read by one of `names`
/// (a counter as `_total`, a histogram as `_bucket`, `_sum` or `_count`).
fn covered(family: &str, names: &[String]) -> bool {
    names.iter().any(|n| {
        n == family
            || n.strip_prefix(family)
                .and_then(|rest| rest.strip_prefix('_'))
                .is_some_and(|s| ["total", "bucket", "sum", "count"].contains(&s))
    })
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Prometheus's HTTP API: an instant query's answer.
fn query(port: u16, promql: &str) -> Value {
    let body = format!("query={}", form_encode(promql));
    // HTTP/1.0: the answer comes whole (never chunked) and the connection closes.
    let req = format!(
        "POST /api/v1/query HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    if let Err(e) = std::net::TcpStream::connect(("127.0.0.1", port)) {
        return json!({"status": "unreachable", "error": e.to_string()});
    }
    let (_, _, answer) = http_exchange(("127.0.0.1", port), req.as_bytes());
    serde_json::from_slice(&answer).unwrap_or_else(|e| {
        json!({"status": "unreadable", "error": format!("{e}: {}", String::from_utf8_lossy(&answer))})
    })
}

fn get(port: u16, path: &str) -> Value {
    let req = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    let (_, _, answer) = http_exchange(("127.0.0.1", port), req.as_bytes());
    serde_json::from_slice(&answer).unwrap_or(Value::Null)
}

/// How many series an instant query returned, or why it failed.
fn series(port: u16, promql: &str) -> Result<usize, String> {
    let a = query(port, promql);
    if a["status"] != "success" {
        return Err(format!("{promql}: {a}"));
    }
    Ok(a["data"]["result"].as_array().map_or(0, Vec::len))
}

#[test]
fn a_real_prometheus_finds_every_series_the_dashboard_and_the_alerts_use() {
    let (prometheus, promtool) = (tool("prometheus"), tool("promtool"));
    let rules_path = docs().join("prometheus/alerts.yml");
    let check = Command::new(&promtool)
        .args(["check", "rules"])
        .arg(&rules_path)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(docs().join("grafana/atonomi.json")).unwrap(),
    )
    .expect("docs/grafana/atonomi.json is JSON");
    let panel_exprs = dashboard_exprs(&dashboard);
    let alerts = alert_exprs(&std::fs::read_to_string(&rules_path).unwrap());
    assert!(panel_exprs.len() >= 20, "{panel_exprs:?}");
    assert!(alerts.len() >= 5, "{alerts:?}");

    // Four validators under transfer load, each serving metrics.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let vals = network(d, 4);
    let metrics_ports: Vec<u16> = vals.iter().map(|_| free_port()).collect();
    let _procs: Vec<Proc> = vals
        .iter()
        .zip(&metrics_ports)
        .map(|(v, port)| start_with(v, &["--metrics-addr", &format!("127.0.0.1:{port}")]))
        .collect();
    let refs: Vec<&NodeDir> = vals.iter().collect();
    wait_height(&refs, 2, 120);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = transfer_load(vals.iter().map(|v| v.rpc).collect(), stop.clone());

    // Prometheus scrapes every node each second and evaluates the rules.
    let prom_port = free_port();
    let targets: Vec<String> = metrics_ports
        .iter()
        .map(|p| format!("\"127.0.0.1:{p}\""))
        .collect();
    let config = d.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - \"{}\"\nscrape_configs:\n  - job_name: atonomi\n    static_configs:\n      - targets: [{}]\n",
            rules_path.display(),
            targets.join(", ")
        ),
    )
    .unwrap();
    let prom_log = std::fs::File::create(d.join("prometheus.log")).unwrap();
    let _prom = Proc(
        Command::new(&prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", d.join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(prom_log)
            .spawn()
            .unwrap(),
    );
    let prom_log = || std::fs::read_to_string(d.join("prometheus.log")).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let up = query(prom_port, "sum(up{job=\"atonomi\"})");
        if up["data"]["result"][0]["value"][1] == "4" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never scraped all four nodes: {up}\n{}",
            prom_log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // Enough samples for the dashboard's 30 s rates, under load.
    std::thread::sleep(Duration::from_secs(20));

    let mut missing: Vec<String> = Vec::new();
    for e in &panel_exprs {
        match series(prom_port, e) {
            Ok(0) => missing.push(format!("dashboard: no series for {e}")),
            Ok(_) => {}
            Err(why) => missing.push(format!("dashboard: {why}")),
        }
    }
    // An alert's expression is empty while all is well: it must be valid, and each
    // metric it reads must have series.
    for e in &alerts {
        if let Err(why) = series(prom_port, e) {
            missing.push(format!("alert: {why}"));
        }
    }
    let mut names: Vec<String> = panel_exprs
        .iter()
        .chain(&alerts)
        .flat_map(|e| metric_names(e))
        .collect();
    names.sort();
    names.dedup();
    for n in &names {
        let nodes = query(prom_port, &format!("count(count by (instance) ({n}))"));
        if nodes["data"]["result"][0]["value"][1] != "4" {
            missing.push(format!("{n}: not exported by every node"));
        }
    }
    // Prometheus evaluates every rule without error.
    let rules = get(prom_port, "/api/v1/rules");
    let evaluated: Vec<&Value> = rules["data"]["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .collect();
    assert_eq!(evaluated.len(), alerts.len(), "{rules}");
    for r in evaluated {
        if r["health"] != "ok" {
            missing.push(format!("rule {} does not evaluate: {r}", r["name"]));
        }
    }
    // The dashboard shows every metric family a node exports.
    let (_, _, text) = http_exchange(
        ("127.0.0.1", metrics_ports[0]),
        b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&text);
    let families: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.split_whitespace().next())
        .collect();
    assert!(families.len() >= 30, "{text}");
    let panel_names: Vec<String> = panel_exprs.iter().flat_map(|e| metric_names(e)).collect();
    for f in families {
        if !covered(f, &panel_names) {
            missing.push(format!("{f}: exported, on no dashboard panel"));
        }
    }

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (hashes, _) = load.join().unwrap();
    assert!(!hashes.is_empty(), "the load sent nothing");
    assert!(
        missing.is_empty(),
        "{} problems:\n{}",
        missing.len(),
        missing.join("\n")
    );
}

#[test]
fn expressions_are_read_as_the_test_reads_them() {
    assert_eq!(
        metric_names("rate(atonomi_blocks_committed_total{instance=~\".+\"}[30s]) / atonomi_x"),
        ["atonomi_blocks_committed_total", "atonomi_x"]
    );
    let names = vec!["atonomi_commit_seconds_bucket".to_string()];
    assert!(covered("atonomi_commit_seconds", &names));
    assert!(!covered("atonomi_commit", &names));
    assert!(!covered(
        "atonomi_peers",
        &["atonomi_peers_by_kind".to_string()]
    ));
    assert_eq!(
        alert_exprs("      - alert: A\n        expr: up == 0\n"),
        ["up == 0"]
    );
    assert_eq!(form_encode("a b{c=\"d\"}"), "a%20b%7Bc%3D%22d%22%7D");
}
