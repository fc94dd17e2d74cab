//! The CLI as a newcomer meets it (issue 18): a chain made with `init`, `genesis new`
//! and `run` from flags alone, and the listeners `run` can move.

use serde_json::{json, Value};
use std::time::{Duration, Instant};

mod common;

/// A fresh `atonomi run` chain (init, genesis new, run) makes its first block as soon
/// as a transaction waits, not after a heartbeat (issue 18). The heartbeat here is an
/// hour, and `atonomi tx` gives up after 60 s: the transfer is final only if the
/// waiting transaction started the height.
#[test]
fn a_fresh_run_node_makes_its_first_block_when_a_transaction_waits() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = common::RunNode::create(dir.path(), 3_600_000, "");
    node.start();
    assert_eq!(node.height(), 0, "no block before any transaction");
    let alice = dir.path().join("alice.json");
    let out = common::run(&["keys", "dev", "alice", "--out", alice.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bob = atonomi_genesis::dev::key("bob").account().to_string();
    let url = format!("http://127.0.0.1:{}", node.rpc_port);
    let call = json!({ "transfer": { "to": bob, "amount": "1" } }).to_string();
    let r = common::json_out(&common::run(&[
        "tx",
        "--rpc",
        &url,
        "--key",
        alice.to_str().unwrap(),
        &call,
    ]))
    .unwrap();
    assert_eq!(r["status"]["status"], "success", "{r}");
    assert_eq!(r["height"], 1, "the first block carries the transfer: {r}");

    // The token calls with named flags and amounts in ATMI (issue 18, writes).
    let balance = || {
        node.try_rpc("atonomi_getAccount", json!([bob])).unwrap()["result"]["balance"]
            .as_str()
            .unwrap()
            .parse::<u128>()
            .unwrap()
    };
    let before = balance();
    let named = |args: &[&str]| {
        let mut all = vec!["tx", "--rpc", &url];
        all.extend_from_slice(args);
        common::run(&all)
    };
    let r = common::json_out(&named(&[
        "transfer",
        "--key",
        alice.to_str().unwrap(),
        "--to",
        &bob,
        "--amount",
        "1.5",
    ]))
    .unwrap();
    assert_eq!(r["status"]["status"], "success", "{r}");
    let r = common::json_out(&named(&[
        "--key",
        alice.to_str().unwrap(),
        "transfer",
        "--to",
        &bob,
        "--amount",
        "7base",
    ]))
    .unwrap();
    assert_eq!(r["status"]["status"], "success", "{r}");
    assert_eq!(balance() - before, 1_500_000_000_000_000_007);
    let refused = named(&[
        "transfer",
        "--key",
        alice.to_str().unwrap(),
        "--to",
        &bob,
        "--amount",
        "0.0000000000000000001",
    ]);
    assert!(!refused.status.success(), "19 decimals are refused");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("up to 18 decimals"));
}

