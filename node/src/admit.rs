//! The mempool's entry point: a transaction from a client or a peer passes the checks
//! a block would make (size, decoding, chain id, signature, nonce, checkpoint signer),
//! the operator's admission policy, then the pool's own bounds. The checks run on the
//! caller's thread (signatures on all cores); only the last step is a message to the
//! mempool actor.

use crate::admission::Policy;
use crate::chain::ChainReader;
use crate::ingress::Outbound;
use crate::mempool::{AdmitError, AdmitFailed, Checked, Mailbox};
use crate::metrics::Metrics;
use atonomi_primitives::state::StateKey;
use atonomi_primitives::{Hash, InvalidTx, SignedTransaction};
use atonomi_runtime::{Refusal, SigCheck};
use std::sync::Arc;
use tokio::sync::mpsc;

/// How many times admission reads the nonces of a batch when blocks keep being
/// committed under it (each retry follows a commit, so one retry is the usual most).
const ADMIT_ATTEMPTS: u32 = 8;

/// The committed parameters (decoding bounds, fees); a record that cannot be read
/// refuses admission rather than admitting under other bounds.
fn chain_params(chain: &ChainReader) -> Result<atonomi_primitives::Params, AdmitError> {
    chain
        .params()
        .map_err(|e| AdmitError::State(atonomi_runtime::Fatal::Read(e.to_string())))
}

