//! Starting a node: `init`, the `dev` home, and the tasks of a running node (its files
//! are read by [`crate::config`]).

use crate::chain::Chain;
use crate::config::{load_config, load_genesis};
use crate::host::{Host, HostConfig};
use crate::mempool::MempoolConfig;
use crate::p2p::P2pConfig;
use atonomi_api::config::CONFIG_TEMPLATE;
pub use atonomi_api::config::{Config, ConsensusConfig, DEFAULT_RPC};
use atonomi_api::file::FileError;
use atonomi_consensus::engine::EngineConfig;
use atonomi_genesis::Genesis;
use atonomi_primitives::Keypair;
use atonomi_storage::RocksConfig;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};

/// Why a node, or one of its set-up commands, could not start.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(transparent)]
    Load(#[from] crate::config::LoadError),
    #[error(transparent)]
    File(#[from] atonomi_api::file::FileError),
    #[error("[admission] {0}")]
    Admission(atonomi_api::config::ConfigError),
    #[error("{} exists; pass --force to overwrite it", .0.display())]
    ConfigExists(PathBuf),
    #[error(transparent)]
    KeyFile(#[from] crate::keys::KeyFileError),
    #[error(transparent)]
    BridgeKey(#[from] crate::keys::BridgeKeyError),
    #[error(transparent)]
    Entropy(#[from] atonomi_primitives::crypto::NoRandomness),
    #[error("[bridge] contract {0:?} is not an address")]
    BridgeContract(String),
    #[error("[bridge] a relayer needs both eth_rpc and relayer_key")]
    RelayerHalf,
    #[error(transparent)]
    Faults(#[from] crate::faults::CompiledOut),
    #[error("starting the mempool's thread: {0}")]
    Mempool(std::io::Error),
    #[error(transparent)]
    Chain(#[from] crate::chain::ChainError),
    #[error(transparent)]
    Host(crate::host::HostError),
    /// See [`crate::host::HostError::UpgradeRequired`]; the process exits with
    /// [`EXIT_UPGRADE_REQUIRED`].
    #[error("{0}")]
    UpgradeRequired(crate::host::HostError),
    #[error(transparent)]
    P2p(#[from] crate::p2p::P2pError),
    #[error("starting the metrics endpoint on {addr}: {error}")]
    Metrics {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("starting JSON-RPC on {addr}: {error}")]
    Rpc {
        addr: SocketAddr,
        error: crate::rpc::ServeError,
    },
}

type Result<T, E = LaunchError> = std::result::Result<T, E>;

/// The exit status of a node that stopped at a scheduled upgrade its binary does not
/// implement (or refused to start there): the cue for an operator or a supervisor to
/// install the new release and start again on the same data directory.
pub const EXIT_UPGRADE_REQUIRED: u8 = 3;

impl From<crate::host::HostError> for LaunchError {
    fn from(e: crate::host::HostError) -> Self {
        match e {
            e @ crate::host::HostError::UpgradeRequired(_) => LaunchError::UpgradeRequired(e),
            e => LaunchError::Host(e),
        }
    }
}

impl LaunchError {
    /// The process exit status this error calls for (1 unless said otherwise).
    pub fn exit_status(&self) -> u8 {
        match self {
            LaunchError::UpgradeRequired(_) => EXIT_UPGRADE_REQUIRED,
            _ => 1,
        }
    }

    /// Logs an upgrade stop where operators' log pipelines see it.
    fn log_upgrade(&self) {
        if let LaunchError::UpgradeRequired(e) = self {
            tracing::error!(exit_status = EXIT_UPGRADE_REQUIRED, "{e}");
        }
    }
}

/// A random id per process start (the lookup log's counts restart with it).
fn run_id() -> u64 {
    let seed = atonomi_primitives::Keypair::generate()
        .map(|k| k.to_seed())
        .unwrap_or_default();
    u64::from_le_bytes([
        seed[0], seed[1], seed[2], seed[3], seed[4], seed[5], seed[6], seed[7],
    ])
}

/// `atonomi init`: a commented config, a validator key and, when given, the genesis.
pub fn init(home: &Path, genesis: Option<&Path>, force: bool) -> Result<()> {
    let config = home.join("config.toml");
    if config.exists() && !force {
        return Err(LaunchError::ConfigExists(config));
    }
    let keys = home.join("keys");
    std::fs::create_dir_all(&keys).map_err(FileError::at("creating", &keys))?;
    std::fs::write(&config, CONFIG_TEMPLATE).map_err(FileError::at("writing", &config))?;
    let key_path = home.join("keys/validator.json");
    let key = read_or_create_key(&key_path)?;
    let node_key = read_or_create_key(&home.join("keys/node.json"))?;
    let bridge_key = crate::keys::bridge::read_or_create(&home.join("keys/bridge.json"))?;
    let peer_id = crate::p2p::identity(&node_key)?.public().to_peer_id();
    if let Some(g) = genesis {
        std::fs::copy(g, home.join("genesis.json")).map_err(FileError::at("copying", g))?;
    }
    println!(
        "{}",
        serde_json::json!({
            "home": home,
            "config": config,
            "validator_key": key_path,
            "account": key.account(),
            "peer_id": peer_id.to_string(),
            "peer_id_hex": hex::encode(peer_id.to_bytes()),
            "bridge_address": bridge_key.address().to_string(),
            "genesis": home.join("genesis.json"),
        })
    );
    Ok(())
}

fn read_or_create_key(path: &Path) -> Result<Keypair> {
    if path.exists() {
        return Ok(crate::keys::read(path)?);
    }
    let k = Keypair::generate()?;
    crate::keys::write(path, &k, false)?;
    Ok(k)
}

/// Everything a node needs to start.
pub struct Launch {
    pub data: PathBuf,
    pub genesis: Genesis,
    pub key: Option<Keypair>,
    /// The file `key` was read from (`None`: the dev chain's built-in key); the
    /// rotated key is looked for beside it.
    pub key_path: Option<PathBuf>,
    /// Beside the validator key: present once the key has signed (see
    /// `HostConfig::signed_marker`).
    pub signed_marker: Option<PathBuf>,
    /// The local control socket (`atonomi backup`; see [`crate::control`]).
    pub control_socket: Option<PathBuf>,
    pub rpc: SocketAddr,
    /// Connection limits of the RPC listener (`[rpc]`).
    pub rpc_limits: atonomi_api::config::RpcConfig,
    /// The mempool's admission policy (`[admission]`).
    pub admission: atonomi_api::config::AdmissionSection,
    /// Heights of state kept provable (`[storage] state_retention`).
    pub state_retention: u64,
    /// Snapshots every N heights (`[storage] snapshot_interval`; `None`: never).
    pub snapshots: Option<crate::snapshot_schedule::Schedule>,
    pub consensus: ConsensusConfig,
    pub p2p: Option<(Keypair, P2pConfig)>,
    pub metrics: Option<SocketAddr>,
    /// `/ready` holds while the committed height is within this many of the best
    /// peer's (`[metrics] ready_max_lag`).
    pub ready_max_lag: u64,
    /// Fault modes for the fault tests (see [`crate::faults`]).
    pub faults: crate::faults::Faults,
    /// The upgrades this node executes: all this binary implements, unless a test
    /// plays an older binary (`atonomi run --known-upgrades`, hidden).
    pub upgrades: atonomi_runtime::upgrade::KnownUpgrades,
    pub admin: bool,
    pub bridge: Option<crate::bridge::BridgeConfig>,
}

impl std::fmt::Debug for Launch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Launch")
            .field("data", &self.data)
            .field("rpc", &self.rpc)
            .finish_non_exhaustive()
    }
}

fn bridge_config(
    home: &Path,
    b: &atonomi_api::config::BridgeSection,
) -> Result<crate::bridge::BridgeConfig> {
    let contract: alloy::primitives::Address = b
        .contract
        .parse()
        .map_err(|_| LaunchError::BridgeContract(b.contract.clone()))?;
    let signer = match &b.key {
        Some(p) => Some(crate::keys::bridge::read(&home.join(p))?),
        None => None,
    };
    let relayer = match (&b.eth_rpc, &b.relayer_key) {
        (Some(url), Some(k)) => Some(crate::bridge::RelayerConfig {
            eth_rpc: url.clone(),
            key: crate::keys::bridge::read(&home.join(k))?,
            confirmations: b.confirmations,
            validator: None,
            takeover: Duration::from_secs(b.takeover_secs),
        }),
        (None, None) => None,
        _ => return Err(LaunchError::RelayerHalf),
    };
    Ok(crate::bridge::BridgeConfig {
        eth_chain_id: b.eth_chain_id,
        contract,
        signer,
        relayer,
    })
}

impl Launch {
    pub fn from_home(home: &Path, rpc_override: Option<SocketAddr>) -> Result<Launch> {
        let config = load_config(home)?;
        let genesis = load_genesis(&home.join(&config.genesis))?;
        let key = match &config.validator_key {
            Some(p) => Some(crate::keys::read(&home.join(p))?),
            None => None,
        };
        let validator_account = key.as_ref().map(|k| k.account());
        let p2p = match config.p2p {
            Some(p) => {
                let node_key = crate::keys::read(&home.join(&p.node_key))?;
                Some((
                    node_key,
                    P2pConfig {
                        listen: p.listen,
                        peers: p.peers,
                        max_connections: p.max_connections,
                        faults: Default::default(),
                    },
                ))
            }
            None => None,
        };
        let key_path = config.validator_key.as_ref().map(|p| home.join(p));
        let signed_marker = key_path.as_ref().map(|p| p.with_extension("signed"));
        Ok(Launch {
            data: home.join("data"),
            genesis,
            key,
            key_path,
            signed_marker,
            control_socket: Some(home.join(crate::control::SOCKET_NAME)),
            rpc: rpc_override.unwrap_or(config.rpc.addr),
            rpc_limits: config.rpc.clone(),
            admission: config.admission.clone(),
            state_retention: config.storage.state_retention,
            snapshots: (config.storage.snapshot_interval > 0).then(|| {
                crate::snapshot_schedule::Schedule {
                    interval: config.storage.snapshot_interval,
                    keep: config.storage.snapshot_keep,
                    dir: home.join("snapshots"),
                }
            }),
            consensus: config.consensus,
            p2p,
            metrics: config.metrics.as_ref().map(|m| m.addr),
            ready_max_lag: config
                .metrics
                .as_ref()
                .map_or(atonomi_api::config::DEFAULT_READY_MAX_LAG, |m| {
                    m.ready_max_lag
                }),
            faults: Default::default(),
            upgrades: Default::default(),
            admin: config.admin.enabled,
            bridge: match &config.bridge {
                Some(b) => {
                    let mut c = bridge_config(home, b)?;
                    if let Some(r) = &mut c.relayer {
                        r.validator = validator_account;
                    }
                    Some(c)
                }
                None => None,
            },
        })
    }
}

// The configuration's floor is the store's.
const _: () = assert!(atonomi_api::config::MIN_STATE_RETENTION == atonomi_storage::MIN_RETENTION);

/// Runs a node until SIGINT or SIGTERM. `ready` is called with the RPC address once it
/// serves.
pub async fn run(launch: Launch, ready: impl FnOnce(SocketAddr)) -> Result<()> {
    // Before anything opens: a build without fault modes refuses them.
    launch.faults.check()?;
    let chain = Chain::open(
        &launch.data,
        &launch.genesis,
        &RocksConfig::default(),
        atonomi_storage::LogConfig {
            retention: launch.state_retention,
        },
    )?
    .with_upgrades(launch.upgrades);
    // Before anything else holds the store: a node restarted at an upgrade it cannot
    // run refuses here, and its RocksDB closes as this returns.
    if let Some(plan) = chain.missing_upgrade()? {
        let e = LaunchError::UpgradeRequired(crate::host::HostError::UpgradeRequired(plan));
        e.log_upgrade();
        return Err(e);
    }
    let validator = launch.key.as_ref().map(Keypair::account);
    if let Some(v) = validator {
        let set = chain.next_validator_set()?;
        if set.get(&v).is_none() {
            tracing::warn!(%v, "this key is not in the validator set of the next height: following without voting");
        }
    }
    let (events, _) = broadcast::channel(1024);
    let (outbound, outbound_rx) = mpsc::unbounded_channel();
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let mempool = crate::mempool::spawn(
        MempoolConfig {
            max_per_account: launch.admission.max_pending_per_account,
            ..MempoolConfig::default()
        },
        chain.height(),
        events.clone(),
        metrics.clone(),
    )
    .map_err(LaunchError::Mempool)?;
    let reader = chain.reader();
    let relay_log = chain.relay_log();
    let admission = crate::admit::Admission::new(
        reader.clone(),
        mempool.clone(),
        crate::admission::Policy {
            min_balance: launch
                .admission
                .min_balance()
                .map_err(LaunchError::Admission)?,
        },
        outbound.clone(),
        metrics.clone(),
    );
    metrics.height.set(chain.height().get() as i64);
    {
        let reader = reader.clone();
        metrics.add_sampler(Box::new(move |m| {
            for (cf, bytes) in reader.storage_sizes().unwrap_or_default() {
                m.storage_bytes
                    .get_or_create(&crate::metrics::Column { cf })
                    .set(bytes as i64);
            }
            m.state_oldest_height.set(
                reader
                    .lowest_state_height()
                    .map_or(0, atonomi_primitives::Height::get) as i64,
            );
        }));
    }
    {
        let data = launch.data.clone();
        metrics.add_sampler(Box::new(move |m| {
            // Blocks available to an unprivileged user, as `df` shows them.
            if let Ok(fs) = rustix::fs::statvfs(&data) {
                m.disk_free_bytes
                    .set(fs.f_bavail.saturating_mul(fs.f_frsize) as i64);
                m.disk_size_bytes
                    .set(fs.f_blocks.saturating_mul(fs.f_frsize) as i64);
            }
        }));
    }
    // However this function returns (a port in use, say), the samplers go with it.
    let _samplers = crate::metrics::SamplersGuard(metrics.clone());
    let health = Arc::new(crate::health::Health::new(
        launch.data.clone(),
        launch.ready_max_lag,
        metrics.clone(),
    ));
    {
        let mempool = mempool.clone();
        health.add("mempool", move || {
            mempool.len().map(|_| ()).map_err(|e| e.to_string())
        });
    }
    if let Some(addr) = launch.metrics {
        let bound = crate::endpoint::serve(addr, metrics.clone(), health.clone())
            .await
            .map_err(|error| LaunchError::Metrics { addr, error })?;
        tracing::info!(%bound, "Prometheus metrics on /metrics");
    }
    // State other tasks own, published to the RPC server on watch channels.
    let (round_tx, round) = watch::channel(None);
    let (relayer_tx, relayer) = watch::channel(None);
    let context = crate::rpc::RpcContext {
        validator,
        bridge: launch
            .bridge
            .as_ref()
            .map(crate::bridge::BridgeConfig::info),
        round,
        relayer,
        run_id: run_id(),
    };
    let rpc_links = crate::rpc::Links {
        chain: reader.clone(),
        admission: admission.clone(),
        mempool: mempool.clone(),
        events: events.clone(),
        metrics: metrics.clone(),
        outbound: outbound.clone(),
    };
    let (rpc_addr, rpc_handle) = crate::rpc::serve(
        launch.rpc,
        rpc_links,
        context,
        launch.admin,
        &launch.rpc_limits,
    )
    .await
    .map_err(|error| LaunchError::Rpc {
        addr: launch.rpc,
        error,
    })?;
    {
        let handle = rpc_handle.clone();
        health.add("rpc", move || match handle.is_stopped() {
            false => Ok(()),
            true => Err("the JSON-RPC server has stopped".into()),
        });
    }
    let propose = Duration::from_millis(launch.consensus.propose_timeout_ms.max(100));
    let mut engine = EngineConfig::new(launch.genesis.chain_id.clone());
    engine.timeouts.propose = propose;
    engine.timeouts.propose_delta = propose / 2;
    if launch.faults.equivocate {
        tracing::warn!("BYZANTINE TEST MODE: this validator equivocates on purpose");
    }
    let config = HostConfig {
        engine,
        heartbeat: Duration::from_millis(launch.consensus.heartbeat_ms.max(100)),
        faults: launch.faults,
        wait_for_peers: launch.p2p.is_some(),
        signed_marker: launch.signed_marker.clone(),
    };
    let (inbound_tx, inbound_rx) = mpsc::channel(4096);
    let checkpoint_keys = launch.key.as_ref().map(|k| {
        crate::keys::ConsensusKeys::new(Keypair::from_seed(k.to_seed()), launch.key_path.as_deref())
    });
    let (host, first) = Host::start(
        chain,
        crate::host::Links {
            mempool: mempool.clone(),
            events: events.clone(),
            outbound,
            metrics: metrics.clone(),
        },
        launch
            .key
            .map(|k| crate::keys::ConsensusKeys::new(k, launch.key_path.as_deref())),
        config,
        round_tx,
    )
    .map_err(LaunchError::from)
    .inspect_err(LaunchError::log_upgrade)?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let net_task = match launch.p2p {
        Some((node_key, mut p2p)) => {
            p2p.faults = launch.faults;
            let links = crate::p2p::Links {
                chain: reader.clone(),
                admission: admission.clone(),
                events: events.clone(),
                metrics: metrics.clone(),
            };
            let net = crate::p2p::Network::new(&node_key, p2p, links)?;
            tracing::info!(peer_id = %net.peer_id(), "p2p identity");
            let mut stop = stop_rx.clone();
            let alive = health.task("network");
            Some(tokio::spawn(async move {
                let _alive = alive;
                net.run(inbound_tx, outbound_rx, async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
            }))
        }
        None => {
            // No network (the dev chain's single validator decides alone); the inbound
            // sender stays alive with the drain so the host keeps running.
            let mut rx = outbound_rx;
            Some(tokio::spawn(async move {
                let _keep = inbound_tx;
                while rx.recv().await.is_some() {}
            }))
        }
    };
    let mut background = Vec::new();
    if let Some(b) = &launch.bridge {
        if let (Some(bkey), Some(ckeys)) = (&b.signer, checkpoint_keys) {
            let links = crate::bridge::SignerLinks {
                chain: reader.clone(),
                admission: admission.clone(),
                mempool: mempool.clone(),
                events: events.clone(),
            };
            background.push(tokio::spawn(crate::bridge::run_signer(
                links,
                ckeys,
                bkey.clone(),
                b.clone(),
            )));
        }
        if b.relayer.is_some() {
            let links = crate::bridge::RelayerLinks {
                chain: reader.clone(),
                log: relay_log.clone(),
                metrics: metrics.clone(),
            };
            background.push(tokio::spawn(crate::bridge::run_relayer(
                links,
                b.clone(),
                relayer_tx,
            )));
        }
    }
    let control = launch.control_socket.as_ref().and_then(|path| {
        crate::control::serve(path, reader.clone())
            .inspect_err(|e| {
                tracing::warn!(path = %path.display(), "no control socket, so no `atonomi backup` of the running node: {e}")
            })
            .ok()
    });
    if let Some(schedule) = launch.snapshots.clone() {
        background.push(tokio::spawn(crate::snapshot_schedule::run(
            schedule,
            reader.clone(),
            Arc::new(launch.genesis.clone()),
            events.clone(),
            metrics.clone(),
        )));
    }
    let consensus = health.task("consensus");
    health.set_started();
    ready(rpc_addr);
    let result = host
        .run(first, inbound_rx, shutdown_signal())
        .await
        .map_err(LaunchError::from)
        .inspect_err(LaunchError::log_upgrade);
    drop(consensus);
    let _ = stop_tx.send(true);
    for t in background {
        t.abort();
    }
    if let Some(t) = net_task {
        t.abort();
        let _ = t.await;
    }
    let _ = rpc_handle.stop();
    rpc_handle.stopped().await;
    if let Some(c) = control {
        c.stop().await;
    }
    // The metrics port outlives this function (it is dropped with the runtime); its
    // samplers (dropped with `_samplers`) must not keep the store open until then.
    tracing::info!("stopped");
    result
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested");
}

/// `atonomi dev`: the dev genesis, its keys in `home/keys`, one validator.
pub fn dev_launch(
    home: &Path,
    rpc: Option<SocketAddr>,
    metrics: Option<SocketAddr>,
) -> Result<Launch> {
    use atonomi_genesis::dev;
    let keys = home.join("keys");
    std::fs::create_dir_all(&keys).map_err(FileError::at("creating", &keys))?;
    for name in dev::NAMES {
        let path = keys.join(format!("{name}.json"));
        if !path.exists() {
            crate::keys::write(&path, &dev::key(name), false)?;
        }
    }
    let rpc = rpc.unwrap_or(DEFAULT_RPC);
    Ok(Launch {
        data: home.join("data"),
        genesis: dev::genesis(),
        key: Some(dev::key("validator")),
        key_path: None,
        signed_marker: None,
        control_socket: Some(home.join(crate::control::SOCKET_NAME)),
        rpc,
        rpc_limits: atonomi_api::config::RpcConfig::on(rpc),
        admission: atonomi_api::config::AdmissionSection::default(),
        state_retention: atonomi_storage::DEFAULT_RETENTION,
        snapshots: None,
        consensus: ConsensusConfig {
            heartbeat_ms: 10_000,
            propose_timeout_ms: 1_000,
        },
        p2p: None,
        metrics,
        ready_max_lag: atonomi_api::config::DEFAULT_READY_MAX_LAG,
        faults: Default::default(),
        upgrades: Default::default(),
        admin: false,
        bridge: None,
    })
}