/// `atonomi run` moves every listener from the command line (issue 18): the p2p
/// address and the metrics endpoint as well as the RPC, over what config.toml says.
#[test]
fn run_flags_move_the_p2p_and_metrics_listeners() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = common::RunNode::create(dir.path(), 500, "");
    let (p2p, metrics) = (common::free_port(), common::free_port());
    let listen = format!("/ip4/127.0.0.1/tcp/{p2p}");
    let metrics_addr = format!("127.0.0.1:{metrics}");
    node.start_with(&["--p2p-listen", &listen, "--metrics-addr", &metrics_addr]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", p2p)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listens on the --p2p-listen port"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", node.p2p_port)).is_err(),
        "the config.toml p2p port is not used when --p2p-listen is given"
    );
    while std::net::TcpStream::connect(("127.0.0.1", metrics)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listens on the --metrics-addr port"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, _, body) = common::http_exchange(
        ("127.0.0.1", metrics),
        format!("GET /metrics HTTP/1.1\r\nHost: {metrics_addr}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(status, 200);
    assert!(
        String::from_utf8_lossy(&body).contains("atonomi_"),
        "the metrics endpoint serves our metrics"
    );
}

fn key(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, String) {
    let p = dir.join(format!("{name}.json"));
    let v = common::json_out(&common::run(&["keys", "new", "--out", p.to_str().unwrap()])).unwrap();
    let shown = common::json_out(&common::run(&["keys", "show", p.to_str().unwrap()])).unwrap();
    assert_eq!(v["account"], shown["account"], "{v} {shown}");
    (p, shown["account"].as_str().unwrap().to_string())
}

/// The id in a receipt's proposal_created event.
fn proposal_id(receipt: &Value) -> Value {
    receipt["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "proposal_created")
        .map(|e| e["id"].clone())
        .unwrap_or_else(|| panic!("no proposal_created in {receipt}"))
}

/// A 2-of-3 chain from flags alone: `init`, then `genesis new` with three admins,
/// threshold 2, its own manufacturer, auditor and allocations, then `run`. The records
/// are what the flags said, and a proposal takes effect at the second approval only.
#[test]
fn genesis_new_makes_a_two_of_three_chain_from_flags() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("v");
    let v = common::json_out(&common::run(&["init", "--home", home.to_str().unwrap()])).unwrap();
    let (a1, a1_acct) = key(dir.path(), "admin1");
    let (a2, a2_acct) = key(dir.path(), "admin2");
    let (_, a3_acct) = key(dir.path(), "admin3");
    let (_, maker) = key(dir.path(), "maker");
    let (_, auditor) = key(dir.path(), "auditor");
    let validator = format!(
        "{},{}",
        v["account"].as_str().unwrap(),
        v["peer_id_hex"].as_str().unwrap()
    );
    let genesis = home.join("genesis.json");
    let m = format!("7,Acme, Sensors,{maker}");
    let au = format!("3,Acme Audit,{auditor}");
    let (alloc1, alloc2, alloc3) = (
        format!("{a1_acct},1000"),
        format!("{maker},10.5"),
        format!("{auditor},25base"),
    );
    let out = common::run(&[
        "genesis",
        "new",
        "--chain-id",
        "acme-1",
        "--validator",
        &validator,
        "--admin",
        &a1_acct,
        "--admin",
        &a2_acct,
        "--admin",
        &a3_acct,
        "--threshold",
        "2",
        "--manufacturer",
        &m,
        "--auditor",
        &au,
        "--alloc",
        &alloc1,
        "--alloc",
        &alloc2,
        "--alloc",
        &alloc3,
        "--out",
        genesis.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let g: Value = serde_json::from_slice(&std::fs::read(&genesis).unwrap()).unwrap();
    assert_eq!(g["governance"]["threshold"], 2, "{g}");
    assert_eq!(
        g["governance"]["admins"],
        json!([a1_acct, a2_acct, a3_acct])
    );
    assert_eq!(g["manufacturers"][0]["id"], 7);
    assert_eq!(g["manufacturers"][0]["name"], "Acme, Sensors");
    assert_eq!(
        g["validators"][0]["operator"], 7,
        "the first manufacturer operates"
    );
    assert_eq!(g["auditors"][0]["id"], 3);
    assert_eq!(
        g["token"]["total_supply"], "1010500000000000000025",
        "the supply is the sum of the allocations"
    );
    let checked = common::run(&["genesis", "validate", genesis.to_str().unwrap()]);
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    // A bad flag is refused with its name, and nothing is written.
    let bad = dir.path().join("bad.json");
    let refused = common::run(&[
        "genesis",
        "new",
        "--validator",
        &validator,
        "--alloc",
        "nobody,1",
        "--out",
        bad.to_str().unwrap(),
    ]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--alloc nobody: not an account"));
    assert!(!bad.exists());

    let (rpc_port, p2p_port) = (common::free_port(), common::free_port());
    let config = std::fs::read_to_string(home.join("config.toml")).unwrap();
    assert!(
        config.contains("genesis"),
        "init writes a config naming the genesis"
    );
    let mut node = common::RunNode {
        home: home.clone(),
        rpc_port,
        p2p_port,
        child: None,
    };
    node.start_with(&[
        "--rpc-addr",
        &format!("127.0.0.1:{rpc_port}"),
        "--p2p-listen",
        &format!("/ip4/127.0.0.1/tcp/{p2p_port}"),
    ]);
    let url = format!("http://127.0.0.1:{rpc_port}");
    let q = |what: &[&str]| {
        let mut args = vec!["query", what[0], "--rpc", &url];
        args.extend_from_slice(&what[1..]);
        common::json_out(&common::run(&args)).unwrap()
    };
    assert_eq!(q(&["status"])["chain_id"], "acme-1");
    assert_eq!(q(&["manufacturer", "7"])["name"], "Acme, Sensors");
    assert_eq!(q(&["account", &maker])["balance"], "10500000000000000000");

    let tx = |k: &std::path::Path, call: Value| {
        common::json_out(&common::run(&[
            "tx",
            "--rpc",
            &url,
            "--key",
            k.to_str().unwrap(),
            &call.to_string(),
        ]))
        .unwrap()
    };
    let r = tx(
        &a1,
        json!({ "propose": { "action": { "change_auditor": { "id": 3, "change": "suspend" } } } }),
    );
    assert_eq!(r["status"]["status"], "success", "{r}");
    let id = proposal_id(&r);
    assert_eq!(
        q(&["auditor", "3"])["status"],
        "active",
        "one approval of two"
    );
    // Every record reads without a raw state key (issue 18, reads).
    let prop = q(&["proposal", &id.to_string()]);
    assert_eq!(prop["approvals"], json!([a1_acct]), "{prop}");
    assert_eq!(prop["status"], "pending", "{prop}");
    let pending = q(&["proposals", "--status", "pending"]);
    assert_eq!(pending["proposals"][0]["id"], id, "{pending}");
    assert_eq!(pending["threshold"], 2);
    let bogus = node
        .try_rpc("atonomi_listProposals", json!([{ "status": "bogus" }]))
        .unwrap();
    assert_eq!(
        bogus["error"]["code"], -32602,
        "an unknown status is refused: {bogus}"
    );
    let gov = q(&["governance"]);
    assert_eq!(gov["threshold"], 2, "{gov}");
    assert_eq!(gov["admins"], json!([a1_acct, a2_acct, a3_acct]));
    let token = q(&["token"]);
    assert_eq!(token["total_supply"], "1010500000000000000025", "{token}");
    assert_eq!(token["symbol"], "ATMI");
    let allowance = q(&["allowance", &a1_acct, &maker]);
    assert_eq!(allowance["amount"], "0", "{allowance}");
    assert!(q(&["params"])["checkpoint_interval"].is_u64());
    let validators = q(&["validators"]);
    assert_eq!(
        validators["current"]["validators"][0]["consensus_key"], v["account"],
        "{validators}"
    );
    let makers = q(&["manufacturers"]);
    assert_eq!(makers["items"][0]["id"], 7, "{makers}");
    assert!(makers["next"].is_null());
    assert_eq!(
        q(&["auditors", "--limit", "1"])["items"][0]["name"],
        "Acme Audit"
    );
    let r = tx(&a2, json!({ "approve_proposal": { "id": id } }));
    assert_eq!(r["status"]["status"], "success", "{r}");
    assert_eq!(
        q(&["auditor", "3"])["status"],
        "suspended",
        "the second approval executes"
    );
    // One fee changes without restating the other parameters (atonomi gov).
    let before = q(&["params"]);
    let gov = |args: &[&str]| {
        let mut all = vec!["gov", args[0], "--rpc", &url];
        all.extend_from_slice(&args[1..]);
        common::run(&all)
    };
    let refused = gov(&["set-params", "--key", a1.to_str().unwrap(), "no_such_fee=1"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("no_such_fee is not a network parameter")
    );
    let r = common::json_out(&gov(&[
        "set-params",
        "--key",
        a1.to_str().unwrap(),
        "registration_fee=2000",
    ]))
    .unwrap();
    let fee_id = proposal_id(&r);
    let shown = common::json_out(&gov(&["show", &fee_id.to_string()])).unwrap();
    assert_eq!(shown["threshold"], 2, "{shown}");
    assert_eq!(shown["approvals"], json!([a1_acct]), "{shown}");
    let r = common::json_out(&gov(&[
        "approve",
        "--key",
        a2.to_str().unwrap(),
        &fee_id.to_string(),
    ]))
    .unwrap();
    assert_eq!(r["status"]["status"], "success", "{r}");
    let mut after = q(&["params"]);
    assert_eq!(after["registration_fee"], "2000", "{after}");
    after["registration_fee"] = before["registration_fee"].clone();
    assert_eq!(after, before, "only the named parameter changed");

    let done = q(&["proposals", "--status", "executed"]);
    assert_eq!(
        done["proposals"][0]["approvals"],
        json!([a1_acct, a2_acct]),
        "{done}"
    );
    assert_eq!(
        q(&["proposals", "--status", "pending"])["proposals"],
        json!([])
    );
}

/// `atonomi completions SHELL` prints a script the shell accepts: bash registers a
/// completion for `atonomi` from it, and every script names the subcommands.
#[test]
fn completions_load_in_bash_and_name_the_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let out = common::run(&["completions", shell]);
        assert!(
            out.status.success(),
            "{shell}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let script = String::from_utf8_lossy(&out.stdout);
        for sub in ["query", "genesis", "validators"] {
            assert!(script.contains(sub), "{shell}: no {sub} in the script");
        }
    }
    let registered = std::process::Command::new("bash")
        .args([
            "-c",
            &format!(
                "source <(\"{}\" completions bash) && complete -p atonomi",
                common::BIN
            ),
        ])
        .output()
        .unwrap();
    assert!(
        registered.status.success(),
        "{}",
        String::from_utf8_lossy(&registered.stderr)
    );
    assert!(String::from_utf8_lossy(&registered.stdout).contains("atonomi"));
}

/// Runs a walkthrough (the first sh block under `heading` of `doc`) on listeners of its
/// own: `init` writes the default ports and walkthroughs run side by side, so the
/// node's RPC, p2p and metrics addresses move by environment; `extra` is added. Its
/// stdout.
fn walkthrough(
    doc: &str,
    heading: &str,
    dir: &std::path::Path,
    extra: &[(&str, String)],
) -> String {
    let (rpc, p2p, metrics) = (
        common::free_port(),
        common::free_port(),
        common::free_port(),
    );
    let mut env = vec![
        ("ATONOMI_RPC_ADDR", format!("127.0.0.1:{rpc}")),
        ("ATONOMI_P2P_LISTEN", format!("/ip4/127.0.0.1/tcp/{p2p}")),
        ("ATONOMI_METRICS_ADDR", format!("127.0.0.1:{metrics}")),
        ("ATONOMI_RPC", format!("http://127.0.0.1:{rpc}")),
    ];
    env.extend_from_slice(extra);
    common::run_doc_block(doc, heading, dir, &env)
}

/// README's *Governance on a 2-of-3 chain* block, run as it stands by bash with `A`
/// set to this build's binary and the node's ports moved by environment variables:
/// every command must succeed, the proposed auditor exists, and the fee changed.
#[test]
fn the_readme_governance_walkthrough_runs_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let stdout = walkthrough(
        "README.md",
        "## Governance on a 2-of-3 chain",
        dir.path(),
        &[],
    );
    assert!(
        stdout.contains("\"Acme Audit\""),
        "the auditor was added: {stdout}"
    );
    assert!(
        stdout.trim_end().ends_with("\"2000000000000000000\""),
        "the fee changed: {stdout}"
    );
}

/// docs/operators.md's *Upgrading the network* block, run as written: `$OLD` is this
/// build narrowed to no upgrades (an older release), `$A` this build. The old release
/// stops at the plan's height with exit status 3; the new one migrates and goes on.
#[test]
fn the_operators_upgrade_walkthrough_runs_as_written() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("atonomi-old");
    std::fs::write(
        &old,
        format!(
            "#!/bin/sh\nexec {} \"$@\" --known-upgrades \"\"\n",
            common::BIN
        ),
    )
    .unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o755)).unwrap();
    let stdout = walkthrough(
        "docs/operators.md",
        "## Upgrading the network",
        dir.path(),
        &[("OLD", old.to_str().unwrap().to_string())],
    );
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            r#"{"name":"v2","status":"scheduled","known":false}"#,
            "stopped with exit status 3",
            r#"{"status":"applied","at":true,"protocol_version":2}"#,
        ],
        "{stdout}"
    );
}

