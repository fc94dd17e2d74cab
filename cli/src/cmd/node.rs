//! `atonomi dev`, `atonomi init` and `atonomi run`: the node's own commands.

use anyhow::Result;
use atonomi_node::launch as node;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// Data and key directory.
    #[arg(long, env = "ATONOMI_HOME", default_value = ".atonomi-dev")]
    home: PathBuf,
    /// JSON-RPC listen address (HTTP and WebSocket).
    #[arg(long, env = "ATONOMI_RPC_ADDR")]
    rpc_addr: Option<std::net::SocketAddr>,
    /// Serve Prometheus metrics on this address (GET /metrics).
    #[arg(long, env = "ATONOMI_METRICS_ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
}

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The node's home directory (created if missing).
    #[arg(long, env = "ATONOMI_HOME")]
    home: PathBuf,
    /// Genesis file to copy into the home as genesis.json.
    #[arg(long, env = "ATONOMI_GENESIS")]
    genesis: Option<PathBuf>,
    /// Overwrite an existing config.toml (keys are kept).
    #[arg(long)]
    force: bool,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The node's home directory, as `atonomi init` made it.
    #[arg(long, env = "ATONOMI_HOME")]
    home: PathBuf,
    /// Overrides [rpc] addr of config.toml.
    #[arg(long, env = "ATONOMI_RPC_ADDR")]
    rpc_addr: Option<std::net::SocketAddr>,
    /// Overrides [p2p] listen of config.toml (a libp2p address, e.g.
    /// /ip4/127.0.0.1/tcp/26656).
    #[arg(long, env = "ATONOMI_P2P_LISTEN")]
    p2p_listen: Option<libp2p::Multiaddr>,
    /// Overrides [metrics] addr of config.toml (Prometheus: GET http://ADDR/metrics);
    /// serves metrics even when config.toml has no [metrics] section.
    #[arg(long, env = "ATONOMI_METRICS_ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
    /// FOR FAULT TESTS ONLY: make this validator equivocate (a conflicting second
    /// signature beside each of its votes and proposals). Never on a real network.
    #[arg(long, hide = true, env = "ATONOMI_BYZANTINE_TEST_MODE")]
    byzantine_equivocate: bool,
    /// FOR FAULT TESTS ONLY: publish undecodable gossip and badly signed
    /// transactions every two seconds (peers must penalise and ban this node).
    #[arg(long, hide = true)]
    byzantine_garbage: bool,
    /// FOR FAULT TESTS ONLY: abort right after this validator's first proposal is
    /// signed and durable, before it is sent.
    #[arg(long, hide = true)]
    crash_after_signing_proposal: bool,
    /// FOR FAULT TESTS ONLY: ignore all gossip (votes, proposals, status,
    /// transactions), as if no peer published to this node; it can follow the
    /// chain only through block sync.
    #[arg(long, hide = true)]
    deaf_to_gossip: bool,
    /// FOR UPGRADE TESTS ONLY: execute only these of the upgrades this binary
    /// implements (comma-separated, "" for none), playing an older binary that stops
    /// at the height of any other.
    #[arg(long, hide = true, value_delimiter = ',')]
    known_upgrades: Option<Vec<String>>,
}

/// Starts the dev chain and prints how to reach it.
pub fn dev(args: DevArgs) -> Result<()> {
    let DevArgs {
        home,
        rpc_addr,
        metrics_addr,
    } = args;
    let launch = node::dev_launch(&home, rpc_addr, metrics_addr)?;
    let keys = home.join("keys");
    let ready = |addr: std::net::SocketAddr| {
        println!(
            "atonomi dev node: chain atonomi-dev, one validator, data in {}",
            home.join("data").display()
        );
        println!("JSON-RPC: http://{addr}  (WebSocket: ws://{addr})");
        println!(
            "keys: {}/{{admin,manufacturer,auditor,alice,bob}}.json",
            keys.display()
        );
        println!("try:  atonomi query status --rpc http://{addr}");
        println!("      atonomi tx --rpc http://{addr} --key {}/alice.json '{{\"transfer\":{{\"to\":\"{}\",\"amount\":\"1000000000000000000\"}}}}'", keys.display(), atonomi_genesis::dev::key("bob").account());
    };
    Ok(super::runtime()?.block_on(node::run(launch, ready))?)
}

pub fn init(args: InitArgs) -> Result<()> {
    Ok(node::init(&args.home, args.genesis.as_deref(), args.force)?)
}

/// Runs a node from its home, the command line overriding config.toml.
pub fn run(args: RunArgs) -> Result<()> {
    let mut launch = node::Launch::from_home(&args.home, args.rpc_addr)?;
    if let Some(listen) = args.p2p_listen {
        match &mut launch.p2p {
            Some((_, p2p)) => p2p.listen = listen,
            None => anyhow::bail!(
                "--p2p-listen given, but {} has no [p2p] section (a node without it runs alone)",
                args.home.join("config.toml").display()
            ),
        }
    }
    if args.metrics_addr.is_some() {
        launch.metrics = args.metrics_addr;
    }
    launch.faults = atonomi_node::faults::Faults {
        equivocate: args.byzantine_equivocate,
        garbage: args.byzantine_garbage,
        crash_after_signing_proposal: args.crash_after_signing_proposal,
        deaf_to_gossip: args.deaf_to_gossip,
    };
    if let Some(names) = &args.known_upgrades {
        launch.upgrades = atonomi_runtime::upgrade::KnownUpgrades::only(
            names.iter().map(String::as_str).filter(|n| !n.is_empty()),
        )
        .map_err(|e| anyhow::anyhow!("--known-upgrades: {e}"))?;
    }
    let ready = |addr| tracing::info!(%addr, "JSON-RPC listening");
    Ok(super::runtime()?.block_on(node::run(launch, ready))?)
}
