//! `atonomi`: the Atonomi ledger's command-line tool.

use anyhow::Result;
use atonomi_node::launch as node;
use atonomi_node::{bridge, keys, snapshot};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

mod client;
mod verify;

/// Atonomi ledger: immutable identity, reputation and payments for IoT devices.
#[derive(Debug, Parser)]
#[command(name = "atonomi", version, about, long_about = None)]
struct Cli {
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `atonomi=debug`.
    #[arg(
        long,
        env = "ATONOMI_LOG",
        default_value = "info,arc_malachitebft_core_consensus=warn,arc_malachitebft_core_driver=warn,arc_malachitebft_core_votekeeper=warn",
        global = true
    )]
    log: String,
    /// Log format: `text` for people, `json` for log pipelines.
    #[arg(long, env = "ATONOMI_LOG_FORMAT", default_value = "text", global = true, value_parser = ["text", "json"])]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a single-validator development chain on the embedded dev genesis. On
    /// first start writes the demo keys (admin, validator, manufacturer, auditor, alice,
    /// bob) to HOME/keys; restarting with the same --home continues the chain. Prints
    /// the RPC URL and what to try next.
    Dev {
        /// Data and key directory.
        #[arg(long, env = "ATONOMI_HOME", default_value = ".atonomi-dev")]
        home: PathBuf,
        /// JSON-RPC listen address (HTTP and WebSocket).
        #[arg(long, env = "ATONOMI_RPC_ADDR")]
        rpc_addr: Option<std::net::SocketAddr>,
        /// Serve Prometheus metrics on this address (GET /metrics).
        #[arg(long, env = "ATONOMI_METRICS_ADDR")]
        metrics_addr: Option<std::net::SocketAddr>,
    },
    /// Create a node home: a commented config.toml, a validator key, a network key and an
    /// Ethereum bridge key (keys/bridge.json); copies the
    /// genesis file when given.
    Init {
        /// The node's home directory (created if missing).
        #[arg(long, env = "ATONOMI_HOME")]
        home: PathBuf,
        /// Genesis file to copy into the home as genesis.json.
        #[arg(long, env = "ATONOMI_GENESIS")]
        genesis: Option<PathBuf>,
        /// Overwrite an existing config.toml (keys are kept).
        #[arg(long)]
        force: bool,
    },
    /// Run a node from its home (config.toml, genesis.json, keys/).
    Run {
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
    },
    /// Sign a transaction with a key file, submit it, wait until it is final and print
    /// its receipt (exit status 1 when it failed). CALL is one of the 23 calls as JSON;
    /// `--help` lists each with its shape.
    ///
    /// The token calls also come as subcommands with named flags and amounts in ATMI,
    /// e.g. `atonomi tx transfer --key alice.json --to ACCOUNT --amount 1.5`.
    #[command(after_long_help = CALL_SHAPES)]
    Tx {
        /// Node JSON-RPC URL.
        #[arg(
            long,
            env = "ATONOMI_RPC",
            default_value = "http://127.0.0.1:8645",
            global = true
        )]
        rpc: String,
        /// Key file of the signer.
        #[arg(long, env = "ATONOMI_KEY", global = true)]
        key: Option<PathBuf>,
        /// For activate_device and register_and_activate: the device's key file. Its
        /// signature of consent to the owner (the signer, or register_and_activate's
        /// `owner`) fills device_signature, which the JSON may then leave out.
        #[arg(long)]
        device_key: Option<PathBuf>,
        /// Seconds to wait for finality. A transaction the node dropped (its nonce was
        /// used by another one, or it was replaced) fails at once, saying why.
        #[arg(long, default_value_t = 60)]
        wait: u64,
        /// Sign with this nonce instead of the account's next nonce read from the node.
        #[arg(long, global = true)]
        nonce: Option<u64>,
        /// The call as JSON (`--help` lists all 23 shapes).
        call: Option<String>,
        #[command(subcommand)]
        named: Option<TokenCall>,
    },
    /// Read from a node over JSON-RPC and print JSON.
    #[command(subcommand)]
    Query(QueryCommand),
    /// Print the device id of a (salt, hardware id) pair.
    ///
    /// The id is blake3 in key-derivation mode with the context string
    /// "atonomi 2026 device id v1", over the salt's length in bytes (u64,
    /// little-endian), the salt, then the hardware id — all as UTF-8 bytes of the
    /// arguments. The length prefix keeps ("ab", "c") and ("a", "bc") apart. The device
    /// SDK and the client libraries derive the same id.
    DeviceId {
        /// The manufacturer's secret salt.
        salt: String,
        /// The device's hardware identifier (serial number, MAC, …).
        hardware_id: String,
    },
    /// Run the runtime on the embedded dev genesis, on RocksDB in --home: registers a
    /// device whitelist, activates a device with its key, writes reputation, validates
    /// the device, pays between devices, and proves the device record against the
    /// state root. Prints each step as JSON.
    Demo {
        /// Data directory (created if missing; a fresh temporary one if omitted).
        #[arg(long, env = "ATONOMI_HOME")]
        home: Option<PathBuf>,
    },
    /// Create and inspect key files (ed25519; JSON with the account and secret seed).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Governance for admins: propose, approve, show; change named parameters only.
    #[command(subcommand)]
    Gov(GovCommand),
    /// Print a shell completion script, e.g. `atonomi completions bash >
    /// ~/.local/share/bash-completion/completions/atonomi` (zsh: a file named _atonomi
    /// in your $fpath; fish: ~/.config/fish/completions/atonomi.fish).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Check a genesis file, or print the embedded dev genesis as a template.
    #[command(subcommand)]
    Genesis(GenesisCommand),
    /// Benchmarks that print figures.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Verify chain state against an Ethereum checkpoint (trusting only the contract).
    #[command(subcommand)]
    Verify(VerifyCommand),
    /// Ethereum bridge tools: deploy the checkpoint contract, print the genesis set.
    #[command(subcommand)]
    Bridge(BridgeCommand),
    /// State snapshots: export the state of a kept height as verifiable chunks, or
    /// restore a new node home from one.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Run the reference auditor: read events and the node's lookup log, score devices
    /// (anomalies divide a score by 4, steady activity adds 250) and write reputation
    /// once per epoch. Keeps its own state file; safe to kill and restart.
    ///
    /// Example (dev chain): atonomi auditor --rpc http://127.0.0.1:8645
    ///   --key ~/.atonomi/dev/keys/auditor.json --auditor-id 1 --state auditor.json
    Auditor {
        /// JSON-RPC URL of a node.
        #[arg(long, default_value = "http://127.0.0.1:8645")]
        rpc: String,
        /// Key file of one of the auditor's keys.
        #[arg(long)]
        key: PathBuf,
        /// The auditor's id on chain.
        #[arg(long)]
        auditor_id: u32,
        /// The auditor's state file (created if missing; written atomically).
        #[arg(long)]
        state: PathBuf,
        /// Heights per epoch: scores are written at the end of each.
        #[arg(long, default_value_t = 10)]
        epoch_blocks: u64,
        /// Heights over which failure reports, refused payments and transfers count.
        #[arg(long, default_value_t = 1_000)]
        window_blocks: u64,
        /// The reputation type written (the chain's payment reputation type by default).
        #[arg(long, default_value = "trust")]
        rep_type: String,
        /// How often to poll the node, in milliseconds.
        #[arg(long, default_value_t = 500)]
        poll_ms: u64,
    },
}

