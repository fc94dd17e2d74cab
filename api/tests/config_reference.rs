//! The configuration reference in `docs/operators.md` is the file `atonomi init` writes
//! (`CONFIG_TEMPLATE`), and that file names every key the configuration types read,
//! each in its section (the optional `[bridge]` section commented out). Add a setting
//! and this fails until the template, and so the reference, shows it.

use atonomi_api::config::{BridgeSection, Config, CONFIG_TEMPLATE};

/// The first toml block under the operators' guide's *Configuration reference*.
fn reference() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/operators.md");
    let text = std::fs::read_to_string(path).expect("docs/operators.md");
    let section = &text[text
        .find("## Configuration reference")
        .expect("docs/operators.md has a Configuration reference")..];
    let start = section.find("```toml\n").expect("its toml block") + "```toml\n".len();
    section[start..start + section[start..].find("```").unwrap()].to_string()
}

#[test]
fn the_reference_is_the_file_init_writes() {
    assert_eq!(
        reference(),
        CONFIG_TEMPLATE,
        "docs/operators.md's Configuration reference must be api::config::CONFIG_TEMPLATE"
    );
}

/// `section.key` of every setting a configuration with every optional part present
/// has (the top-level ones without a section).
fn keys_of(config: &Config) -> Vec<(String, String)> {
    let table: toml::Table = toml::from_str(&toml::to_string(config).unwrap()).unwrap();
    let mut out = Vec::new();
    for (k, v) in &table {
        match v {
            toml::Value::Table(t) => {
                out.extend(t.keys().map(|key| (k.clone(), key.clone())));
            }
            _ => out.push((String::new(), k.clone())),
        }
    }
    out
}

/// The lines of `section` in the template (`[section]` or `# [section]` up to the next
/// section header; the top level before the first).
fn section_lines(section: &str) -> Vec<&'static str> {
    let header = |l: &str| {
        let l = l.trim_start_matches('#').trim();
        (l.starts_with('[') && l.ends_with(']')).then(|| l[1..l.len() - 1].to_string())
    };
    let mut current = String::new();
    let mut out = Vec::new();
    for line in CONFIG_TEMPLATE.lines() {
        if let Some(name) = header(line) {
            current = name;
            continue;
        }
        if current == section {
            out.push(line);
        }
    }
    out
}

#[test]
fn the_template_names_every_key_in_its_section() {
    let mut config = Config::parse(CONFIG_TEMPLATE).unwrap();
    config.bridge = Some(BridgeSection {
        eth_chain_id: 1,
        contract: "0x0000000000000000000000000000000000000001".into(),
        key: Some("keys/bridge.json".into()),
        eth_rpc: Some("http://127.0.0.1:8545".into()),
        relayer_key: Some("keys/eth.json".into()),
        confirmations: 2,
        takeover_secs: 30,
    });
    assert!(config.p2p.is_some() && config.metrics.is_some() && config.validator_key.is_some());
    let keys = keys_of(&config);
    assert!(keys.len() >= 25, "{keys:?}");
    let mut missing = Vec::new();
    for (section, key) in &keys {
        let named = section_lines(section).iter().any(|l| {
            l.trim_start_matches('#')
                .trim_start()
                .strip_prefix(key.as_str())
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        });
        if !named {
            missing.push(format!("[{section}] {key}"));
        }
    }
    assert!(
        missing.is_empty(),
        "CONFIG_TEMPLATE does not name: {}",
        missing.join(", ")
    );
}
