//! The checkpoint signer: after each commit, a validator signs the lowest checkpoint
//! epoch it has not signed yet and records the signature on chain.

use super::{expected_checkpoint, BridgeConfig, BridgeError, Result};
use crate::admit::Admission;
use crate::chain::ChainReader;
use crate::ingress::NodeEvent;
use crate::keys::ConsensusKeys;
use crate::mempool::Mailbox;
use crate::mempool::PoolLookup;
use alloy::signers::local::PrivateKeySigner;
use atonomi_bridge::{checkpoint_digest, sign_digest};
use atonomi_primitives::state::{EthSignature, StateKey};
use atonomi_primitives::tx::Call;
use atonomi_primitives::{Hash, Height, Keypair, Transaction};
use std::time::Duration;

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

/// The signer: signs each checkpoint epoch once, in order, recording it on chain, with
/// the validator's consensus key in the set that voted on the epoch's height (after a
/// key rotation: the retired key for the heights before it, the new key after).
pub async fn run_signer(
    links: SignerLinks,
    mut consensus_keys: ConsensusKeys,
    key: PrivateKeySigner,
    cfg: BridgeConfig,
) {
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
        match next_signature(&chain, &consensus_keys.all(), &key, &cfg) {
            Ok(Some(bytes)) => match admission.submit_and_gossip(bytes.clone()) {
                Ok(h) => pending = Some((h, bytes, std::time::Instant::now())),
                Err(e) => tracing::warn!("checkpoint signature not admitted: {e}"),
            },
            Ok(None) => {}
            Err(e) => tracing::warn!("checkpoint signing: {e:#}"),
        }
    }
}

/// The `SignCheckpoint` transaction for the lowest epoch this validator has not signed.
fn next_signature(
    chain: &ChainReader,
    consensus_keys: &[Keypair],
    key: &PrivateKeySigner,
    cfg: &BridgeConfig,
) -> Result<Option<Vec<u8>>> {
    let last = chain.last_checkpoint_epoch()?;
    // Only recent epochs: a validator joining late does not sign history.
    for epoch in last.saturating_sub(16).max(1)..=last {
        let Some((c, signing)) = expected_checkpoint(chain, epoch)? else {
            continue;
        };
        // The key of ours the epoch's set holds (the validator signs once per epoch).
        let Some((consensus_key, v)) = consensus_keys
            .iter()
            .find_map(|k| signing.get(&k.account()).map(|v| (k, v)))
        else {
            continue;
        };
        let me = consensus_key.account();
        let slot = StateKey::CheckpointSignature {
            epoch,
            validator: me,
        };
        if chain.db().get(&slot.to_bytes())?.is_some() {
            continue;
        }
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
