//! The mempool's entry point: a transaction from a client or a peer passes the checks
//! a block would make (size, decoding, chain id, signature, nonce, checkpoint signer),
//! the operator's admission policy, then the pool's own bounds.

use crate::chain::Chain;
use crate::ingress::{NodeEvent, Outbound};
use crate::mempool::AdmitError;
use crate::shared::{lock_mempool, read_chain, Shared};
use atonomi_primitives::state::StateKey;
use atonomi_primitives::{Hash, InvalidTx, SignedTransaction};
use atonomi_runtime::{Refusal, SigCheck};

/// The committed parameters (decoding bounds, fees); the defaults if unreadable.
fn chain_params(chain: &Chain) -> atonomi_primitives::Params {
    let reader = |k: &[u8]| chain.db().get(k);
    atonomi_runtime::read_params(&reader).unwrap_or_default()
}

/// Decodes a transaction for this chain: bytes that are not a transaction at all are
/// [`AdmitError::BadSignature`] (no honest node relays them), the rest of what
/// [`atonomi_runtime::decode_for_chain`] refuses is [`AdmitError::Invalid`].
fn decode(
    params: &atonomi_primitives::Params,
    chain: &Chain,
    bytes: &[u8],
) -> Result<SignedTransaction, AdmitError> {
    atonomi_runtime::decode_for_chain(params, &chain.chain_id, bytes, SigCheck::Trusted).map_err(
        |e| match SignedTransaction::from_bytes(bytes) {
            Err(_) => AdmitError::BadSignature,
            Ok(stx) if e == InvalidTx::WrongChain => AdmitError::WrongChain {
                tx: stx.tx.chain_id,
                chain: chain.chain_id.clone(),
            },
            Ok(_) => AdmitError::Invalid(e),
        },
    )
}

impl Shared {
    /// Mempool admission: the checks a block would make, then the pool's own bounds.
    pub fn submit(&self, bytes: Vec<u8>) -> Result<Hash, AdmitError> {
        self.admit_checked(bytes, SigCheck::Verify)
    }

    /// A batch from a client: signatures verified in parallel first, then each admitted
    /// like a single one; the admitted ones are gossiped together.
    pub fn submit_batch(&self, txs: Vec<Vec<u8>>) -> Vec<Result<Hash, AdmitError>> {
        let (results, admitted) = self.admit_batch(txs);
        if !admitted.is_empty() {
            let _ = self.outbound.send(Outbound::Txs(admitted));
        }
        results
    }

    /// A batch gossiped by a peer (gossipsub relays it on if we accept it). Whether it
    /// held bytes no honest node relays: a transaction that does not decode or whose
    /// signature does not verify.
    pub fn admit_gossip(&self, txs: Vec<Vec<u8>>) -> bool {
        let (results, _) = self.admit_batch(txs);
        results
            .iter()
            .any(|r| matches!(r, Err(AdmitError::BadSignature)))
    }

    /// Each transaction is decoded once, refusals that need no signature (a full pool,
    /// the admission policy) come first so overload and floods cost no CPU, the rest are
    /// verified as batches on all cores, and each is then admitted like a single one.
    fn admit_batch(&self, txs: Vec<Vec<u8>>) -> (Vec<Result<Hash, AdmitError>>, Vec<Vec<u8>>) {
        let (decoded, drops) = {
            let chain = read_chain(self);
            let params = chain_params(&chain);
            let mut pool = lock_mempool(self);
            let decoded: Vec<Result<SignedTransaction, AdmitError>> = txs
                .iter()
                .map(|b| {
                    let stx = decode(&params, &chain, b)?;
                    if pool.would_refuse(&stx.tx.signer) {
                        return Err(pool.refuse_full(&stx.tx.signer, stx.tx.nonce));
                    }
                    self.admission_check(&chain, &stx)?;
                    Ok(stx)
                })
                .collect();
            (decoded, pool.take_drops())
        };
        self.announce_drops(drops);
        let checks: Vec<_> = decoded
            .iter()
            .filter_map(|d| d.as_ref().ok().map(SignedTransaction::signature_check))
            .collect();
        let mut sig_ok = atonomi_runtime::verify_checks(&checks).into_iter();
        let mut admitted = Vec::new();
        let results = txs
            .into_iter()
            .zip(decoded)
            .map(|(bytes, stx)| {
                let stx = stx?;
                if !sig_ok.next().unwrap_or(false) {
                    return Err(AdmitError::BadSignature);
                }
                let hash = self.admit_decoded(&stx, bytes.clone())?;
                admitted.push(bytes);
                Ok(hash)
            })
            .collect();
        (results, admitted)
    }