/// Decodes a transaction for this chain: bytes that are not a transaction at all are
/// [`AdmitError::BadSignature`] (no honest node relays them), the rest of what
/// [`atonomi_runtime::decode_for_chain`] refuses is [`AdmitError::Invalid`].
fn decode(
    params: &atonomi_primitives::Params,
    chain: &ChainReader,
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

/// The way into the mempool, cloneable, for the RPC server, the network and the
/// bridge signer: what admission reads (the chain), asks (the mempool actor) and
/// applies (the operator's policy), and where it gossips what it admitted.
#[derive(Debug, Clone)]
pub struct Admission {
    chain: ChainReader,
    mempool: Mailbox,
    policy: Policy,
    /// To the peer-to-peer layer (nobody listens on a network-less dev node).
    outbound: mpsc::UnboundedSender<Outbound>,
    /// Outcomes are counted here.
    metrics: Arc<Metrics>,
}

impl Admission {
    pub fn new(
        chain: ChainReader,
        mempool: Mailbox,
        policy: Policy,
        outbound: mpsc::UnboundedSender<Outbound>,
        metrics: Arc<Metrics>,
    ) -> Admission {
        Admission {
            chain,
            mempool,
            policy,
            outbound,
            metrics,
        }
    }

    /// Counts each answer by outcome (`atonomi_mempool_admissions_total`): tallied here
    /// first, so a batch touches the shared counters once per outcome, not per answer.
    fn count(&self, results: &[Result<Hash, AdmitError>]) {
        let mut tally = std::collections::BTreeMap::<&'static str, u64>::new();
        for r in results {
            let outcome = match r {
                Ok(_) => "admitted",
                Err(e) => e.label(),
            };
            *tally.entry(outcome).or_default() += 1;
        }
        for (outcome, n) in tally {
            self.metrics
                .admissions
                .get_or_create(&crate::metrics::Outcome { outcome })
                .inc_by(n);
        }
    }

    /// Mempool admission: the checks a block would make, then the pool's own bounds.
    pub fn submit(&self, bytes: Vec<u8>) -> Result<Hash, AdmitError> {
        let result = self.submit_one(bytes);
        self.count(std::slice::from_ref(&result));
        result
    }

    fn submit_one(&self, bytes: Vec<u8>) -> Result<Hash, AdmitError> {
        let stx = {
            let chain = &self.chain;
            let stx = decode(&chain_params(chain)?, chain, &bytes)?;
            // The policy before the signature: a refused flood costs no verification.
            self.admission_check(chain, &stx)?;
            stx
        };
        stx.verify_signature()
            .map_err(|_| AdmitError::Invalid(InvalidTx::BadSignature))?;
        self.admit_verified(vec![(stx, bytes)])
            .pop()
            .unwrap_or(Err(AdmitError::Stopped))
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

    /// Each transaction is decoded once, refusals that need no signature (the admission
    /// policy, a full pool) come first so overload and floods cost no CPU, the rest are
    /// verified as batches on all cores, and those are admitted together.
    fn admit_batch(&self, txs: Vec<Vec<u8>>) -> (Vec<Result<Hash, AdmitError>>, Vec<Vec<u8>>) {
        let (results, admitted) = self.admit_batch_uncounted(txs);
        self.count(&results);
        (results, admitted)
    }

    fn admit_batch_uncounted(
        &self,
        txs: Vec<Vec<u8>>,
    ) -> (Vec<Result<Hash, AdmitError>>, Vec<Vec<u8>>) {
        let mut decoded: Vec<Result<SignedTransaction, AdmitError>> = {
            let chain = &self.chain;
            let params = match chain_params(chain) {
                Ok(p) => p,
                Err(e) => return (txs.iter().map(|_| Err(e.clone())).collect(), Vec::new()),
            };
            txs.iter()
                .map(|b| {
                    let stx = decode(&params, chain, b)?;
                    self.admission_check(chain, &stx)?;
                    Ok(stx)
                })
                .collect()
        };
        let senders = decoded
            .iter()
            .filter_map(|d| d.as_ref().ok().map(|s| (s.tx.signer, s.tx.nonce)))
            .collect();
        let mut refusals = match self.mempool.triage(senders) {
            Ok(r) => r.into_iter(),
            Err(_) => {
                return (
                    txs.iter().map(|_| Err(AdmitError::Stopped)).collect(),
                    Vec::new(),
                )
            }
        };
        for d in decoded.iter_mut().filter(|d| d.is_ok()) {
            if let Some(refused) = refusals.next().flatten() {
                *d = Err(refused);
            }
        }
        let checks: Vec<_> = decoded
            .iter()
            .filter_map(|d| d.as_ref().ok().map(SignedTransaction::signature_check))
            .collect();
        let mut sig_ok = atonomi_runtime::verify_checks(&checks).into_iter();
        let mut results: Vec<Result<Hash, AdmitError>> = Vec::with_capacity(txs.len());
        let mut verified = Vec::new();
        let mut at = Vec::new();
        for (i, (bytes, d)) in txs.iter().zip(decoded).enumerate() {
            match d {
                Err(e) => results.push(Err(e)),
                Ok(_) if !sig_ok.next().unwrap_or(false) => {
                    results.push(Err(AdmitError::BadSignature))
                }
                Ok(stx) => {
                    // A placeholder until the pool answers.
                    results.push(Err(AdmitError::Stopped));
                    verified.push((stx, bytes.clone()));
                    at.push(i);
                }
            }
        }
        for (i, answer) in at.into_iter().zip(self.admit_verified(verified)) {
            results[i] = answer;
        }
        let admitted = txs
            .into_iter()
            .zip(&results)
            .filter_map(|(bytes, r)| r.is_ok().then_some(bytes))
            .collect();
        (results, admitted)
    }

    fn admission_check(
        &self,
        chain: &ChainReader,
        stx: &atonomi_primitives::SignedTransaction,
    ) -> Result<(), AdmitError> {
        let read = |k: &StateKey| chain.db().get(&k.to_bytes()).ok().flatten();
        self.policy
            .check(&read, stx)
            .map_err(AdmitError::NotAdmitted)
    }

    /// The state checks of a block (nonce, checkpoint signer) on decoded, verified
    /// transactions, then the pool's own bounds; one answer each, in order. The
    /// nonces are read at the height the reader shows or later (the host writes a
    /// block before it publishes its height); if the pool has seen a later commit by
    /// the time it answers, they are read again, at most [`ADMIT_ATTEMPTS`] times.
    fn admit_verified(
        &self,
        txs: Vec<(SignedTransaction, Vec<u8>)>,
    ) -> Vec<Result<Hash, AdmitError>> {
        let mut results: Vec<Result<Hash, AdmitError>> =
            txs.iter().map(|_| Err(AdmitError::Stopped)).collect();
        let mut pending: Vec<(usize, SignedTransaction, Vec<u8>)> = txs
            .into_iter()
            .enumerate()
            .map(|(i, (stx, bytes))| (i, stx, bytes))
            .collect();
        for attempt in 1..=ADMIT_ATTEMPTS {
            let chain = &self.chain;
            // The height first: the state read after it is at least as new.
            let height = chain.height();
            let reader = |k: &[u8]| chain.db().get(k);
            let mut at = Vec::new();
            let mut checked = Vec::new();
            for (i, stx, bytes) in pending.drain(..) {
                match atonomi_runtime::precheck_decoded(&reader, &stx) {
                    Ok(next_nonce) => {
                        at.push(i);
                        checked.push(Checked {
                            stx,
                            bytes,
                            next_nonce,
                        });
                    }
                    Err(Refusal::Invalid(e)) => results[i] = Err(AdmitError::Invalid(e)),
                    Err(Refusal::Fatal(e)) => results[i] = Err(AdmitError::State(e)),
                }
            }
            match self.mempool.admit(height, checked) {
                Ok(answers) => {
                    for (i, answer) in at.into_iter().zip(answers) {
                        results[i] = answer;
                    }
                    break;
                }
                Err(AdmitFailed::Stale(back)) => {
                    for &i in &at {
                        results[i] = Err(AdmitError::Busy { attempts: attempt });
                    }
                    pending = at
                        .into_iter()
                        .zip(back)
                        .map(|(i, c)| (i, c.stx, c.bytes))
                        .collect();
                }
                Err(AdmitFailed::Stopped) => break,
            }
        }
        results
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
