//! `config.toml`: the node's configuration file. Parsing is pure (text in, typed value
//! or a typed error out) so that it can be fuzzed; the node reads the file.

use multiaddr::Multiaddr;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Largest configuration file accepted.
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the configuration is {0} bytes; at most {MAX_CONFIG_BYTES} are accepted")]
    TooLarge(usize),
    #[error(transparent)]
    Toml(#[from] toml::de::Error),
    #[error("{0}")]
    Invalid(String),
}

/// `config.toml` in a node's home.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Genesis file, relative to the home directory.
    pub genesis: PathBuf,
    /// Consensus key file of a validator, relative to the home; absent for a full node.
    #[serde(default)]
    pub validator_key: Option<PathBuf>,
    pub rpc: RpcConfig,
    pub consensus: ConsensusConfig,
    #[serde(default)]
    pub p2p: Option<P2pSection>,
    #[serde(default)]
    pub metrics: Option<MetricsSection>,
    #[serde(default)]
    pub admin: AdminSection,
    #[serde(default)]
    pub bridge: Option<BridgeSection>,
    #[serde(default)]
    pub admission: AdmissionSection,
    #[serde(default)]
    pub storage: StorageSection,
}

/// `[storage]`: how much state history the node keeps.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// Heights whose state stays provable (`atonomi_getProof` at a height, the bridge's
    /// verifier at a checkpoint): the latest and the `state_retention - 1` before it.
    /// Older state is pruned in the background. At least 128.
    #[serde(default = "default_state_retention")]
    pub state_retention: u64,
    /// Take a snapshot of the state every this many heights, in the background, into
    /// `HOME/snapshots/` (the format of `atonomi snapshot export`); 0: never. Below
    /// `state_retention`, so that the height is still kept when its turn comes.
    #[serde(default)]
    pub snapshot_interval: u64,
    /// Snapshots kept; older ones are deleted.
    #[serde(default = "default_snapshot_keep")]
    pub snapshot_keep: usize,
}

fn default_snapshot_keep() -> usize {
    2
}

impl Default for StorageSection {
    fn default() -> Self {
        StorageSection {
            state_retention: default_state_retention(),
            snapshot_interval: 0,
            snapshot_keep: default_snapshot_keep(),
        }
    }
}

/// 2,048 heights: more than the bridge's signing window for retired validators (1,000
/// blocks) and twenty default checkpoint intervals.
fn default_state_retention() -> u64 {
    2048
}

/// The least `state_retention` (a restart replays up to 64 heights of state history).
pub const MIN_STATE_RETENTION: u64 = 128;

/// `[bridge]`: Ethereum checkpoints. A validator with `key` signs every checkpoint; a
/// node with `eth_rpc` and `relayer_key` also relays them to the contract.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeSection {
    /// The Ethereum chain id and the checkpoint contract (0x address) signatures are for.
    pub eth_chain_id: u64,
    pub contract: String,
    /// The validator's secp256k1 bridge key file (its address is in the validator set).
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// Relayer: Ethereum JSON-RPC URL.
    #[serde(default)]
    pub eth_rpc: Option<String>,
    /// Relayer: key file of the funded Ethereum account that pays for submissions.
    #[serde(default)]
    pub relayer_key: Option<PathBuf>,
    /// Relayer: blocks after inclusion before a submission counts as confirmed.
    #[serde(default = "default_confirmations")]
    pub confirmations: u64,
    /// Relayer: seconds per rank a relayer that is not designated for an epoch waits
    /// before taking over (the designated one is the validator at `epoch mod n`).
    #[serde(default = "default_takeover")]
    pub takeover_secs: u64,
}

fn default_takeover() -> u64 {
    30
}

fn default_confirmations() -> u64 {
    2
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    /// Admin JSON-RPC methods (fault injection for tests). Off by default.
    #[serde(default)]
    pub enabled: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// Prometheus endpoint: GET http://ADDR/metrics (also /health and /ready).
    pub addr: SocketAddr,
    /// `/ready` answers 200 while the committed height is within this many heights of
    /// the best height a peer reported.
    #[serde(default = "default_ready_max_lag")]
    pub ready_max_lag: u64,
}

/// The default `[metrics] ready_max_lag`.
pub const DEFAULT_READY_MAX_LAG: u64 = 2;

