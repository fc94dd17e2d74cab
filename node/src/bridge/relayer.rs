//! The relayer: carries each checkpoint with its quorum of signatures to the Ethereum
//! contract, recording every transaction before it leaves and following it to
//! finality.

use super::{
    bridge_set, collect_signatures, expected_checkpoint, takeover_delay, BridgeConfig, BridgeError,
    RelayerConfig, RelayerStatus, Result,
};
use crate::chain::{ChainReader, RelayLog};
use crate::clock::now_ms;
use crate::metrics::Metrics;
use alloy::eips::Encodable2718;
use alloy::network::TransactionBuilder;
use alloy::primitives::{Bytes, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use atonomi_bridge::contract::IAtonomiCheckpoints;
use atonomi_bridge::{BridgeSet, Checkpoint};
use atonomi_primitives::state::ValidatorSet;
use atonomi_storage::{Cf, KvRead};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

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

fn load_record(log: &RelayLog, epoch: u64) -> Result<Option<RelayRecord>> {
    match log.load(epoch)? {
        Some(b) => Ok(Some(
            serde_json::from_slice(&b).map_err(|error| BridgeError::Record { epoch, error })?,
        )),
        None => Ok(None),
    }
}

fn store_record(log: &RelayLog, r: &RelayRecord) -> Result<()> {
    let json = serde_json::to_vec(r).map_err(|error| BridgeError::Record {
        epoch: r.epoch,
        error,
    })?;
    Ok(log.store(r.epoch, json)?)
}

/// Recent relay records, newest first (for `atonomi_getBridgeStatus`).
pub fn recent_records(chain: &ChainReader, limit: usize) -> Vec<RelayRecord> {
    let rows = chain
        .db()
        .kv()
        .scan(Cf::Meta, crate::chain::RELAY_PREFIX, &[], usize::MAX)
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
    /// Its own records of what it sent (the only thing it writes).
    pub log: RelayLog,
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
            links.metrics.bridge_relay_failures.inc();
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
    let RelayerLinks {
        chain,
        log,
        metrics,
    } = links;
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
        let Some(mut rec) = load_record(log, epoch)? else {
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
                    store_record(log, &rec)?;
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
                    replace_stuck(chain, log, cfg, r, provider, &mut rec).await?;
                }
                Some(_) => {}
            },
            None => {}
        }
    }

    let next = on_eth + 1;
    let chain_epoch = chain.last_checkpoint_epoch()?;
    metrics.bridge_chain_epoch.set(chain_epoch as i64);
    metrics
        .bridge_lag_seconds
        .set(lag_seconds(chain, on_eth, chain_epoch)?);
    status.send_replace(Some(RelayerView::Running {
        contract: cfg.contract.to_string(),
        eth_epoch: on_eth,
        eth_finalized_epoch: finalized_epoch,
        chain_epoch,
        relayer: r.key.address().to_string(),
    }));
    if let Some(rec) = load_record(log, next)? {
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
    store_record(log, &rec)?; // durable before it leaves
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
    log: &RelayLog,
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
    store_record(log, &new)?;
    broadcast(provider, &new).await;
    *rec = new;
    Ok(())
}

/// Seconds since the block of the oldest checkpoint Ethereum does not have yet (0 when
/// it has all of them).
fn lag_seconds(chain: &ChainReader, on_eth: u64, chain_epoch: u64) -> Result<f64> {
    if chain_epoch <= on_eth {
        return Ok(0.0);
    }
    let Some(height) = chain.checkpoint_height(on_eth + 1)? else {
        return Ok(0.0);
    };
    let Some(block) = chain.block(height)? else {
        return Ok(0.0);
    };
    let behind_ms = now_ms().saturating_sub(block.header.timestamp.get());
    Ok(behind_ms as f64 / 1000.0)
}