#[derive(Debug, Subcommand)]
enum BridgeCommand {
    /// Deploy the checkpoint contract (bridge/eth/build, see scripts/eth-tools.sh)
    /// trusting the genesis validators' bridge keys; prints its address and chain id.
    Deploy {
        /// Ethereum JSON-RPC URL.
        #[arg(long, env = "ATONOMI_ETH_RPC")]
        eth_rpc: String,
        /// Bridge key file (secp256k1) of a funded Ethereum account paying the deployment.
        #[arg(long)]
        eth_key: PathBuf,
        /// The chain's genesis file: its validators' bridge keys become the contract's first set.
        #[arg(long)]
        genesis: PathBuf,
    },
    /// Print the genesis validators' bridge set (addresses, powers) and its hash.
    SetHash {
        /// The chain's genesis file.
        #[arg(long)]
        genesis: PathBuf,
    },
    /// Write a new secp256k1 bridge key file (0600) and print its address.
    NewKey {
        /// Where to write the key file.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum VerifyCommand {
    /// Prove a device's record (or its absence) at the latest checkpoint on Ethereum:
    /// reads the checkpoint from the contract (at the `finalized` tag by default),
    /// fetches the proof from any node, checks the header against the checkpoint's
    /// block hash and the record against its state root, and prints the verified record.
    ///
    /// "verified" means: this was the record as of the checkpoint's height, not
    /// necessarily now — a device revoked after that height still shows as it was. Every
    /// answer gives the checkpoint's height, its time (from the proven header) and its
    /// age; --max-age refuses an answer from a checkpoint older than you accept.
    Device {
        /// Ethereum JSON-RPC URL.
        #[arg(long, env = "ATONOMI_ETH_RPC")]
        eth_rpc: String,
        /// The checkpoint contract's address.
        #[arg(long, env = "ATONOMI_BRIDGE_CONTRACT")]
        contract: String,
        /// The device id (64 hex characters).
        #[arg(long)]
        device: String,
        /// Any Atonomi node's JSON-RPC URL (not trusted).
        #[arg(long, default_value = "http://127.0.0.1:8645")]
        rpc: String,
        /// Ethereum block tag to read the checkpoint at: finalized, safe or latest.
        #[arg(long, default_value = "finalized")]
        block: String,
        /// Fail (exit 1, nothing printed as verified) when the checkpoint is older than
        /// this: seconds with a unit (`90s`, `15m`, `2h`; measured from the proven
        /// header's timestamp to this machine's clock) or a number of blocks (`300`;
        /// behind the node's head, which the node reports and could understate).
        #[arg(long)]
        max_age: Option<String>,
    },
}

/// The shape of every call, as `atonomi tx --help` prints it (a test parses each).
/// ACCOUNT, DEVICE and HASH stand for 64 hex digits, SIG for 128, ETH_SIG for 130.
const CALL_SHAPES: &str = r#"The 23 calls (who signs; amounts are base units, 10^-18 ATMI, as decimal strings):

Token (anyone)
  {"transfer":{"to":"ACCOUNT","amount":"1000000000000000000"}}
  {"approve":{"spender":"ACCOUNT","amount":"1000"}}
  {"transfer_from":{"from":"ACCOUNT","to":"ACCOUNT","amount":"1000"}}
  {"burn":{"amount":"1000"}}
  {"deposit_to_pool":{"manufacturer":1,"amount":"1000"}}
Governance (admins; the proposer's call counts as its approval)
  {"propose":{"action":{"change_auditor":{"id":1,"change":"suspend"}}}}
  {"approve_proposal":{"id":1}}
  actions: add_manufacturer, change_manufacturer, add_auditor, change_auditor
  (change: suspend|resume|remove), add_validator, remove_validator,
  set_validator_power, set_params, treasury_payout, set_admins, set_node_peer
  {"propose":{"action":{"set_admins":{"admins":["ACCOUNT"],"threshold":1}}}}
  {"propose":{"action":{"treasury_payout":{"from":"treasury","to":"ACCOUNT","amount":"1000"}}}}
Manufacturer (its key)
  {"register_devices":{"manufacturer":1,"devices":[{"device_id":"DEVICE","public_key":"ACCOUNT","protocols":["mqtt"],"metadata":[]}]}}
  {"register_and_activate":{"manufacturer":1,"device":{"device_id":"DEVICE","public_key":"ACCOUNT","protocols":["mqtt"],"metadata":[]},"owner":"ACCOUNT"}}   with --device-key
  {"suspend_device":{"device":"DEVICE"}}
  {"resume_device":{"device":"DEVICE"}}
  {"revoke_device":{"device":"DEVICE"}}
Owner
  {"activate_device":{"device":"DEVICE"}}   with --device-key (the signer becomes the owner)
  {"transfer_device":{"device":"DEVICE","to":"ACCOUNT","with_wallet":false}}
  {"set_attributes":{"device":"DEVICE","attributes":{"per_tx_limit":"1000","data_policy":"any"}}}
  {"set_wallet":{"device":"DEVICE","wallet":"ACCOUNT"}}
  {"register_service":{"device":"DEVICE","service_type":"weather","price":"1000","unit":"reading","area":null,"metadata":[],"expiry":100000}}
  {"withdraw_service":{"device":"DEVICE","service_type":"weather"}}
Auditor (its key)
  {"write_reputation":{"auditor":1,"entries":[{"subject":{"device":"DEVICE"},"rep_type":"trust","score":8000,"direction":"up"}]}}
Device (the device's own key)
  {"pay":{"from_device":"DEVICE","to_device":"DEVICE","amount":"2000000000000000000","memo":[]}}
  {"anchor_log":{"device":"DEVICE","hash":"HASH","kind":"batch","parties":[]}}
  {"report_interaction":{"device":"DEVICE","peer":"DEVICE","outcome":"success","receipt":"HASH"}}
Validator (its consensus key; the node's relayer sends it)
  {"sign_checkpoint":{"epoch":1,"height":100,"block_hash":"HASH","state_root":"HASH","next_set_hash":"HASH","signature":"ETH_SIG"}}

ACCOUNT, DEVICE and HASH are 64 hex digits (`atonomi keys show FILE`, `atonomi device-id SALT HW_ID`)."#;

#[derive(Debug, clap::Args)]
struct RpcArg {
    /// Node JSON-RPC URL.
    #[arg(long, env = "ATONOMI_RPC", default_value = "http://127.0.0.1:8645")]
    rpc: String,
}

#[derive(Debug, Subcommand)]
enum QueryCommand {
    /// Chain id, height, latest block, state root, validators, mempool size.
    Status(RpcArg),
    /// A block (header, transaction hashes, commit certificate) by height or hash.
    Block {
        #[command(flatten)]
        rpc: RpcArg,
        /// A height, or a block hash (64 hex digits).
        id: String,
    },
    /// A transaction's receipt (or "pending").
    Tx {
        #[command(flatten)]
        rpc: RpcArg,
        /// The transaction hash `atonomi tx` or atonomi_sendTransaction returned.
        hash: String,
    },
    /// Balance and next nonce of an account.
    Account {
        #[command(flatten)]
        rpc: RpcArg,
        /// The account (64 hex digits; `atonomi keys show FILE`).
        account: String,
    },
    /// The token: name, symbol, decimals and total supply (base units).
    Token(RpcArg),
    /// How much SPENDER may move of OWNER's tokens (base units; 0 when none).
    Allowance {
        #[command(flatten)]
        rpc: RpcArg,
        /// The account whose tokens may be spent.
        owner: String,
        /// The account allowed to spend them.
        spender: String,
    },
    /// The network parameters in force (fees, limits, reputation rules, bridge).
    Params(RpcArg),
    /// The governance council: admins, approvals needed (threshold) and the next
    /// proposal id.
    Governance(RpcArg),
    /// A governance proposal: its action, proposer, approvals so far and status.
    Proposal {
        #[command(flatten)]
        rpc: RpcArg,
        /// The proposal id (from its proposal_created event or `query proposals`).
        id: u64,
    },
    /// Governance proposals by id, a page at a time (`next` is the id to go on from).
    Proposals {
        #[command(flatten)]
        rpc: RpcArg,
        /// Only pending, executed or failed ones.
        #[arg(long, value_parser = ["pending", "executed", "failed"])]
        status: Option<String>,
        /// The first id to look at.
        #[arg(long)]
        from: Option<u64>,
        /// At most this many (up to 100).
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// The validator set in force, and the one a governance change has scheduled.
    Validators(RpcArg),
    /// Manufacturers by id, a page at a time (`next` is the id to go on from).
    Manufacturers {
        #[command(flatten)]
        rpc: RpcArg,
        /// The first id to list (default: the lowest).
        #[arg(long)]
        from: Option<u32>,
        /// At most this many (up to 100).
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Auditors by id, a page at a time (`next` is the id to go on from).
    Auditors {
        #[command(flatten)]
        rpc: RpcArg,
        /// The first id to list (default: the lowest).
        #[arg(long)]
        from: Option<u32>,
        /// At most this many (up to 100).
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// A manufacturer's record: name, keys, status, fee pool, registration fee, reward
    /// wallet and how many devices it has registered.
    Manufacturer {
        #[command(flatten)]
        rpc: RpcArg,
        /// The manufacturer's number (as in genesis or its AddManufacturer proposal).
        id: u32,
    },
    /// An auditor's record: name, keys, status and reward account.
    Auditor {
        #[command(flatten)]
        rpc: RpcArg,
        /// The auditor's number.
        id: u32,
    },
    /// A device's record: manufacturer, key, status, owner, wallet, attributes.
    Device {
        #[command(flatten)]
        rpc: RpcArg,
        /// The device id (64 hex digits; `atonomi device-id SALT HARDWARE_ID`).
        id: String,
    },
    /// The aggregate reputation of a device of one type.
    Reputation {
        #[command(flatten)]
        rpc: RpcArg,
        /// The device id (64 hex digits).
        device: String,
        /// The reputation type (e.g. trust).
        #[arg(long, default_value = "trust")]
        rep_type: String,
    },
    /// May I trade with this device? (registered, active, reputation, policy)
    ValidateDevice {
        #[command(flatten)]
        rpc: RpcArg,
        /// The device to check (64 hex digits).
        device: String,
        /// The asking device (its data policy applies).
        #[arg(long)]
        requester: Option<String>,
        /// Refuse below this score (0..=10000) on top of the network minimum.
        #[arg(long)]
        min_reputation: Option<u32>,
    },
    /// Active devices offering a service type, optionally in an area and above a
    /// reputation (JSON area: {"min":{"lat_e6":..,"lon_e6":..},"max":{..}}).
    Discover {
        #[command(flatten)]
        rpc: RpcArg,
        /// The service type offered (e.g. weather).
        service_type: String,
        /// Only offers inside this area (JSON, see above).
        #[arg(long)]
        area: Option<String>,
        /// Only devices with at least this score (0..=10000).
        #[arg(long)]
        min_reputation: Option<u32>,
    },
    /// Equivocation evidence recorded by this node (from height --from on).
    Evidence {
        #[command(flatten)]
        rpc: RpcArg,
        /// The first height to list evidence from.
        #[arg(long, default_value_t = 0)]
        from: u64,
    },
    /// Inclusion or non-inclusion proof of a device record, with the header and commit
    /// it is proven against.
    Proof {
        #[command(flatten)]
        rpc: RpcArg,
        /// The device id (64 hex digits) whose record, or absence, is proven.
        device: String,
        /// A kept height to prove at (default: the latest).
        #[arg(long)]
        height: Option<u64>,
    },
}

/// An amount in ATMI with up to 18 decimals (`1.5`), or in base units with the suffix
/// `base` (`15base`).
fn parse_amount(s: &str) -> Result<atonomi_primitives::Amount, String> {
    atonomi_primitives::Amount::parse_atmi(s).ok_or_else(|| {
        format!("{s}: ATMI with up to 18 decimals (1.5), or base units ending in `base` (15base)")
    })
}

/// The token calls with named flags (`atonomi tx transfer --to … --amount 1.5`).
#[derive(Debug, Subcommand)]
enum TokenCall {
    /// Move tokens from the signer to an account.
    Transfer {
        /// The receiving account (64 hex digits).
        #[arg(long)]
        to: String,
        /// ATMI with up to 18 decimals (1.5), or base units ending in `base` (15base).
        #[arg(long, value_parser = parse_amount)]
        amount: atonomi_primitives::Amount,
    },
    /// Let SPENDER move up to this much of the signer's tokens (replaces any earlier
    /// allowance; 0 removes it).
    Approve {
        /// The account allowed to spend (64 hex digits).
        #[arg(long)]
        spender: String,
        /// ATMI with up to 18 decimals, or base units ending in `base`.
        #[arg(long, value_parser = parse_amount)]
        amount: atonomi_primitives::Amount,
    },
    /// As a spender: move an owner's tokens within the allowance it gave you.
    TransferFrom {
        /// The owner whose allowance is used.
        #[arg(long)]
        from: String,
        /// The receiving account.
        #[arg(long)]
        to: String,
        /// ATMI with up to 18 decimals, or base units ending in `base`.
        #[arg(long, value_parser = parse_amount)]
        amount: atonomi_primitives::Amount,
    },
    /// Destroy the signer's own tokens (the total supply falls by as much).
    Burn {
        /// ATMI with up to 18 decimals, or base units ending in `base`.
        #[arg(long, value_parser = parse_amount)]
        amount: atonomi_primitives::Amount,
    },
    /// Add tokens to a manufacturer's pool (it funds reputation rewards).
    DepositToPool {
        /// The manufacturer's number.
        #[arg(long)]
        manufacturer: u32,
        /// ATMI with up to 18 decimals, or base units ending in `base`.
        #[arg(long, value_parser = parse_amount)]
        amount: atonomi_primitives::Amount,
    },
}

impl TokenCall {
    /// The call's JSON, as `atonomi tx CALL` takes it.
    fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            TokenCall::Transfer { to, amount } => {
                json!({ "transfer": { "to": to, "amount": amount } })
            }
            TokenCall::Approve { spender, amount } => {
                json!({ "approve": { "spender": spender, "amount": amount } })
            }
            TokenCall::TransferFrom { from, to, amount } => {
                json!({ "transfer_from": { "from": from, "to": to, "amount": amount } })
            }
            TokenCall::Burn { amount } => json!({ "burn": { "amount": amount } }),
            TokenCall::DepositToPool {
                manufacturer,
                amount,
            } => json!({ "deposit_to_pool": { "manufacturer": manufacturer, "amount": amount } }),
        }
    }
}

/// What every governance transaction needs: the node and the admin's key.
#[derive(Debug, clap::Args)]
struct AdminArgs {
    /// Node JSON-RPC URL.
    #[arg(long, env = "ATONOMI_RPC", default_value = "http://127.0.0.1:8645")]
    rpc: String,
    /// The admin's key file.
    #[arg(long, env = "ATONOMI_KEY")]
    key: PathBuf,
    /// Seconds to wait for finality.
    #[arg(long, default_value_t = 60)]
    wait: u64,
}

#[derive(Debug, Subcommand)]
enum GovCommand {
    /// Open a proposal; it counts as your approval, and the threshold-th approval
    /// executes it. ACTION is JSON, e.g. '{"change_auditor":{"id":1,"change":"suspend"}}'
    /// (the actions are listed in `atonomi tx --help`). Prints the receipt, whose
    /// proposal_created event carries the proposal's id.
    Propose {
        #[command(flatten)]
        admin: AdminArgs,
        /// The governance action as JSON.
        action: String,
    },
    /// Propose new network parameters that change only the named ones: reads those in
    /// force, applies each NAME=VALUE (names as `atonomi query params` prints them;
    /// amounts in base units) and proposes the result. Another set_params executed in
    /// between is overwritten by this one, so check `gov show` before approving.
    SetParams {
        #[command(flatten)]
        admin: AdminArgs,
        /// NAME=VALUE, e.g. registration_fee=2000000000000000000 (repeat for more).
        #[arg(required = true)]
        changes: Vec<String>,
    },
    /// Approve a pending proposal (executes it when yours is the threshold-th approval).
    Approve {
        #[command(flatten)]
        admin: AdminArgs,
        /// The proposal id.
        id: u64,
    },
    /// A proposal: its action, approvals so far, the threshold and its status.
    Show {
        #[command(flatten)]
        rpc: RpcArg,
        /// The proposal id.
        id: u64,
    },
}

#[derive(Debug, Subcommand)]
enum SnapshotCommand {
    /// Write the state of a kept height (default: the latest) of a stopped node as chunk
    /// files, each with its blake3 hash in a manifest.json bound to that height's header
    /// and commit certificate. Heights older than [storage] state_retention are pruned.
    Export {
        /// The stopped node's home directory.
        #[arg(long, env = "ATONOMI_HOME")]
        home: PathBuf,
        /// The kept height to export (default: the latest).
        #[arg(long)]
        height: Option<u64>,
        /// A new or empty directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Restore a node home from a snapshot. The home comes from `atonomi init` with the
    /// chain's genesis.json and has no data yet. Every chunk's hash, every entry, the
    /// state root, the header and its commit certificate are checked before the data
    /// directory appears; a refused snapshot leaves nothing behind. The node then
    /// follows the chain from the snapshot's height. A validator must not import a
    /// height below one it has signed: its double-sign guard starts anew.
    Import {
        /// The new node's home (from `atonomi init`, no data yet).
        #[arg(long, env = "ATONOMI_HOME")]
        home: PathBuf,
        /// The directory `snapshot export` wrote.
        #[arg(long)]
        from: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Generate a new key from the operating system's randomness and write it to --out
    /// (permissions 0600). Prints the account.
    New {
        /// Where to write the key file.
        #[arg(long)]
        out: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Print the account (public key, hex) of a key file.
    Show {
        /// The key file.
        file: PathBuf,
    },
    /// Write one of the dev genesis keys (admin, validator, manufacturer, auditor, alice,
    /// bob). They come from public labels: for dev chains and testnets made with
    /// `genesis new`, never for real value.
    Dev {
        /// admin, validator, manufacturer, auditor, alice or bob.
        name: String,
        /// Where to write the key file.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum GenesisCommand {
    /// Validate a genesis file: schema, every rule the runtime relies on, and print
    /// its summary with the genesis state root (compare it with other operators').
    Validate {
        /// The genesis file (JSON).
        file: PathBuf,
    },
    /// Print the embedded dev genesis (JSON), a starting point for a real one.
    Dev,
    /// Write a genesis: your chain id and validators; governance admins and
    /// threshold, manufacturers, auditors and allocations from the flags, each taken
    /// from the dev genesis (its dev-key admin, demo manufacturer 1 and auditor 1,
    /// funded dev accounts) when its flag is not given — fine for a test network, never
    /// for real value. Check the result with `genesis validate`.
    ///
    /// A 2-of-3 network with its own admins, manufacturer, auditor and treasury:
    ///
    ///   atonomi genesis new --chain-id acme-1 --validator ACCT,PEER --admin A1 --admin A2
    ///     --admin A3 --threshold 2 --manufacturer 1,"Acme Sensors",KEY
    ///     --auditor 1,"Acme Audit",KEY --alloc A1,1000000 --out genesis.json
    New {
        /// The chain id every transaction signs over (letters, digits, - and _).
        #[arg(long, default_value = "atonomi-testnet")]
        chain_id: String,
        /// ACCOUNT,PEER_ID_HEX[,POWER[,BRIDGE_ADDRESS]] for each validator (as printed by
        /// `atonomi init`; the bridge address is its Ethereum checkpoint key). Its
        /// operator is the first manufacturer.
        #[arg(long = "validator", required = true)]
        validators: Vec<String>,
        /// A governance admin's account (repeat for each; `atonomi keys show FILE`
        /// prints it). Replaces the dev admin.
        #[arg(long = "admin")]
        admins: Vec<String>,
        /// Admin approvals a proposal needs (k of the n admins; default 1).
        #[arg(long)]
        threshold: Option<u32>,
        /// ID,NAME,KEY_ACCOUNT of a manufacturer (repeat for each; its key also
        /// receives its rewards). Replaces the demo manufacturer.
        #[arg(long = "manufacturer")]
        manufacturers: Vec<String>,
        /// ID,NAME,KEY_ACCOUNT of an auditor (repeat for each; its key also receives its
        /// rewards). Replaces the demo auditor.
        #[arg(long = "auditor")]
        auditors: Vec<String>,
        /// ACCOUNT,AMOUNT: tokens at genesis, in ATMI (up to 18 decimals, e.g. 1.5) or
        /// base units with the suffix `base` (e.g. 15base). Replaces the dev
        /// allocations; the total supply is their sum.
        #[arg(long = "alloc")]
        allocations: Vec<String>,
        /// PEER_ID_HEX of a full node allowed to connect.
        #[arg(long = "node-peer")]
        node_peers: Vec<String>,
        /// Blocks between Ethereum checkpoints (the `checkpoint_interval` parameter).
        #[arg(long)]
        checkpoint_interval: Option<u64>,
        /// Output file (stdout when omitted).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Runtime execution throughput on RocksDB (transfers, whitelist batches,
    /// reputation writes), including state-root computation and commit, then bytes on
    /// disk per device and point-lookup latency at scale.
    Runtime(atonomi_tools::bench::RuntimeArgs),
    /// Open-loop load against running nodes: pre-signs transfers (default), whitelist
    /// batches (--devices-per-tx), reputation-write batches (--reputation-per-tx) or
    /// device payments (--payers), submits them in JSON-RPC batches at --rate tx/s,
    /// follows finality through a block subscription, and prints one JSON line with
    /// finalized tx/s, commit latency p50/p90/p99 and a sample of receipt outcomes.
    Load(atonomi_tools::load::LoadArgs),
    /// Closed-loop atonomi_validateDevice lookups against one node (single requests or
    /// JSON-RPC batches, several connections); prints lookups/s and request p50/p99.
    Lookups(atonomi_tools::load::LookupArgs),
    /// The Ethereum baseline under the same open-loop method: the original per-device
    /// registry on a running anvil, one transaction per device at --rate; one JSON line
    /// with devices/s, gas per device and inclusion latency.
    Eth(atonomi_tools::eth_load::EthArgs),
    /// The signature-verification bound of this machine: ed25519 verifications of
    /// transaction signatures per second under the node's rule, one at a time on one
    /// core, in batches on one core and in batches on all cores; one JSON line.
    Verify(atonomi_tools::bench::VerifyArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One readable line with the chain of causes; no backtrace for operators.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)?;
    if cli.log_format == "json" {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    } else {
        // Colours only for a person at a terminal, never into a log file or a pipe.
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .init();
    }
    match cli.command {
        Command::Dev {
            home,
            rpc_addr,
            metrics_addr,
        } => {
            let launch = node::dev_launch(&home, rpc_addr, metrics_addr)?;
            let keys = home.join("keys");
            runtime()?.block_on(node::run(launch, |addr| {
                println!("atonomi dev node: chain atonomi-dev, one validator, data in {}", home.join("data").display());
                println!("JSON-RPC: http://{addr}  (WebSocket: ws://{addr})");
                println!("keys: {}/{{admin,manufacturer,auditor,alice,bob}}.json", keys.display());
                println!("try:  atonomi query status --rpc http://{addr}");
                println!("      atonomi tx --rpc http://{addr} --key {}/alice.json '{{\"transfer\":{{\"to\":\"{}\",\"amount\":\"1000000000000000000\"}}}}'", keys.display(), atonomi_genesis::dev::key("bob").account());
            }))
        }
        Command::Init {
            home,
            genesis,
            force,
        } => node::init(&home, genesis.as_deref(), force),
        Command::Run {
            home,
            rpc_addr,
            p2p_listen,
            metrics_addr,
            byzantine_equivocate,
            byzantine_garbage,
            crash_after_signing_proposal,
            deaf_to_gossip,
        } => {
            let mut launch = node::Launch::from_home(&home, rpc_addr)?;
            if let Some(listen) = p2p_listen {
                match &mut launch.p2p {
                    Some((_, p2p)) => p2p.listen = listen,
                    None => anyhow::bail!(
                        "--p2p-listen given, but {} has no [p2p] section (a node without it runs alone)",
                        home.join("config.toml").display()
                    ),
                }
            }
            if metrics_addr.is_some() {
                launch.metrics = metrics_addr;
            }
            launch.faults = atonomi_node::faults::Faults {
                equivocate: byzantine_equivocate,
                garbage: byzantine_garbage,
                crash_after_signing_proposal,
                deaf_to_gossip,
            };
            runtime()?.block_on(node::run(
                launch,
                |addr| tracing::info!(%addr, "JSON-RPC listening"),
            ))
        }
        Command::Tx {
            rpc,
            key,
            device_key,
            wait,
            nonce,
            call,
            named,
        } => {
            let key = key.ok_or_else(|| {
                anyhow::anyhow!("--key FILE (or ATONOMI_KEY): the signer's key file is needed")
            })?;
            let call = match (call, named) {
                (Some(json), None) => json,
                (None, Some(named)) => named.to_json().to_string(),
                _ => anyhow::bail!(
                    "give the call as JSON or as a subcommand (see `atonomi tx --help`)"
                ),
            };
            runtime()?.block_on(client::send(
                &rpc,
                &key,
                &call,
                device_key.as_deref(),
                std::time::Duration::from_secs(wait),
                nonce,
            ))
        }
        Command::Query(q) => runtime()?.block_on(query(q)),
        Command::Gov(g) => runtime()?.block_on(gov(g)),
        Command::DeviceId { salt, hardware_id } => {
            println!(
                "{}",
                serde_json::json!({ "device_id": client::device_id(&salt, &hardware_id) })
            );
            Ok(())
        }
        Command::Demo { home } => atonomi_tools::demo::run(home),
        Command::Auditor {
            rpc,
            key,
            auditor_id,
            state,
            epoch_blocks,
            window_blocks,
            rep_type,
            poll_ms,
        } => runtime()?.block_on(atonomi_auditor::run(
            atonomi_auditor::AuditorConfig {
                rpc,
                key,
                auditor: atonomi_primitives::AuditorId::new(auditor_id),
                state,
                epoch_blocks,
                window_blocks,
                rep_type,
                poll: std::time::Duration::from_millis(poll_ms.max(10)),
            },
            atonomi_node::launch::shutdown_signal(),
        )),
        Command::Bridge(BridgeCommand::Deploy {
            eth_rpc,
            eth_key,
            genesis,
        }) => {
            let g = node::load_genesis(&genesis)?;
            runtime()?.block_on(bridge::deploy_cli(&eth_rpc, &eth_key, &g))
        }
        Command::Bridge(BridgeCommand::SetHash { genesis }) => {
            let set = bridge::genesis_set(&node::load_genesis(&genesis)?);
            println!(
                "{}",
                serde_json::json!({ "set_hash": set.hash(), "validators": set.validators, "powers": set.powers })
            );
            Ok(())
        }
        Command::Bridge(BridgeCommand::NewKey { out }) => {
            let k = alloy::signers::local::PrivateKeySigner::random();
            keys::bridge::write(&out, &k, false)?;
            println!("{}", serde_json::json!({ "address": k.address() }));
            Ok(())
        }
        Command::Verify(VerifyCommand::Device {
            eth_rpc,
            contract,
            device,
            rpc,
            block,
            max_age,
        }) => {
            let max_age = max_age.as_deref().map(verify::MaxAge::parse).transpose()?;
            runtime()?.block_on(verify::device(
                &eth_rpc, &contract, &device, &rpc, &block, max_age,
            ))
        }
        Command::Bench(BenchCommand::Runtime(args)) => atonomi_tools::bench::runtime(args),
        Command::Bench(BenchCommand::Verify(args)) => atonomi_tools::bench::verify(args),
        Command::Bench(BenchCommand::Eth(args)) => {
            runtime()?.block_on(atonomi_tools::eth_load::run(args))
        }
        Command::Bench(BenchCommand::Load(args)) => {
            runtime()?.block_on(atonomi_tools::load::run(args))
        }
        Command::Bench(BenchCommand::Lookups(args)) => {
            runtime()?.block_on(atonomi_tools::load::lookups(args))
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "atonomi",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Keys(KeysCommand::New { out, force }) => {
            let key = atonomi_primitives::Keypair::generate()?;
            keys::write(&out, &key, force)?;
            println!(
                "{}",
                serde_json::json!({ "account": key.account(), "file": out })
            );
            Ok(())
        }
        Command::Keys(KeysCommand::Dev { name, out }) => {
            if !atonomi_genesis::dev::NAMES.contains(&name.as_str()) {
                anyhow::bail!(
                    "{name} is not a dev key; one of {:?}",
                    atonomi_genesis::dev::NAMES
                );
            }
            let key = atonomi_genesis::dev::key(&name);
            keys::write(&out, &key, false)?;
            println!("{}", serde_json::json!({ "account": key.account() }));
            Ok(())
        }
        Command::Keys(KeysCommand::Show { file }) => {
            let key = keys::read(&file)?;
            println!("{}", serde_json::json!({ "account": key.account() }));
            Ok(())
        }
        Command::Snapshot(SnapshotCommand::Export { home, height, out }) => {
            println!("{}", snapshot::export(&home, height, &out)?);
            Ok(())
        }
        Command::Snapshot(SnapshotCommand::Import { home, from }) => {
            println!("{}", snapshot::import(&home, &from)?);
            Ok(())
        }
        Command::Genesis(GenesisCommand::Validate { file }) => genesis_validate(&file),
        Command::Genesis(GenesisCommand::New {
            chain_id,
            validators,
            admins,
            threshold,
            manufacturers,
            auditors,
            allocations,
            node_peers,
            checkpoint_interval,
            out,
        }) => genesis_new(
            &chain_id,
            &validators,
            &Members {
                admins,
                threshold,
                manufacturers,
                auditors,
                allocations,
            },
            node_peers,
            checkpoint_interval,
            out.as_deref(),
        ),
        Command::Genesis(GenesisCommand::Dev) => {
            println!("{}", atonomi_genesis::dev::genesis().to_json());
            Ok(())
        }
    }
}

/// What `genesis new` takes from its flags instead of the dev genesis.
struct Members {
    admins: Vec<String>,
    threshold: Option<u32>,
    manufacturers: Vec<String>,
    auditors: Vec<String>,
    allocations: Vec<String>,
}

fn parse_account(flag: &str, s: &str) -> Result<atonomi_primitives::AccountId> {
    use anyhow::Context;
    s.trim()
        .parse()
        .with_context(|| format!("{flag} {s}: not an account (64 hex digits)"))
}

/// `ID,NAME,KEY` of a manufacturer or auditor (the name may hold commas).
fn parse_member(flag: &str, s: &str) -> Result<(u32, String, atonomi_primitives::AccountId)> {
    use anyhow::Context;
    let (id, rest) = s
        .split_once(',')
        .with_context(|| format!("{flag} {s}: expected ID,NAME,KEY_ACCOUNT"))?;
    let (name, key) = rest
        .rsplit_once(',')
        .with_context(|| format!("{flag} {s}: expected ID,NAME,KEY_ACCOUNT"))?;
    let id = id
        .trim()
        .parse()
        .with_context(|| format!("{flag} {s}: the id is a number"))?;
    Ok((id, name.trim().to_string(), parse_account(flag, key)?))
}

impl Members {
    fn apply(&self, g: &mut atonomi_genesis::Genesis) -> Result<()> {
        use anyhow::Context;
        use atonomi_primitives::gov::{NewAuditor, NewManufacturer};
        use atonomi_primitives::{Amount, AuditorId, ManufacturerId};
        if !self.admins.is_empty() {
            g.governance.admins = self
                .admins
                .iter()
                .map(|a| parse_account("--admin", a))
                .collect::<Result<_>>()?;
            g.governance.threshold = 1;
        }
        if let Some(k) = self.threshold {
            g.governance.threshold = k;
        }
        if !self.manufacturers.is_empty() {
            g.manufacturers = self
                .manufacturers
                .iter()
                .map(|m| {
                    let (id, name, key) = parse_member("--manufacturer", m)?;
                    Ok(NewManufacturer {
                        id: ManufacturerId::new(id),
                        name,
                        keys: vec![key],
                        registration_fee: None,
                        default_score: atonomi_genesis::DEFAULT_MANUFACTURER_SCORE,
                        reward_wallet: key,
                        metadata: vec![],
                    })
                })
                .collect::<Result<_>>()?;
        }
        if !self.auditors.is_empty() {
            g.auditors = self
                .auditors
                .iter()
                .map(|a| {
                    let (id, name, key) = parse_member("--auditor", a)?;
                    Ok(NewAuditor {
                        id: AuditorId::new(id),
                        name,
                        keys: vec![key],
                        reward_account: key,
                        metadata: vec![],
                    })
                })
                .collect::<Result<_>>()?;
        }
        if !self.allocations.is_empty() {
            let mut total = Amount::ZERO;
            g.allocations = self
                .allocations
                .iter()
                .map(|a| {
                    let (account, amount) = a
                        .split_once(',')
                        .with_context(|| format!("--alloc {a}: expected ACCOUNT,AMOUNT"))?;
                    let amount = Amount::parse_atmi(amount.trim()).with_context(|| {
                        format!("--alloc {a}: the amount is ATMI with up to 18 decimals, or base units ending in `base`")
                    })?;
                    total = total
                        .checked_add(amount)
                        .with_context(|| "--alloc: the allocations overflow".to_string())?;
                    Ok(atonomi_genesis::Allocation {
                        account: parse_account("--alloc", account)?,
                        amount,
                    })
                })
                .collect::<Result<_>>()?;
            g.token.total_supply = total;
        }
        Ok(())
    }
}

fn genesis_new(
    chain_id: &str,
    validators: &[String],
    members: &Members,
    node_peers: Vec<String>,
    checkpoint_interval: Option<u64>,
    out: Option<&std::path::Path>,
) -> Result<()> {
    use anyhow::Context;
    let mut g = atonomi_genesis::dev::genesis();
    g.chain_id = atonomi_primitives::ChainId::new(chain_id)
        .map_err(|e| anyhow::anyhow!("--chain-id: {e}"))?;
    members.apply(&mut g)?;
    let operator = g
        .manufacturers
        .first()
        .map_or(atonomi_genesis::dev::MANUFACTURER, |m| m.id);
    g.validators = validators
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let parts: Vec<&str> = v.split(',').collect();
            anyhow::ensure!(
                (2..=4).contains(&parts.len()),
                "--validator {v}: expected ACCOUNT,PEER_ID_HEX[,POWER[,BRIDGE_ADDRESS]]"
            );
            let consensus_key = parse_account("--validator", parts[0])?;
            let peer_id =
                hex::decode(parts[1]).with_context(|| format!("--validator {i}: peer id hex"))?;
            let power = match parts.get(2) {
                Some(p) => p
                    .parse()
                    .with_context(|| format!("--validator {i}: power"))?,
                None => 1,
            };
            let bridge_address: [u8; 20] = match parts.get(3) {
                Some(a) => hex::decode(a.trim_start_matches("0x"))
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .with_context(|| {
                        format!("--validator {i}: bridge address is 20 bytes of hex")
                    })?,
                None => [0; 20],
            };
            Ok(atonomi_primitives::state::Validator {
                consensus_key,
                peer_id,
                bridge_address,
                power,
                operator,
            })
        })
        .collect::<Result<_>>()?;
    g.node_peers = node_peers;
    if let Some(i) = checkpoint_interval {
        g.params.checkpoint_interval = i;
    }
    g.validate()?;
    let json = g.to_json();
    match out {
        Some(p) => std::fs::write(p, json).with_context(|| format!("writing {}", p.display()))?,
        None => println!("{json}"),
    }
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// A command-line value as the type a method takes (ids are hex, as in JSON).
fn arg<T: serde::de::DeserializeOwned>(name: &str, value: &str) -> Result<T> {
    let v = serde_json::from_value(serde_json::Value::String(value.to_string()));
    v.map_err(|e| anyhow::anyhow!("{name} {value:?}: {e}"))
}

fn score(name: &str, v: Option<u32>) -> Result<Option<atonomi_primitives::Score>> {
    v.map(|v| {
        atonomi_primitives::Score::new(v)
            .ok_or_else(|| anyhow::anyhow!("{name}: at most {}", atonomi_primitives::Score::MAX))
    })
    .transpose()
}

async fn query(q: QueryCommand) -> Result<()> {
    use atonomi_api::rpc::{
        BlockId, DiscoverParams, ListPage, ListProposals, StatusFilter, ValidateParams,
    };
    use atonomi_client::{Answered, AtonomiApiClient};
    use atonomi_primitives::state::{StateKey, Subject};
    use client::print;
    let node = |url: &str| atonomi_client::Node::connect(url);
    match q {
        QueryCommand::Status(r) => {
            let n = node(&r.rpc)?;
            print(&n.rpc().status().await.or_node(&n)?)
        }
        QueryCommand::Block { rpc, id } => {
            let n = node(&rpc.rpc)?;
            let id = match id.parse::<u64>() {
                Ok(h) => BlockId::Height(h),
                Err(_) => BlockId::Hash(client::parse_hash(&id)?),
            };
            print(&n.rpc().get_block(id).await.or_node(&n)?)
        }
        QueryCommand::Tx { rpc, hash } => {
            let n = node(&rpc.rpc)?;
            let hash = client::parse_hash(&hash)?;
            print(&n.rpc().get_transaction(hash).await.or_node(&n)?)
        }
        QueryCommand::Account { rpc, account } => {
            let n = node(&rpc.rpc)?;
            let account = arg("account", &account)?;
            print(&n.rpc().get_account(account).await.or_node(&n)?)
        }
        QueryCommand::Manufacturer { rpc, id } => {
            let n = node(&rpc.rpc)?;
            print(&n.rpc().get_manufacturer(id).await.or_node(&n)?)
        }
        QueryCommand::Auditor { rpc, id } => {
            let n = node(&rpc.rpc)?;
            print(&n.rpc().get_auditor(id).await.or_node(&n)?)
        }
        QueryCommand::Device { rpc, id } => {
            let n = node(&rpc.rpc)?;
            let device = arg("device", &id)?;
            print(&n.rpc().get_device(device).await.or_node(&n)?)
        }
        QueryCommand::Reputation {
            rpc,
            device,
            rep_type,
        } => {
            let n = node(&rpc.rpc)?;
            let subject = Subject::Device(arg("device", &device)?);
            print(
                &n.rpc()
                    .get_reputation(subject, rep_type)
                    .await
                    .or_node(&n)?,
            )
        }
        QueryCommand::ValidateDevice {
            rpc,
            device,
            requester,
            min_reputation,
        } => {
            let n = node(&rpc.rpc)?;
            let query = ValidateParams {
                device: arg("device", &device)?,
                requester: requester.map(|r| arg("--requester", &r)).transpose()?,
                min_reputation: score("--min-reputation", min_reputation)?,
            };
            print(&n.rpc().validate_device(query).await.or_node(&n)?)
        }
        QueryCommand::Discover {
            rpc,
            service_type,
            area,
            min_reputation,
        } => {
            let n = node(&rpc.rpc)?;
            let area = match area {
                Some(a) => {
                    Some(serde_json::from_str(&a).map_err(|e| anyhow::anyhow!("--area: {e}"))?)
                }
                None => None,
            };
            let query = DiscoverParams {
                service_type,
                area,
                min_reputation: score("--min-reputation", min_reputation)?,
                limit: None,
            };
            print(&n.rpc().discover(query).await.or_node(&n)?)
        }
        QueryCommand::Evidence { rpc, from } => {
            let n = node(&rpc.rpc)?;
            print(&n.rpc().get_evidence(Some(from)).await.or_node(&n)?)
        }
        QueryCommand::Token(r) => {
            let n = node(&r.rpc)?;
            print(&n.rpc().get_token().await.or_node(&n)?)
        }
        QueryCommand::Allowance {
            rpc,
            owner,
            spender,
        } => {
            let n = node(&rpc.rpc)?;
            let (owner, spender) = (arg("owner", &owner)?, arg("spender", &spender)?);
            print(&n.rpc().get_allowance(owner, spender).await.or_node(&n)?)
        }
        QueryCommand::Params(r) => {
            let n = node(&r.rpc)?;
            print(&n.rpc().get_params().await.or_node(&n)?)
        }
        QueryCommand::Governance(r) => {
            let n = node(&r.rpc)?;
            print(&n.rpc().get_governance().await.or_node(&n)?)
        }
        QueryCommand::Proposal { rpc, id } => {
            let n = node(&rpc.rpc)?;
            print(&n.rpc().get_proposal(id).await.or_node(&n)?)
        }
        QueryCommand::Proposals {
            rpc,
            status,
            from,
            limit,
        } => {
            let n = node(&rpc.rpc)?;
            let status: Option<StatusFilter> = status.map(|s| arg("--status", &s)).transpose()?;
            let filter = ListProposals {
                status,
                from,
                limit: Some(limit),
            };
            print(&n.rpc().list_proposals(filter).await.or_node(&n)?)
        }
        QueryCommand::Validators(r) => {
            let n = node(&r.rpc)?;
            print(&n.rpc().get_validators().await.or_node(&n)?)
        }
        QueryCommand::Manufacturers { rpc, from, limit } => {
            let n = node(&rpc.rpc)?;
            let page = ListPage {
                from,
                limit: Some(limit),
            };
            print(&n.rpc().list_manufacturers(page).await.or_node(&n)?)
        }
        QueryCommand::Auditors { rpc, from, limit } => {
            let n = node(&rpc.rpc)?;
            let page = ListPage {
                from,
                limit: Some(limit),
            };
            print(&n.rpc().list_auditors(page).await.or_node(&n)?)
        }
        QueryCommand::Proof {
            rpc,
            device,
            height,
        } => {
            let n = node(&rpc.rpc)?;
            let key = StateKey::Device(arg("device", &device)?);
            print(&n.rpc().get_proof(key, height).await.or_node(&n)?)
        }
    }
}

async fn gov(g: GovCommand) -> Result<()> {
    use serde_json::json;
    let tx = |admin: &AdminArgs, call: serde_json::Value| {
        let (rpc, key, wait) = (admin.rpc.clone(), admin.key.clone(), admin.wait);
        async move {
            client::send(
                &rpc,
                &key,
                &call.to_string(),
                None,
                std::time::Duration::from_secs(wait),
                None,
            )
            .await
        }
    };
    match g {
        GovCommand::Propose { admin, action } => {
            let action: serde_json::Value = serde_json::from_str(&action)
                .map_err(|e| anyhow::anyhow!("the action is not JSON: {e}"))?;
            tx(&admin, json!({ "propose": { "action": action } })).await
        }
        GovCommand::SetParams { admin, changes } => {
            let node = atonomi_client::Node::connect(&admin.rpc)?;
            let params = client::params_changed(&node, &changes).await?;
            tx(
                &admin,
                json!({ "propose": { "action": { "set_params": params } } }),
            )
            .await
        }
        GovCommand::Approve { admin, id } => {
            tx(&admin, json!({ "approve_proposal": { "id": id } })).await
        }
        GovCommand::Show { rpc, id } => {
            use atonomi_client::{Answered, AtonomiApiClient};
            let node = atonomi_client::Node::connect(&rpc.rpc)?;
            let p = node.rpc().get_proposal(id).await.or_node(&node)?;
            let g = node.rpc().get_governance().await.or_node(&node)?;
            let mut p = serde_json::to_value(p)?;
            p["threshold"] = g.threshold.into();
            client::print(&p)
        }
    }
}

fn genesis_validate(file: &std::path::Path) -> Result<()> {
    use anyhow::Context;
    let meta = std::fs::metadata(file).with_context(|| format!("reading {}", file.display()))?;
    anyhow::ensure!(
        meta.len() <= atonomi_genesis::MAX_GENESIS_BYTES as u64,
        "{} is {} bytes; the limit is {}",
        file.display(),
        meta.len(),
        atonomi_genesis::MAX_GENESIS_BYTES
    );
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let g = atonomi_genesis::Genesis::from_json(&bytes)?;
    let diff = atonomi_runtime::genesis_diff(&g.state())?;
    let db = atonomi_storage::StateDb::open(atonomi_storage::MemoryStore::new())?;
    let root = db.commit(&diff, 0)?;
    println!(
        "{}",
        serde_json::json!({
            "valid": true,
            "chain_id": g.chain_id,
            "validators": g.validators.len(),
            "total_power": g.validators.iter().map(|v| u128::from(v.power)).sum::<u128>().to_string(),
            "admins": g.governance.admins.len(),
            "threshold": g.governance.threshold,
            "total_supply": g.token.total_supply,
            "manufacturers": g.manufacturers.len(),
            "auditors": g.auditors.len(),
            "genesis_state_root": root,
        })
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shape `atonomi tx --help` prints parses as its call, and together they
    /// cover all 23.
    #[test]
    fn every_call_shape_in_the_help_parses() {
        let mut names = std::collections::BTreeSet::new();
        for line in CALL_SHAPES
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with('{'))
        {
            let shape = line.split("   ").next().unwrap_or(line);
            let text = shape
                .replace("ETH_SIG", &"11".repeat(65))
                .replace("ACCOUNT", &"ab".repeat(32))
                .replace("DEVICE", &"cd".repeat(32))
                .replace("HASH", &"ef".repeat(32));
            let mut json: serde_json::Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{shape}: {e}"));
            if line.contains("--device-key") {
                client::leave_room_for_device_signature(&mut json);
            }
            let call: atonomi_primitives::tx::Call =
                serde_json::from_value(json).unwrap_or_else(|e| panic!("{shape}: {e}"));
            names.insert(call.name());
        }
        assert_eq!(names.len(), 23, "{names:?}");
    }

    #[test]
    fn the_cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}

#[cfg(test)]
mod help_tests {
    use super::Cli;
    use clap::CommandFactory;

    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for sub in cmd.get_subcommands() {
            if sub.is_hide_set() || sub.get_name() == "help" {
                continue;
            }
            let here = format!("{path} {}", sub.get_name());
            if sub.get_about().is_none() {
                missing.push(format!("{here}: no help"));
            }
            for arg in sub.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.is_hide_set() || id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{here} <{id}>: no help"));
                }
            }
            walk(sub, &here, missing);
        }
    }

    /// Every subcommand and every flag or argument a person can see says what it is.
    #[test]
    fn every_subcommand_and_argument_has_help() {
        let mut missing = Vec::new();
        walk(&Cli::command(), "atonomi", &mut missing);
        assert!(
            missing.is_empty(),
            "{} without help:\n{}",
            missing.len(),
            missing.join("\n")
        );
    }
}