fn default_ready_max_lag() -> u64 {
    DEFAULT_READY_MAX_LAG
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct P2pSection {
    /// libp2p listen address.
    pub listen: Multiaddr,
    /// Peers to dial and redial, each ending in /p2p/<peer id>.
    #[serde(default)]
    pub peers: Vec<Multiaddr>,
    /// The node's network key (its peer id), relative to the home.
    pub node_key: PathBuf,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
}

fn default_max_connections() -> u32 {
    64
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RpcConfig {
    pub addr: SocketAddr,
    /// HTTP connections open at once, and from one remote address.
    #[serde(default = "default_max_http")]
    pub max_http_connections: usize,
    #[serde(default = "default_max_http_per_ip")]
    pub max_http_connections_per_ip: usize,
    /// WebSocket connections open at once, and from one remote address (a budget
    /// separate from HTTP's, so neither can starve the other).
    #[serde(default = "default_max_ws")]
    pub max_ws_connections: usize,
    #[serde(default = "default_max_ws_per_ip")]
    pub max_ws_connections_per_ip: usize,
    /// Seconds an HTTP keep-alive connection may sit idle before it is closed.
    #[serde(default = "default_idle")]
    pub idle_timeout_secs: u64,
}

impl RpcConfig {
    /// The defaults, listening on `addr`.
    pub fn on(addr: SocketAddr) -> RpcConfig {
        RpcConfig {
            addr,
            max_http_connections: default_max_http(),
            max_http_connections_per_ip: default_max_http_per_ip(),
            max_ws_connections: default_max_ws(),
            max_ws_connections_per_ip: default_max_ws_per_ip(),
            idle_timeout_secs: default_idle(),
        }
    }
}

fn default_max_http() -> usize {
    512
}
fn default_max_http_per_ip() -> usize {
    128
}
fn default_max_ws() -> usize {
    256
}
fn default_max_ws_per_ip() -> usize {
    32
}
fn default_idle() -> u64 {
    10
}

/// `[admission]`: which transactions this node's mempool takes (a node-local policy,
/// not a consensus rule: a block from another validator is judged by the chain's
/// rules alone). With the default zero fee, it keeps fresh keys from flooding.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdmissionSection {
    /// Least balance, in base units, a sender must hold unless it holds a role the
    /// call needs (admin, manufacturer or auditor key, validator, the device's own
    /// key for device calls). "0" admits anyone.
    #[serde(default = "default_min_balance")]
    pub min_balance: String,
    /// Most transactions one account may have in the mempool.
    #[serde(default = "default_max_pending")]
    pub max_pending_per_account: usize,
}

impl Default for AdmissionSection {
    fn default() -> Self {
        AdmissionSection {
            min_balance: default_min_balance(),
            max_pending_per_account: default_max_pending(),
        }
    }
}

impl AdmissionSection {
    /// The minimum balance as a number (checked by `Config::parse`).
    pub fn min_balance(&self) -> Result<u128, ConfigError> {
        self.min_balance.parse::<u128>().map_err(|_| {
            ConfigError::Invalid(format!(
                "admission.min_balance must be a whole number of base units, not {:?}",
                self.min_balance
            ))
        })
    }
}

fn default_min_balance() -> String {
    "1".into()
}
fn default_max_pending() -> usize {
    1_000
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsensusConfig {
    /// Start a new height without transactions only after this many milliseconds.
    pub heartbeat_ms: u64,
    /// Propose timeout of round 0, in milliseconds (grows by half of it per round).
    pub propose_timeout_ms: u64,
}

impl Default for ConsensusConfig {
    fn default() -> Self {
        ConsensusConfig {
            heartbeat_ms: 10_000,
            propose_timeout_ms: 3_000,
        }
    }
}

pub const DEFAULT_RPC: std::net::SocketAddr = std::net::SocketAddr::V4(
    std::net::SocketAddrV4::new(std::net::Ipv4Addr::new(127, 0, 0, 1), 8645),
);

pub const CONFIG_TEMPLATE: &str = r#"# Atonomi node configuration. Paths are relative to this file's directory.

# The genesis file of the chain this node joins (`atonomi genesis validate` checks it).
genesis = "genesis.json"

# The validator's consensus key (ed25519, written by `atonomi init`). Remove this line
# to run a full node that follows the chain without voting.
validator_key = "keys/validator.json"

[rpc]
# JSON-RPC over HTTP and WebSocket. Keep it on loopback unless a proxy guards it.
addr = "127.0.0.1:8645"
# Connections: HTTP and WebSocket have budgets of their own, in total and per remote
# address, so one client cannot take every slot; idle keep-alive connections close.
max_http_connections = 512
max_http_connections_per_ip = 128
max_ws_connections = 256
max_ws_connections_per_ip = 32
idle_timeout_secs = 10

[admission]
# Who may put transactions into this node's mempool (a local policy, not a consensus
# rule). With the default zero fee, a sender needs at least this balance (base units)
# unless it holds a role its call needs (admin, manufacturer or auditor key, validator,
# the device's own key for device calls). "0" admits anyone.
min_balance = "1"
# Most pending transactions per account.
max_pending_per_account = 1000

[p2p]
# libp2p (TCP + Noise + Yamux). Only validators of the chain and full nodes registered
# on chain (or in genesis `node_peers`) may connect.
listen = "/ip4/0.0.0.0/tcp/26656"
# Peers to dial and keep dialing: "/ip4/10.0.0.2/tcp/26656/p2p/<peer id>".
peers = []
# The network identity; its peer id goes into genesis (validators[].peer_id, hex).
node_key = "keys/node.json"
# Connections open at once (inbound and outbound).
max_connections = 64

[metrics]
# Prometheus text endpoint: GET http://127.0.0.1:9645/metrics; beside it GET /health
# (200 while every part of the node runs) and GET /ready (200 while also synced and
# the data directory is writable; 503 with the reasons otherwise).
addr = "127.0.0.1:9645"
# /ready holds while the committed height is within this many of the best peer's.
ready_max_lag = 2

[admin]
# Admin JSON-RPC methods (fault injection for tests). Keep off in production.
enabled = false

# Ethereum checkpoints (see README, "The Ethereum bridge"). A validator signs with its
# bridge key; a relayer also submits to the contract with a funded Ethereum key.
# [bridge]
# eth_chain_id = 1
# contract = "0x..."                  # from `atonomi bridge deploy`
# key = "keys/bridge.json"            # written by `atonomi init`
# eth_rpc = "http://127.0.0.1:8545"   # relayers only
# relayer_key = "keys/eth.json"       # relayers only: pays gas
# confirmations = 2
# takeover_secs = 30                  # a non-designated relayer waits this long per rank

[storage]
# Heights whose state stays provable (getProof at a height, the bridge's verifier at a
# checkpoint); older state is pruned. At least 128; keep it above twice the chain's
# checkpoint_interval so that every checkpoint on Ethereum stays provable for a while.
state_retention = 2048
# A snapshot of the state every this many heights, taken in the background into
# snapshots/ (`atonomi snapshot import` restores a new home from one); 0: never.
# Below state_retention. The last snapshot_keep of them are kept.
snapshot_interval = 0
snapshot_keep = 2

[consensus]
# No empty-block spin: a height without transactions starts after this long.
heartbeat_ms = 10000
# Propose timeout of round 0 (each later round waits half of it longer).
propose_timeout_ms = 3000
"#;

impl Config {
    /// Parses and checks a configuration file's text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        if text.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge(text.len()));
        }
        let config: Config = toml::from_str(text)?;
        if config.consensus.propose_timeout_ms == 0 || config.consensus.propose_timeout_ms > 600_000
        {
            return Err(ConfigError::Invalid(
                "consensus.propose_timeout_ms must be 1..=600000".into(),
            ));
        }
        if config.consensus.heartbeat_ms > 3_600_000 {
            return Err(ConfigError::Invalid(
                "consensus.heartbeat_ms must be at most 3600000 (one hour)".into(),
            ));
        }
        config.admission.min_balance()?;
        if config.storage.state_retention < MIN_STATE_RETENTION {
            return Err(ConfigError::Invalid(format!(
                "storage.state_retention must be at least {MIN_STATE_RETENTION} heights"
            )));
        }
        let st = &config.storage;
        if st.snapshot_interval >= st.state_retention {
            return Err(ConfigError::Invalid(format!(
                "storage.snapshot_interval ({}) must be below storage.state_retention ({}): a snapshot's height must still be kept when it is taken",
                st.snapshot_interval, st.state_retention
            )));
        }
        if st.snapshot_interval > 0 && st.snapshot_keep == 0 {
            return Err(ConfigError::Invalid(
                "storage.snapshot_keep must be at least 1 when snapshots are taken".into(),
            ));
        }
        if config.admission.max_pending_per_account == 0 {
            return Err(ConfigError::Invalid(
                "admission.max_pending_per_account must be at least 1".into(),
            ));
        }
        let r = &config.rpc;
        if r.max_http_connections == 0
            || r.max_http_connections_per_ip == 0
            || r.max_ws_connections == 0
            || r.max_ws_connections_per_ip == 0
            || r.idle_timeout_secs == 0
        {
            return Err(ConfigError::Invalid(
                "rpc connection limits and idle_timeout_secs must be at least 1".into(),
            ));
        }
        if let Some(p) = &config.p2p {
            if p.max_connections == 0 {
                return Err(ConfigError::Invalid(
                    "p2p.max_connections must be at least 1".into(),
                ));
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_parses_with_its_documented_defaults() {
        let c = Config::parse(CONFIG_TEMPLATE).unwrap();
        assert_eq!(c.rpc.addr, DEFAULT_RPC);
        assert_eq!(c.consensus.heartbeat_ms, 10_000);
        assert!(!c.admin.enabled);
        assert_eq!(c.storage.state_retention, 2048);
        assert_eq!(c.p2p.unwrap().max_connections, 64);
    }

    #[test]
    fn unknown_fields_bad_values_and_oversize_are_refused() {
        assert!(matches!(
            Config::parse(&CONFIG_TEMPLATE.replace("[admin]", "[admin]\nlol = 1")),
            Err(ConfigError::Toml(_))
        ));
        assert!(matches!(
            Config::parse(
                &CONFIG_TEMPLATE.replace("state_retention = 2048", "state_retention = 100")
            ),
            Err(ConfigError::Invalid(_))
        ));
        assert!(matches!(
            Config::parse(
                &CONFIG_TEMPLATE.replace("propose_timeout_ms = 3000", "propose_timeout_ms = 0")
            ),
            Err(ConfigError::Invalid(_))
        ));
        assert!(matches!(
            Config::parse(&" ".repeat(MAX_CONFIG_BYTES + 1)),
            Err(ConfigError::TooLarge(_))
        ));
    }
}