/// docs/operators.md's *Rotating a consensus key* block, run as written: a single
/// validator rotates its key and its chain goes on, signed by the new key.
#[test]
fn the_operators_rotation_walkthrough_runs_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let stdout = walkthrough(
        "docs/operators.md",
        "## Rotating a consensus key",
        dir.path(),
        &[],
    );
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["true", "true"],
        "{stdout}"
    );
}

/// docs/operators.md's *Joining a network* block, run as written: a full node joins a
/// validator once governance allows its peer id, and has the validator's blocks.
#[test]
fn the_operators_joining_walkthrough_runs_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let port = || common::free_port().to_string();
    let stdout = walkthrough(
        "docs/operators.md",
        "## Joining a network",
        dir.path(),
        &[
            ("VAL_P2P", port()),
            ("FULL_RPC", port()),
            ("FULL_P2P", port()),
            ("FULL_METRICS", port()),
        ],
    );
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["success", "same block"],
        "{stdout}"
    );
}

/// docs/operators.md's *Backups* block, run as written: a backup of a running
/// validator, a restore refused over newer data, and a restore after the data is lost.
#[test]
fn the_operators_backup_walkthrough_runs_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let stdout = walkthrough("docs/operators.md", "## Backups", dir.path(), &[]);
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["true", "refused", "true"],
        "{stdout}"
    );
}

