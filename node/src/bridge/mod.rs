//! The node's side of the Ethereum bridge.
//!
//! - **Checkpoints** are derived from the chain (`ChainReader::checkpoint_height`): epoch e's
//!   checkpoint is (e, height, block hash, state root, hash of the next height's bridge
//!   set). Every node computes the same ones.
//! - **Signer** (a validator with `[bridge] key`): after each commit it signs the
//!   lowest checkpoint epoch it has not signed yet, with its secp256k1 bridge key, and
//!   records the signature on chain (`SignCheckpoint`, fee-free for validators). One at
//!   a time: the next waits until the previous is committed.
//! - **Relayer** (a node with `eth_rpc` + `relayer_key`): never trusts its memory. Each
//!   round it reads the contract's latest epoch, gathers the on-chain signatures of the
//!   next epoch that match the checkpoint it derives itself and recover to the signing
//!   set's bridge addresses, and once they carry more than 2/3 of the power it dry-runs
//!   the submission (an `EpochNotNext` revert means another relayer was first: success),
//!   signs the Ethereum transaction, records it (epoch, nonce, hash, fees, raw bytes) in
//!   RocksDB *before* broadcasting, then follows it: submitted → confirmed (N blocks) →
//!   final (Ethereum `finalized` tag). After a restart a recorded transaction that is
//!   still pending is waited for, one that vanished (dropped, or reorged out) is
//!   re-broadcast from its recorded bytes, so a checkpoint is never submitted twice by
//!   the same relayer.

pub mod config;