    fn admission_check(
        &self,
        chain: &Chain,
        stx: &atonomi_primitives::SignedTransaction,
    ) -> Result<(), AdmitError> {
        let read = |k: &StateKey| chain.db().get(&k.to_bytes()).ok().flatten();
        self.admission
            .check(&read, stx)
            .map_err(AdmitError::NotAdmitted)
    }

    /// Of a block's transactions, those this node verified on admission (the mempool
    /// holds only transactions whose signature verified, keyed by the hash of their
    /// exact bytes): block execution need not verify them again.
    pub fn preverified(&self, txs: &[Vec<u8>]) -> Vec<bool> {
        let pool = lock_mempool(self);
        txs.iter()
            .map(|b| pool.contains(&atonomi_primitives::SignedTransaction::hash_of(b)))
            .collect()
    }

    fn admit_checked(&self, bytes: Vec<u8>, sig_check: SigCheck) -> Result<Hash, AdmitError> {
        let stx = {
            let chain = read_chain(self);
            let stx = decode(&chain_params(&chain), &chain, &bytes)?;
            // The policy before the signature: a refused flood costs no verification.
            self.admission_check(&chain, &stx)?;
            stx
        };
        if sig_check == SigCheck::Verify {
            stx.verify_signature()
                .map_err(|_| AdmitError::Invalid(InvalidTx::BadSignature))?;
        }
        self.admit_decoded(&stx, bytes)
    }

    /// The state checks of a block (nonce, checkpoint signer) on a decoded, verified
    /// transaction, then the pool's own bounds.
    fn admit_decoded(&self, stx: &SignedTransaction, bytes: Vec<u8>) -> Result<Hash, AdmitError> {
        let next = {
            let chain = read_chain(self);
            let reader = |k: &[u8]| chain.db().get(k);
            atonomi_runtime::precheck_decoded(&reader, stx).map_err(|e| match e {
                Refusal::Invalid(e) => AdmitError::Invalid(e),
                Refusal::Fatal(e) => AdmitError::State(e.to_string()),
            })?
        };
        let (hash, drops) = {
            let mut pool = lock_mempool(self);
            let hash = pool.admit(stx, bytes, next)?;
            self.metrics.mempool_txs.set(pool.len() as i64);
            (hash, pool.take_drops())
        };
        self.announce_drops(drops);
        self.tx_arrived.notify_one();
        Ok(hash)
    }

    /// Tells subscribers about transactions that left the pool uncommitted.
    pub fn announce_drops(&self, drops: Vec<crate::mempool::Dropped>) {
        for d in drops {
            tracing::debug!(tx = %d.hash, reason = d.reason.explain(), "dropped from the mempool");
            let _ = self.events.send(NodeEvent::Dropped(d));
        }
    }

    /// Admits a transaction from a client and gossips it to the peers.
    pub fn submit_and_gossip(&self, bytes: Vec<u8>) -> Result<Hash, AdmitError> {
        let hash = self.submit(bytes.clone())?;
        self.gossip(bytes);
        Ok(hash)
    }

    /// Gossips a transaction already in the pool (again).
    pub fn gossip(&self, bytes: Vec<u8>) {
        let _ = self.outbound.send(Outbound::Txs(vec![bytes]));
    }
}