/// A device's life through the named subcommands alone (issue 18, writes): the
/// manufacturer whitelists it, an owner activates it with the device's consent from
/// its key file, the manufacturer suspends it, and a malformed id is refused before
/// anything is sent.
#[test]
fn a_device_lives_through_named_subcommands() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("dev");
    let node = common::DevNode::start(&home, &[]);
    let url = node.url();
    let keys = home.join("keys");
    let (maker, alice) = (keys.join("manufacturer.json"), keys.join("alice.json"));
    let (device_key, device_pub) = key(dir.path(), "device");
    let id = common::json_out(&common::run(&["device-id", "salt", "serial-0001"])).unwrap()
        ["device_id"]
        .as_str()
        .unwrap()
        .to_string();
    let tx = |key: &std::path::Path, args: &[&str]| {
        let mut all = vec!["tx", "--rpc", &url, "--key", key.to_str().unwrap()];
        all.extend_from_slice(args);
        common::json_out(&common::run(&all))
    };
    let r = tx(
        &maker,
        &[
            "register-device",
            "--manufacturer",
            "1",
            "--device-id",
            &id,
            "--public-key",
            &device_pub,
            "--protocol",
            "mqtt",
        ],
    )
    .unwrap();
    assert_eq!(r["status"]["status"], "success", "{r}");
    let r = tx(
        &alice,
        &[
            "--device-key",
            device_key.to_str().unwrap(),
            "activate-device",
            "--device",
            &id,
        ],
    )
    .unwrap();
    assert_eq!(r["status"]["status"], "success", "{r}");
    let device = node.try_rpc("atonomi_getDevice", json!([id])).unwrap();
    let alice_account = atonomi_genesis::dev::key("alice").account().to_string();
    assert_eq!(
        device["result"]["owner"],
        alice_account.as_str(),
        "{device}"
    );
    let r = tx(
        &alice,
        &[
            "set-attributes",
            "--device",
            &id,
            "--per-tx-limit",
            "5",
            "--data-policy",
            "any",
        ],
    )
    .unwrap();
    assert_eq!(r["status"]["status"], "success", "{r}");
    let device = node.try_rpc("atonomi_getDevice", json!([id])).unwrap();
    let attributes = &device["result"]["attributes"];
    assert_eq!(
        attributes["per_tx_limit"], "5000000000000000000",
        "{device}"
    );
    assert_eq!(attributes["data_policy"], "any", "{device}");
    let r = tx(&maker, &["suspend-device", "--device", &id]).unwrap();
    assert_eq!(r["status"]["status"], "success", "{r}");
    let device = node.try_rpc("atonomi_getDevice", json!([id])).unwrap();
    assert_eq!(device["result"]["status"], "suspended", "{device}");
    let e = tx(&maker, &["resume-device", "--device", "not-hex"]).unwrap_err();
    assert!(e.contains("--device"), "{e}");

    // Whitelisted and owned in one call, the device consenting from its key file.
    let (second_key, second_pub) = key(dir.path(), "second");
    let second = common::json_out(&common::run(&["device-id", "salt", "serial-0002"])).unwrap()
        ["device_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = tx(
        &maker,
        &[
            "--device-key",
            second_key.to_str().unwrap(),
            "register-and-activate",
            "--manufacturer",
            "1",
            "--device-id",
            &second,
            "--public-key",
            &second_pub,
            "--owner",
            &alice_account,
        ],
    )
    .unwrap();
    assert_eq!(r["status"]["status"], "success", "{r}");
    let device = node.try_rpc("atonomi_getDevice", json!([second])).unwrap();
    assert_eq!(
        device["result"]["owner"],
        alice_account.as_str(),
        "{device}"
    );
    assert_eq!(device["result"]["status"], "active", "{device}");
}