use crate::admit::Admission;
use crate::chain::ChainReader;
use crate::clock::now_ms;
use crate::ingress::NodeEvent;
use crate::mempool::Mailbox;
use crate::mempool::PoolLookup;
use crate::metrics::Metrics;
use alloy::eips::Encodable2718;
use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use atonomi_bridge::contract::IAtonomiCheckpoints;
use atonomi_bridge::{checkpoint_digest, sign_digest, BridgeSet, Checkpoint};
use atonomi_primitives::state::{CheckpointSignature, EthSignature, StateKey, ValidatorSet};
use atonomi_primitives::tx::Call;
use atonomi_primitives::{codec, Hash, Height, Keypair, Transaction};
use atonomi_storage::{Cf, KvStore, WriteBatch};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// What stops a signer or relayer round; the loop logs it, shows it in
/// `atonomi_getBridgeStatus` and tries again a second later.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error(transparent)]
    Chain(#[from] crate::chain::ChainError),
    #[error(transparent)]
    Storage(#[from] atonomi_storage::StorageError),
    #[error("checkpoint block {0} is missing")]
    CheckpointBlock(Height),
    #[error("the relay record of epoch {epoch} is corrupt: {error}")]
    Record {
        epoch: u64,
        error: serde_json::Error,
    },
    #[error("signing checkpoint {epoch}: {error}")]
    Sign {
        epoch: u64,
        error: alloy::signers::Error,
    },
    #[error("Ethereum RPC: {0}")]
    Rpc(#[from] alloy::transports::TransportError),
    #[error("reading the contract's latest epoch: {0}")]
    LatestEpoch(alloy::contract::Error),
    #[error("dry run of checkpoint {epoch} reverted: {error}")]
    DryRun {
        epoch: u64,
        error: alloy::contract::Error,
    },
    #[error("signing the checkpoint transaction: {0}")]
    Envelope(String),
    #[error("--eth-rpc {url}: {reason}")]
    Url { url: String, reason: String },
    #[error("no genesis validator has a bridge address: nothing could ever sign a checkpoint")]
    NoBridgeAddresses,
    #[error(transparent)]
    Deploy(#[from] atonomi_bridge::contract::DeployError),
    #[error(transparent)]
    Key(#[from] crate::keys::BridgeKeyError),
}

type Result<T, E = BridgeError> = std::result::Result<T, E>;

pub use config::{BridgeConfig, BridgeInfo, RelayerConfig};

/// The relayer's latest view, which it publishes for `atonomi_getBridgeStatus`.
pub type RelayerStatus = tokio::sync::watch::Sender<Option<RelayerView>>;

/// How long this relayer waits before submitting epoch `epoch` signed by `signing`:
/// the designated relayer — the validator at index `epoch mod n` of the signing set —
/// not at all; the others by their distance from it in set order (a relayer that is
/// not a validator last), so that takeovers do not race each other.
pub fn takeover_delay(
    epoch: u64,
    signing: &ValidatorSet,
    me: Option<&atonomi_primitives::AccountId>,
    per_rank: Duration,
) -> Duration {
    let n = signing.validators.len().max(1);
    let designated = (epoch % n as u64) as usize;
    let rank = me
        .and_then(|m| {
            signing
                .validators
                .iter()
                .position(|v| &v.consensus_key == m)
        })
        .map_or(n, |i| (i + n - designated) % n);
    per_rank * rank as u32
}

/// The bridge set of a validator set: bridge addresses and powers, in the set's order.
pub fn bridge_set(set: &ValidatorSet) -> BridgeSet {
    BridgeSet {
        validators: set
            .validators
            .iter()
            .map(|v| Address::from(v.bridge_address))
            .collect(),
        powers: set.validators.iter().map(|v| U256::from(v.power)).collect(),
    }
}

/// The checkpoint of `epoch` as this node derives it, with the set that signs it.
pub fn expected_checkpoint(
    chain: &ChainReader,
    epoch: u64,
) -> Result<Option<(Checkpoint, ValidatorSet)>> {
    let Some(h) = chain.checkpoint_height(epoch)? else {
        return Ok(None);
    };
    let block = chain.block(h)?.ok_or(BridgeError::CheckpointBlock(h))?;
    let signing = chain.voting_set_at(h)?;
    let next = chain.voting_set_at(h.next())?;
    let c = Checkpoint {
        epoch,
        height: h.get(),
        block_hash: B256::from(block.hash().0),
        state_root: B256::from(block.header.state_root.0),
        next_set_hash: bridge_set(&next).hash(),
    };
    Ok(Some((c, signing)))
}

/// How long the signer's transaction may wait in the pool before it is gossiped again.
const REGOSSIP_AFTER: Duration = Duration::from_secs(3);

/// What the checkpoint signer reads, submits through and listens to.
#[derive(Debug, Clone)]
pub struct SignerLinks {
    pub chain: ChainReader,
    /// Its signature transactions go in here.
    pub admission: Admission,
    /// Whether its last one is still pending.
    pub mempool: Mailbox,
    /// Each commit wakes it.
    pub events: tokio::sync::broadcast::Sender<NodeEvent>,
}

/// The signer: signs each checkpoint epoch once, in order, recording it on chain.
pub async fn run_signer(
    links: SignerLinks,
    consensus_key: Keypair,
    key: PrivateKeySigner,
    cfg: BridgeConfig,
) {
    let me = consensus_key.account();
    let SignerLinks {
        chain,
        admission,
        mempool,
        events,
    } = links;
    let mut events = events.subscribe();
    // Our signature transaction in the pool, and when it was last gossiped.
    let mut pending: Option<(Hash, Vec<u8>, std::time::Instant)> = None;
    loop {
        match events.recv().await {
            Ok(NodeEvent::Committed { .. }) => {}
            Ok(NodeEvent::Dropped(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(_) => return,
        }
        if let Some((h, bytes, sent)) = &mut pending {
            if matches!(mempool.lookup(*h), Ok(Some(PoolLookup::Pending))) {
                // A validator that proposes no more (one leaving the set) depends on its
                // peers' pools; a gossip lost to a reconnect would leave it waiting.
                if sent.elapsed() > REGOSSIP_AFTER {
                    admission.gossip(bytes.clone());
                    *sent = std::time::Instant::now();
                }
                continue;
            }
            pending = None;
        }
        match next_signature(&chain, &consensus_key, &key, &cfg) {
            Ok(Some(bytes)) => match admission.submit_and_gossip(bytes.clone()) {
                Ok(h) => pending = Some((h, bytes, std::time::Instant::now())),
                Err(e) => tracing::warn!("checkpoint signature not admitted: {e}"),
            },
            Ok(None) => {}
            Err(e) => tracing::warn!(validator = %me, "checkpoint signing: {e:#}"),
        }
    }
}

/// The `SignCheckpoint` transaction for the lowest epoch this validator has not signed.
fn next_signature(
    chain: &ChainReader,
    consensus_key: &Keypair,
    key: &PrivateKeySigner,
    cfg: &BridgeConfig,
) -> Result<Option<Vec<u8>>> {
    let me = consensus_key.account();
    let last = chain.last_checkpoint_epoch()?;
    // Only recent epochs: a validator joining late does not sign history.
    for epoch in last.saturating_sub(16).max(1)..=last {
        let slot = StateKey::CheckpointSignature {
            epoch,
            validator: me,
        };
        if chain.db().get(&slot.to_bytes())?.is_some() {
            continue;
        }
        let Some((c, signing)) = expected_checkpoint(chain, epoch)? else {
            continue;
        };
        let Some(v) = signing.get(&me) else { continue };
        if v.bridge_address != key.address().0 .0 {
            tracing::warn!(epoch, "this validator's bridge address on chain is not its configured bridge key: not signing");
            return Ok(None);
        }
        let sig = sign_digest(
            key,
            &checkpoint_digest(chain.chain_id.as_str(), cfg.eth_chain_id, cfg.contract, &c),
        )
        .map_err(|error| BridgeError::Sign { epoch, error })?;
        let call = Call::SignCheckpoint {
            epoch,
            height: Height::new(c.height),
            block_hash: Hash(c.block_hash.0),
            state_root: Hash(c.state_root.0),
            next_set_hash: Hash(c.next_set_hash.0),
            signature: EthSignature(sig),
        };
        let nonce = chain.next_nonce(&me);
        let tx = Transaction {
            chain_id: chain.chain_id.clone(),
            signer: me,
            nonce,
            max_fee: None,
            call,
        }
        .sign(consensus_key);
        tracing::info!(epoch, height = c.height, "signing checkpoint");
        return Ok(Some(tx.to_bytes()));
    }
    Ok(None)
}

/// Signatures recorded on chain for `epoch` that match `c` and recover to the signing
/// set's bridge addresses, in set order (empty where missing), with their power.
pub fn collect_signatures(
    chain: &ChainReader,
    cfg: &BridgeConfig,
    c: &Checkpoint,
    signing: &ValidatorSet,
) -> Result<(Vec<Bytes>, U256)> {
    let digest = checkpoint_digest(chain.chain_id.as_str(), cfg.eth_chain_id, cfg.contract, c);
    let mut out = Vec::with_capacity(signing.validators.len());
    let mut power = U256::ZERO;
    for v in &signing.validators {
        let key = StateKey::CheckpointSignature {
            epoch: c.epoch,
            validator: v.consensus_key,
        };
        let rec: Option<CheckpointSignature> = match chain.db().get(&key.to_bytes())? {
            Some(b) => codec::decode(&b, 1024).ok(),
            None => None,
        };
        let good = rec.filter(|r| {
            r.height.get() == c.height
                && r.block_hash.0 == c.block_hash.0
                && r.state_root.0 == c.state_root.0
                && r.next_set_hash.0 == c.next_set_hash.0
        });
        let recovered = good.as_ref().and_then(|r| {
            let sig = alloy::primitives::Signature::from_raw(&r.signature.0).ok()?;
            sig.recover_address_from_prehash(&digest).ok()
        });
        match (good, recovered) {
            (Some(r), Some(a)) if a.0 .0 == v.bridge_address => {
                power += U256::from(v.power);
                out.push(Bytes::from(r.signature.0.to_vec()));
            }
            _ => out.push(Bytes::new()),
        }
    }
    Ok((out, power))
}

/// What a relayer submits for one epoch: the checkpoint it derives, the set that signs
/// it (as the contract knows it) and the matching on-chain signatures with their power.
struct Submission {
    checkpoint: Checkpoint,
    signing: ValidatorSet,
    set: BridgeSet,
    signatures: Vec<Bytes>,
    power: U256,
}

impl Submission {
    fn build(chain: &ChainReader, cfg: &BridgeConfig, epoch: u64) -> Result<Option<Submission>> {
        let Some((checkpoint, signing)) = expected_checkpoint(chain, epoch)? else {
            return Ok(None);
        };
        let (signatures, power) = collect_signatures(chain, cfg, &checkpoint, &signing)?;
        Ok(Some(Submission {
            set: bridge_set(&signing),
            checkpoint,
            signing,
            signatures,
            power,
        }))
    }

    /// More than 2/3 of the signing set's power signed.
    fn has_quorum(&self) -> bool {
        self.power * U256::from(3) > self.set.total_power() * U256::from(2)
    }

    fn call<'a>(
        &self,
        contract: &'a IAtonomiCheckpoints::IAtonomiCheckpointsInstance<DynProvider>,
    ) -> alloy::contract::CallBuilder<
        &'a DynProvider,
        std::marker::PhantomData<IAtonomiCheckpoints::submitCheckpointCall>,
    > {
        contract.submitCheckpoint(
            (&self.checkpoint).into(),
            self.set.validators.clone(),
            self.set.powers.clone(),
            self.signatures.clone(),
        )
    }
}

/// A relayed submission, recorded before it is broadcast.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RelayRecord {
    pub epoch: u64,
    pub nonce: u64,
    pub tx_hash: B256,
    pub max_fee_per_gas: u128,
    pub max_priority_fee_per_gas: u128,
    pub raw: Bytes,
    pub status: RelayStatus,
    /// When the current transaction was broadcast (ms since the Unix epoch; the relayer
    /// is not consensus code).
    #[serde(default)]
    pub sent_at_ms: u64,
    /// Earlier transactions of this record that were replaced (same nonce, lower fees).
    #[serde(default)]
    pub replaced: Vec<B256>,
    #[serde(default)]
    pub gas_limit: u64,
}

pub use atonomi_api::rpc::views::RelayStatus;
use atonomi_api::rpc::views::RelayerView;

/// How long a needed epoch may lack a quorum before the relayer warns (and again).
const SHORT_WARN_AFTER: Duration = Duration::from_secs(30);

/// A pending submission is replaced (same nonce, fees raised by a quarter) after this.
const STUCK_AFTER: Duration = Duration::from_secs(8);

const RELAY_PREFIX: &[u8] = b"relay/";

fn relay_key(epoch: u64) -> Vec<u8> {
    let mut k = RELAY_PREFIX.to_vec();
    k.extend_from_slice(&epoch.to_be_bytes());
    k
}

fn load_record(chain: &ChainReader, epoch: u64) -> Result<Option<RelayRecord>> {
    match chain.db().kv().get(Cf::Meta, &relay_key(epoch))? {
        Some(b) => Ok(Some(
            serde_json::from_slice(&b).map_err(|error| BridgeError::Record { epoch, error })?,
        )),
        None => Ok(None),
    }
}

fn store_record(chain: &ChainReader, r: &RelayRecord) -> Result<()> {
    let mut batch = WriteBatch::new();
    let json = serde_json::to_vec(r).map_err(|error| BridgeError::Record {
        epoch: r.epoch,
        error,
    })?;
    batch.put(Cf::Meta, relay_key(r.epoch), json);
    Ok(chain.db().kv().write(batch)?)
}

/// Recent relay records, newest first (for `atonomi_getBridgeStatus`).
pub fn recent_records(chain: &ChainReader, limit: usize) -> Vec<RelayRecord> {
    let rows = chain
        .db()
        .kv()
        .scan(Cf::Meta, RELAY_PREFIX, &[], usize::MAX)
        .unwrap_or_default();
    rows.iter()
        .rev()
        .take(limit)
        .filter_map(|(_, v)| serde_json::from_slice(v).ok())
        .collect()
}

/// What the relayer reads and counts: it reads checkpoints from the chain and keeps
/// its own records of what it sent beside them.
#[derive(Debug, Clone)]
pub struct RelayerLinks {
    pub chain: ChainReader,
    pub metrics: Arc<Metrics>,
}

/// The relayer loop; runs until the task is dropped.
pub async fn run_relayer(links: RelayerLinks, cfg: BridgeConfig, status: RelayerStatus) {
    let Some(r) = cfg.relayer.clone() else { return };
    let url = match r.eth_rpc.parse() {
        Ok(u) => u,
        Err(e) => {
            tracing::error!("[bridge] eth_rpc {}: {e}", r.eth_rpc);
            return;
        }
    };
    let provider = ProviderBuilder::new().connect_http(url).erased();
    tracing::info!(contract = %cfg.contract, relayer = %r.key.address(), "bridge relayer started");
    let mut ready_since: std::collections::BTreeMap<u64, tokio::time::Instant> = Default::default();
    let mut short: Option<(u64, tokio::time::Instant)> = None;
    loop {
        if let Err(e) = relay_round(
            &links,
            &cfg,
            &r,
            &provider,
            &status,
            &mut ready_since,
            &mut short,
        )
        .await
        {
            tracing::warn!("bridge relayer: {e}");
            status.send_replace(Some(RelayerView::Failed {
                error: e.to_string(),
            }));
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
}

async fn relay_round(
    links: &RelayerLinks,
    cfg: &BridgeConfig,
    r: &RelayerConfig,
    provider: &DynProvider,
    status: &RelayerStatus,
    ready_since: &mut std::collections::BTreeMap<u64, tokio::time::Instant>,
    short: &mut Option<(u64, tokio::time::Instant)>,
) -> Result<()> {
    let RelayerLinks { chain, metrics } = links;
    let contract = IAtonomiCheckpoints::new(cfg.contract, provider.clone());
    let on_eth = contract
        .latestEpoch()
        .call()
        .await
        .map_err(BridgeError::LatestEpoch)?;
    let finalized_epoch = contract
        .latestEpoch()
        .block(alloy::eips::BlockId::finalized())
        .call()
        .await
        .unwrap_or(0);
    metrics.bridge_eth_epoch.set(on_eth as i64);
    let head = provider.get_block_number().await?;

    // Follow what this relayer sent: statuses, and a vanished transaction re-sent.
    for epoch in on_eth.saturating_sub(3).max(1)..=on_eth + 1 {
        let Some(mut rec) = load_record(chain, epoch)? else {
            continue;
        };
        if rec.status == RelayStatus::Final {
            continue;
        }
        match provider.get_transaction_receipt(rec.tx_hash).await? {
            Some(receipt) => {
                let at = receipt.block_number.unwrap_or(head);
                let status = if epoch <= finalized_epoch && receipt.status() {
                    RelayStatus::Final
                } else if head + 1 >= at + r.confirmations {
                    RelayStatus::Confirmed
                } else {
                    RelayStatus::Submitted
                };
                if rec.status != status {
                    tracing::info!(epoch, tx = %rec.tx_hash, status = status.as_str(), "checkpoint submission");
                    rec.status = status;
                    store_record(chain, &rec)?;
                }
            }
            None if epoch > on_eth => match provider.get_transaction_by_hash(rec.tx_hash).await? {
                None => {
                    // Dropped or reorged out, and the contract does not have it: the same bytes again.
                    tracing::warn!(epoch, tx = %rec.tx_hash, "submission vanished (dropped or reorged): re-broadcasting it");
                    if let Err(e) = provider.send_raw_transaction(&rec.raw).await {
                        tracing::warn!("re-broadcast: {e}");
                    }
                }
                Some(_)
                    if now_ms().saturating_sub(rec.sent_at_ms) > STUCK_AFTER.as_millis() as u64 =>
                {
                    replace_stuck(chain, cfg, r, provider, &mut rec).await?;
                }
                Some(_) => {}
            },
            None => {}
        }
    }

    let next = on_eth + 1;
    let chain_epoch = chain.last_checkpoint_epoch()?;
    status.send_replace(Some(RelayerView::Running {
        contract: cfg.contract.to_string(),
        eth_epoch: on_eth,
        eth_finalized_epoch: finalized_epoch,
        chain_epoch,
        relayer: r.key.address().to_string(),
    }));
    if let Some(rec) = load_record(chain, next)? {
        // Sent already: wait for it (above), never send a second one for this epoch.
        tracing::debug!(epoch = next, tx = %rec.tx_hash, "waiting for the recorded submission");
        return Ok(());
    }
    let Some(sub) = Submission::build(chain, cfg, next)? else {
        return Ok(());
    };
    if !sub.has_quorum() {
        // Ethereum cannot move past this epoch until its set signs it: say so, once every
        // half minute, when the quorum has been missing for that long.
        let since = match short {
            Some((e, t)) if *e == next => *t,
            _ => {
                let now = tokio::time::Instant::now();
                *short = Some((next, now));
                now
            }
        };
        if since.elapsed() >= SHORT_WARN_AFTER {
            let signed = sub.signatures.iter().filter(|s| !s.is_empty()).count();
            tracing::warn!(
                epoch = next,
                height = sub.checkpoint.height,
                signed,
                of = sub.signing.validators.len(),
                power = %sub.power,
                total = %sub.set.total_power(),
                "the checkpoint Ethereum needs next has no quorum of its set's signatures yet"
            );
            *short = Some((next, tokio::time::Instant::now()));
        }
        return Ok(());
    }
    let since = *ready_since
        .entry(next)
        .or_insert_with(tokio::time::Instant::now);
    ready_since.retain(|e, _| *e >= next);
    let wait = takeover_delay(next, &sub.signing, r.validator.as_ref(), r.takeover);
    if since.elapsed() < wait {
        return Ok(()); // the designated relayer (or one ranked before us) goes first
    }
    let call = sub.call(&contract);
    if let Err(e) = call.call().await {
        if let Some(IAtonomiCheckpoints::IAtonomiCheckpointsErrors::EpochNotNext(_)) =
            e.as_decoded_interface_error::<IAtonomiCheckpoints::IAtonomiCheckpointsErrors>()
        {
            return Ok(()); // another relayer was first
        }
        return Err(BridgeError::DryRun {
            epoch: next,
            error: e,
        });
    }
    let nonce = provider
        .get_transaction_count(r.key.address())
        .pending()
        .await?;
    let fees = provider.estimate_eip1559_fees().await?;
    let rec = sign_submission(
        provider,
        r,
        call.into_transaction_request(),
        next,
        nonce,
        fees.max_fee_per_gas,
        fees.max_priority_fee_per_gas,
        None,
    )
    .await?;
    store_record(chain, &rec)?; // durable before it leaves
    metrics.bridge_submissions.inc();
    tracing::info!(epoch = next, height = sub.checkpoint.height, tx = %rec.tx_hash, nonce = rec.nonce, "submitting checkpoint");
    broadcast(provider, &rec).await;
    Ok(())
}

/// Fills and signs the submission here (not in the provider) so that the exact bytes are
/// recorded before they are broadcast.
#[allow(clippy::too_many_arguments)]
async fn sign_submission(
    provider: &DynProvider,
    r: &RelayerConfig,
    tx: alloy::rpc::types::TransactionRequest,
    epoch: u64,
    nonce: u64,
    max_fee: u128,
    tip: u128,
    gas_limit: Option<u64>,
) -> Result<RelayRecord> {
    let me = r.key.address();
    let mut tx = tx
        .with_from(me)
        .with_nonce(nonce)
        .with_chain_id(provider.get_chain_id().await?)
        .with_max_fee_per_gas(max_fee)
        .with_max_priority_fee_per_gas(tip);
    // A replacement keeps the original's gas limit: estimating again would run against a
    // pending state that already holds the original (and revert).
    let gas_limit = match gas_limit {
        Some(g) => g,
        None => {
            let gas = provider.estimate_gas(tx.clone()).await?;
            gas + gas / 5
        }
    };
    tx = tx.with_gas_limit(gas_limit);
    let wallet = alloy::network::EthereumWallet::from(r.key.clone());
    let envelope =
        alloy::network::NetworkTransactionBuilder::<alloy::network::Ethereum>::build(tx, &wallet)
            .await
            .map_err(|e| BridgeError::Envelope(e.to_string()))?;
    Ok(RelayRecord {
        epoch,
        nonce,
        tx_hash: *envelope.tx_hash(),
        max_fee_per_gas: max_fee,
        max_priority_fee_per_gas: tip,
        raw: Bytes::from(envelope.encoded_2718()),
        status: RelayStatus::Submitted,
        sent_at_ms: now_ms(),
        replaced: Vec::new(),
        gas_limit,
    })
}

async fn broadcast(provider: &DynProvider, rec: &RelayRecord) {
    if let Err(e) = provider.send_raw_transaction(&rec.raw).await {
        // "already known" / "nonce too low" after a crash between record and send are the
        // same transaction or a mined one: the follow-up of the next round settles it.
        tracing::warn!(epoch = rec.epoch, tx = %rec.tx_hash, "broadcast: {e}");
    }
}

/// A submission pending for too long: the same nonce again with fees raised by a
/// quarter (nodes require ≥ 10 % to replace), recorded before it is broadcast.
async fn replace_stuck(
    chain: &ChainReader,
    cfg: &BridgeConfig,
    r: &RelayerConfig,
    provider: &DynProvider,
    rec: &mut RelayRecord,
) -> Result<()> {
    let Some(sub) = Submission::build(chain, cfg, rec.epoch)? else {
        return Ok(());
    };
    let contract = IAtonomiCheckpoints::new(cfg.contract, provider.clone());
    let call = sub.call(&contract);
    let fees = provider.estimate_eip1559_fees().await?;
    let max_fee = (rec.max_fee_per_gas + rec.max_fee_per_gas / 4).max(fees.max_fee_per_gas);
    let tip = (rec.max_priority_fee_per_gas + rec.max_priority_fee_per_gas / 4 + 1)
        .max(fees.max_priority_fee_per_gas);
    let mut new = sign_submission(
        provider,
        r,
        call.into_transaction_request(),
        rec.epoch,
        rec.nonce,
        max_fee.max(tip),
        tip,
        (rec.gas_limit > 0).then_some(rec.gas_limit),
    )
    .await?;
    new.replaced = rec.replaced.clone();
    new.replaced.push(rec.tx_hash);
    tracing::warn!(epoch = rec.epoch, old = %rec.tx_hash, new = %new.tx_hash, max_fee, tip, "submission stuck: replacing it with higher fees");
    store_record(chain, &new)?;
    broadcast(provider, &new).await;
    *rec = new;
    Ok(())
}

/// `atonomi bridge set-hash`: the genesis validators' bridge set and its hash.
pub fn genesis_set(genesis: &atonomi_genesis::Genesis) -> BridgeSet {
    bridge_set(&genesis.state().validators)
}

/// `atonomi bridge deploy`: deploys the checkpoint contract trusting the genesis set;
/// prints the contract address and Ethereum chain id for `[bridge]`.
pub async fn deploy_cli(
    eth_rpc: &str,
    eth_key: &std::path::Path,
    genesis: &atonomi_genesis::Genesis,
) -> Result<()> {
    let key = crate::keys::bridge::read(eth_key)?;
    let url = eth_rpc.parse().map_err(|e| BridgeError::Url {
        url: eth_rpc.to_string(),
        reason: format!("{e}"),
    })?;
    let provider = ProviderBuilder::new().wallet(key).connect_http(url);
    let set = genesis_set(genesis);
    if set.validators.iter().all(|a| a.is_zero()) {
        return Err(BridgeError::NoBridgeAddresses);
    }
    let contract =
        atonomi_bridge::contract::deploy_checkpoints(&provider, genesis.chain_id.as_str(), &set)
            .await?;
    let eth_chain_id = provider.get_chain_id().await?;
    println!(
        "{}",
        serde_json::json!({ "contract": contract, "eth_chain_id": eth_chain_id, "genesis_set_hash": set.hash() })
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use atonomi_primitives::state::Validator;
    use atonomi_primitives::{AccountId, ManufacturerId};

    #[test]
    fn the_designated_relayer_goes_first_and_the_others_in_set_order() {
        let v = |b: u8| Validator {
            consensus_key: AccountId::new([b; 32]),
            peer_id: vec![1],
            bridge_address: [b; 20],
            power: 1,
            operator: ManufacturerId::new(1),
        };
        let set = ValidatorSet {
            validators: vec![v(1), v(2), v(3), v(4)],
        };
        let s = Duration::from_secs(3);
        let me = |b: u8| AccountId::new([b; 32]);
        // Epoch 5: index 1 (the validator [2; 32]) is designated.
        assert_eq!(takeover_delay(5, &set, Some(&me(2)), s), Duration::ZERO);
        assert_eq!(takeover_delay(5, &set, Some(&me(3)), s), s);
        assert_eq!(takeover_delay(5, &set, Some(&me(1)), s), s * 3);
        assert_eq!(
            takeover_delay(5, &set, None, s),
            s * 4,
            "a relayer that is not a validator goes last"
        );
        assert_eq!(takeover_delay(6, &set, Some(&me(3)), s), Duration::ZERO);
    }
}