/// An OEM's whitelist from a CSV file (issue 18, bulk): a bad file is refused whole,
/// naming its lines, before anything is sent; a good one goes in batches, skipping a
/// device registered before; running it again registers nothing twice.
#[test]
fn a_whitelist_csv_registers_in_batches_and_reruns_safely() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("dev");
    let node = common::DevNode::start(&home, &[]);
    let url = node.url();
    let maker = home.join("keys/manufacturer.json");
    let device_key = |i: usize| {
        atonomi_primitives::Keypair::from_label(&format!("whitelist device {i}"))
            .account()
            .to_string()
    };
    let register = |csv: &std::path::Path| {
        common::run(&[
            "devices",
            "register",
            "--rpc",
            &url,
            "--key",
            maker.to_str().unwrap(),
            "--manufacturer",
            "1",
            "--csv",
            csv.to_str().unwrap(),
            "--batch",
            "10",
            "--concurrency",
            "2",
        ])
    };

    let bad = dir.path().join("bad.csv");
    let mut text = String::from("salt,hardware_id,public_key,protocols\n");
    text += &format!("s,hw-1,{},mqtt\n", device_key(1));
    text += "s,hw-2,not-a-key,mqtt\n";
    text += &format!("s,hw-1,{},coap\n", device_key(3));
    std::fs::write(&bad, text).unwrap();
    let out = register(&bad);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a bad file is refused");
    assert!(
        err.contains("line 3: public_key") && err.contains("line 4: device"),
        "{err}"
    );
    assert!(err.contains("nothing was sent"), "{err}");
    let m = node.try_rpc("atonomi_getManufacturer", json!([1])).unwrap();
    let before = m["result"]["devices_registered"].as_u64().unwrap();

    let csv = dir.path().join("whitelist.csv");
    let mut text = String::from("salt,hardware_id,public_key,protocols\n");
    for i in 0..25 {
        text += &format!("acme,serial-{i:04},{},mqtt;coap\n", device_key(i));
    }
    std::fs::write(&csv, text).unwrap();
    // One of them is on chain already.
    let first = common::json_out(&common::run(&["device-id", "acme", "serial-0007"])).unwrap();
    let first = first["device_id"].as_str().unwrap().to_string();
    let r = common::json_out(&common::run(&[
        "tx",
        "--rpc",
        &url,
        "--key",
        maker.to_str().unwrap(),
        "register-device",
        "--manufacturer",
        "1",
        "--device-id",
        &first,
        "--public-key",
        &device_key(7),
    ]))
    .unwrap();
    assert_eq!(r["status"]["status"], "success", "{r}");

    let summary = common::json_out(&register(&csv)).unwrap();
    assert_eq!(summary["registered"], 24, "{summary}");
    assert_eq!(summary["already_registered"], 1, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    assert_eq!(summary["batches"], 3, "{summary}");
    let results = std::fs::read_to_string(dir.path().join("whitelist.results.csv")).unwrap();
    let rows: Vec<&str> = results.lines().collect();
    assert_eq!(rows.len(), 26, "a header and one row per device: {results}");
    assert!(
        rows[8].contains(&first) && rows[8].contains("already_registered"),
        "{results}"
    );
    assert_eq!(
        rows.iter().filter(|r| r.contains(",registered,")).count(),
        24
    );
    let m = node.try_rpc("atonomi_getManufacturer", json!([1])).unwrap();
    assert_eq!(
        m["result"]["devices_registered"].as_u64().unwrap(),
        before + 25,
        "{m}"
    );

    // Run again (as after an interruption): nothing is sent, nothing paid twice.
    let again = common::json_out(&register(&csv)).unwrap();
    assert_eq!(again["registered"], 0, "{again}");
    assert_eq!(again["already_registered"], 25, "{again}");
    let m = node.try_rpc("atonomi_getManufacturer", json!([1])).unwrap();
    assert_eq!(
        m["result"]["devices_registered"].as_u64().unwrap(),
        before + 25,
        "{m}"
    );
}

/// `--output` (issue 18, output): lists as columns, records as rows, and errors as one
/// human line by default or as JSON with the node's code for machines.
#[test]
fn output_is_a_table_for_people_or_json_for_machines() {
    let dir = tempfile::tempdir().unwrap();
    let node = common::DevNode::start(&dir.path().join("dev"), &[]);
    let url = node.url();
    let out = common::run(&["query", "manufacturers", "--rpc", &url, "--output", "table"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("default_score") && header.contains("  name  "),
        "{text}"
    );
    assert!(lines.next().unwrap().starts_with("---"), "{text}");
    assert!(
        lines.next().unwrap().contains("Demo Devices Inc."),
        "{text}"
    );
    assert!(text.contains("next: "), "{text}");
    let out = common::run(&[
        "query",
        "account",
        &"ab".repeat(32),
        "--rpc",
        &url,
        "--output",
        "table",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("field") && text.contains("balance"),
        "{text}"
    );

    let missing = "cd".repeat(32);
    let out = common::run(&["query", "device", &missing, "--rpc", &url]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: ") && err.contains("(code 4040)"),
        "{err}"
    );
    let out = common::run(&[
        "query", "device", &missing, "--rpc", &url, "--output", "json",
    ]);
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["code"], 4040, "{err}");
    assert!(
        err["error"].as_str().unwrap().contains("not found"),
        "{err}"
    );
}

/// The validator set at a past height (issue 18, reads): after a governance change of
/// the validator's power, `query validators --height H` still shows the set as it was
/// at H, and a height not committed yet is refused.
#[test]
fn the_validator_set_reads_as_it_was_at_a_height() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("dev");
    let node = common::DevNode::start(&home, &[]);
    let url = node.url();
    let validator = atonomi_genesis::dev::key("validator").account().to_string();
    let action = json!({ "set_validator_power": { "consensus_key": validator, "power": 7 } });
    let r = common::json_out(&common::run(&[
        "gov",
        "propose",
        "--rpc",
        &url,
        "--key",
        home.join("keys/admin.json").to_str().unwrap(),
        &action.to_string(),
    ]))
    .unwrap();
    assert_eq!(r["status"]["status"], "success", "{r}");
    let changed_at = r["height"].as_u64().unwrap();
    let set = |height: Option<u64>| {
        let mut args = vec![
            "query".to_string(),
            "validators".into(),
            "--rpc".into(),
            url.clone(),
        ];
        if let Some(h) = height {
            args.extend(["--height".to_string(), h.to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        common::json_out(&common::run(&args))
    };
    let latest = set(None).unwrap();
    assert_eq!(
        latest["pending"]["set"]["validators"][0]["power"], 7,
        "{latest}"
    );
    let before = set(Some(changed_at - 1)).unwrap();
    assert!(
        before["pending"].is_null(),
        "nothing was scheduled before the change: {before}"
    );
    assert_eq!(before["current"]["validators"][0]["power"], 1, "{before}");
    let at = set(Some(changed_at)).unwrap();
    assert_eq!(at["pending"]["set"]["validators"][0]["power"], 7, "{at}");
    let events = common::json_out(&common::run(&[
        "query",
        "events",
        "--rpc",
        &url,
        "--from",
        &changed_at.to_string(),
    ]))
    .unwrap();
    assert_eq!(events.as_array().unwrap().len(), 1, "{events}");
    assert_eq!(events[0]["height"], changed_at, "{events}");
    assert!(
        events[0].to_string().contains("proposal_executed"),
        "{events}"
    );
    let e = set(Some(changed_at + 1_000)).unwrap_err();
    assert!(e.contains("not committed yet") && e.contains("4040"), "{e}");
}

/// Issue 18, reads with proofs: `query proof` proves records other than devices and
/// prints each decoded, the same as the plain read; `gov propose update-params`
/// changes only the named parameters; the bridge's status reads without a bridge.
#[test]
fn any_record_reads_with_its_proof_and_a_parameter_changes_alone() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("dev");
    let node = common::DevNode::start(&home, &[]);
    let url = node.url();
    let q = |args: &[&str]| {
        let mut all = vec!["query", args[0], "--rpc", &url];
        all.extend_from_slice(&args[1..]);
        common::json_out(&common::run(&all)).unwrap()
    };
    let before = q(&["params"]);
    let r = common::json_out(&common::run(&[
        "gov",
        "propose",
        "update-params",
        "--rpc",
        &url,
        "--key",
        home.join("keys/admin.json").to_str().unwrap(),
        "max_batch=123",
        "payment_fee_bps=42",
    ]))
    .unwrap();
    assert_eq!(r["status"]["status"], "success", "{r}");
    let after = q(&["params"]);
    let mut expected = before.clone();
    expected["max_batch"] = 123.into();
    expected["payment_fee_bps"] = 42.into();
    assert_eq!(after, expected, "only the two named parameters changed");

    let proven = q(&["proof", "--params"]);
    assert_eq!(proven["record"], after, "{proven}");
    assert!(proven["proof"].is_string() && proven["commit"].is_object());
    let alice = atonomi_genesis::dev::key("alice").account().to_string();
    let proven = q(&["proof", "--account", &alice]);
    let account = q(&["account", &alice]);
    assert_eq!(
        proven["record"],
        json!({ "nonce": account["nonce"], "balance": account["balance"] }),
        "{proven}"
    );
    let proven = q(&["proof", "--manufacturer", "1"]);
    assert_eq!(proven["record"], q(&["manufacturer", "1"]), "{proven}");
    let proven = q(&["proof", "--governance"]);
    assert_eq!(proven["record"], q(&["governance"]), "{proven}");
    let nobody = "ab".repeat(32);
    let absent = q(&["proof", "--allowance", &format!("{alice},{nobody}")]);
    assert!(
        absent["value"].is_null() && absent["record"].is_null(),
        "{absent}"
    );

    // A manufacturer's reputation, a device-less subject, reads by flag.
    let out = common::run(&["query", "reputation", "--rpc", &url, "--manufacturer", "1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("reputation not found (code 4040)"),
        "{err}"
    );
    let bridge = q(&["bridge"]);
    assert!(bridge["chain_epoch"].is_u64(), "{bridge}");
}

/// Offline signing (issue 37, item 3): a transfer prepared unsigned on a machine that
/// talks to no node, checked with `tx show`, signed elsewhere with `tx sign`, and
/// broadcast; a governance change prepared offline by the admin and broadcast from
/// another place. A file changed after signing, one for another chain, one with a used
/// nonce and one whose nonce is ahead are each refused, saying which, and none of
/// them reaches the node.
#[test]
fn transactions_are_prepared_and_signed_offline_then_broadcast() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("dev");
    let node = common::DevNode::start(&home, &[]);
    let url = node.url();
    let keys = home.join("keys");
    let (alice, admin) = (keys.join("alice.json"), keys.join("admin.json"));
    let account = |k: &std::path::Path| {
        common::json_out(&common::run(&["keys", "show", k.to_str().unwrap()])).unwrap()["account"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (alice_acct, admin_acct) = (account(&alice), account(&admin));
    let (_, bob) = key(dir.path(), "bob");
    let next = |acct: &str| {
        node.rpc("atonomi_getAccount", json!([acct]))["next_nonce"]
            .as_u64()
            .unwrap()
    };
    let nonce = next(&alice_acct).to_string();
    let file = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let (unsigned, signed) = (file("unsigned.json"), file("signed.json"));
    let run = |args: &[&str]| common::run(args);
    let refused = |args: &[&str], says: &str| {
        let o = run(args);
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(!o.status.success(), "{args:?} was not refused");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    };

    // Prepared without a node (the RPC port is one nobody listens on) and without a key.
    let offline = [
        "--rpc",
        "http://127.0.0.1:1",
        "--offline",
        "--chain-id",
        "atonomi-dev",
    ];
    let made = common::json_out(&run(&[
        &["tx"][..],
        &offline,
        &[
            "--nonce",
            &nonce,
            "--signer",
            &alice_acct,
            "--out",
            &unsigned,
        ],
        &["transfer", "--to", &bob, "--amount", "2.5"],
    ]
    .concat()))
    .unwrap();
    assert_eq!(made["signed"], false, "{made}");
    let shown = common::json_out(&run(&["tx", "show", &unsigned])).unwrap();
    assert_eq!(shown["does"], "transfer", "{shown}");
    assert_eq!(shown["signer"], alice_acct.as_str());
    assert_eq!(shown["call"]["transfer"]["amount"], "2500000000000000000");
    refused(
        &["tx", "broadcast", &unsigned, "--rpc", &url],
        "is not signed",
    );
    // Only the named signer's key signs it.
    let (bob_key, _) = (dir.path().join("bob.json"), ());
    refused(
        &[
            "tx",
            "sign",
            &unsigned,
            "--key",
            bob_key.to_str().unwrap(),
            "--to",
            &signed,
        ],
        "names signer",
    );
    let sign = common::json_out(&run(&[
        "tx",
        "sign",
        &unsigned,
        "--key",
        alice.to_str().unwrap(),
        "--to",
        &signed,
    ]))
    .unwrap();
    let hash = sign["hash"].as_str().unwrap().to_string();

    // Changed after signing: refused before anything is sent.
    let tampered = file("tampered.json");
    let text = std::fs::read_to_string(&signed).unwrap();
    std::fs::write(
        &tampered,
        text.replace("2500000000000000000", "9500000000000000000"),
    )
    .unwrap();
    refused(
        &["tx", "broadcast", &tampered, "--rpc", &url],
        "changed after signing",
    );
    // ... and with the hash that gave it away removed, the signature does.
    let unhashed: String = std::fs::read_to_string(&tampered)
        .unwrap()
        .lines()
        .filter(|l| !l.contains("\"hash\""))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("\",\n}", "\"\n}");
    std::fs::write(&tampered, unhashed).unwrap();
    refused(
        &["tx", "broadcast", &tampered, "--rpc", &url],
        "signature that is not the signer's",
    );
    // Another chain, and a nonce ahead of the account's.
    let other_chain = file("other-chain.json");
    let alice_key = alice.to_str().unwrap();
    common::json_out(&run(&[
        "tx",
        "--offline",
        "--chain-id",
        "other-1",
        "--nonce",
        &nonce,
        "--key",
        alice_key,
        "--out",
        &other_chain,
        "burn",
        "--amount",
        "1",
    ]))
    .unwrap();
    refused(
        &["tx", "broadcast", &other_chain, "--rpc", &url],
        "serves chain atonomi-dev",
    );
    let ahead = file("ahead.json");
    let later = (next(&alice_acct) + 5).to_string();
    common::json_out(&run(&[
        "tx",
        "--offline",
        "--chain-id",
        "atonomi-dev",
        "--nonce",
        &later,
        "--key",
        alice_key,
        "--out",
        &ahead,
        "burn",
        "--amount",
        "1",
    ]))
    .unwrap();
    refused(
        &["tx", "broadcast", &ahead, "--rpc", &url],
        "must be sent first",
    );
    assert_eq!(
        next(&alice_acct).to_string(),
        nonce,
        "a refused file reached the node"
    );

    // The signed file goes through, once.
    let receipt = common::json_out(&run(&["tx", "broadcast", &signed, "--rpc", &url])).unwrap();
    assert_eq!(receipt["status"]["status"], "success", "{receipt}");
    assert_eq!(receipt["tx_hash"], hash.as_str(), "{receipt}");
    let balance = node.rpc("atonomi_getAccount", json!([bob]))["balance"].clone();
    assert_eq!(balance, "2500000000000000000", "bob's balance");
    refused(&["tx", "broadcast", &signed, "--rpc", &url], "used already");

    // Governance from an offline machine: the admin prepares and signs a parameter
    // change with no node, another machine broadcasts it.
    let gov = file("gov.json");
    let admin_nonce = next(&admin_acct).to_string();
    common::json_out(&run(&[
        "gov",
        "set-params",
        "registration_fee=3000000000000000000",
        "--key",
        admin.to_str().unwrap(),
        "--rpc",
        "http://127.0.0.1:1",
        "--offline",
        "--chain-id",
        "atonomi-dev",
        "--nonce",
        &admin_nonce,
        "--out",
        &gov,
    ]))
    .unwrap();
    let shown = common::json_out(&run(&["tx", "show", &gov])).unwrap();
    assert_eq!(shown["does"], "propose", "{shown}");
    let receipt = common::json_out(&run(&["tx", "broadcast", &gov, "--rpc", &url])).unwrap();
    assert_eq!(receipt["status"]["status"], "success", "{receipt}");
    let params = node.rpc("atonomi_getParams", json!([]));
    assert_eq!(
        params["registration_fee"], "3000000000000000000",
        "{params}"
    );
}
