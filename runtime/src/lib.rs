//! The Atonomi runtime: a deterministic state machine.
//!
//! `execute_block(state, context, txs) -> BlockOutput { diff, receipts }` runs every
//! transaction of a block against a read-only view of the parent state and returns the
//! state diff and receipts; the node commits both (with the block) in one write batch.
//!
//! Determinism: no clock (time is the block timestamp), no hash-map iteration, no
//! floats, checked integer arithmetic only. The crate does no I/O: state arrives
//! through [`StateReader`].
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod bridge;
mod ctx;
mod device;
mod error;
mod genesis;
mod governance;
mod known_upgrades;
mod manufacturer;
mod overlay;
mod owner;
pub mod query;
mod reputation;
mod rotation;
mod state;
mod token;
pub mod upgrade;

pub use ctx::BlockContext;
pub use error::{ExecError, Fatal};
pub use genesis::genesis_diff;
pub use state::{MemoryState, StateDiff, StateReader};

use atonomi_primitives::event::{Event, Receipt, TxStatus};
use atonomi_primitives::state::{Account, PendingValidatorSet, StateKey, ValidatorSet};
use atonomi_primitives::{InvalidTx, Params, SignedTransaction};
use ctx::Ctx;
use error::fatal;
use overlay::Overlay;

/// What executing a block produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockOutput {
    pub diff: StateDiff,
    pub receipts: Vec<Receipt>,
}

/// How signatures are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigCheck {
    /// Verify every transaction signature (blocks from the network).
    Verify,
    /// The caller verified them already (the mempool admitted exactly these bytes).
    Trusted,
}

/// Executes a block's transactions in order against `state` (the parent state).
///
/// A transaction that cannot be executed at all (undecodable, oversized, wrong chain
/// id, bad signature, wrong nonce, cannot pay the fee) gets an `Invalid` receipt and
/// changes nothing. A call that fails gets a `Failed` receipt: its nonce and fee are
/// consumed and nothing else changes. Only unreadable or corrupt state is an error.
pub fn execute_block<R: StateReader + ?Sized>(
    state: &R,
    block: &BlockContext,
    txs: &[Vec<u8>],
    sig_check: SigCheck,
) -> Result<BlockOutput, Fatal> {
    let preverified = vec![sig_check == SigCheck::Trusted; txs.len()];
    execute_block_preverified(state, block, txs, &preverified)
}

/// [`execute_block`] where `preverified[i]` says the caller already verified the
/// signature of exactly `txs[i]` (e.g. on mempool admission); only the others are
/// verified here. The outcome is the same as verifying all of them.
pub fn execute_block_preverified<R: StateReader + ?Sized>(
    state: &R,
    block: &BlockContext,
    txs: &[Vec<u8>],
    preverified: &[bool],
) -> Result<BlockOutput, Fatal> {
    let mut overlay = Overlay::new(state);
    check_block_limits(&overlay, txs)?;
    begin_block(&mut overlay, block)?;
    // Each transaction is decoded once, here: the signature checks and execution use
    // the same value.
    let decoded: Vec<Option<SignedTransaction>> = txs
        .iter()
        .map(|b| SignedTransaction::from_bytes(b).ok())
        .collect();
    let signatures_ok = verify_decoded_except(&decoded, preverified);
    let mut receipts = Vec::with_capacity(txs.len());
    for (index, ((bytes, stx), sig_ok)) in txs.iter().zip(decoded).zip(signatures_ok).enumerate() {
        let index = u32::try_from(index).map_err(|_| Fatal::InvalidBlock("too many txs".into()))?;
        let (tx_hash, status, events) = execute_tx(&mut overlay, block, bytes, stx, sig_ok)?;
        receipts.push(Receipt {
            tx_hash,
            height: block.height,
            index,
            status,
            events,
        });
    }
    Ok(BlockOutput {
        diff: overlay.into_diff(),
        receipts,
    })
}

/// A block over the parameter limits is invalid as a whole: validators reject the
/// proposal instead of executing it.
fn check_block_limits<R: StateReader + ?Sized>(
    o: &Overlay<R>,
    txs: &[Vec<u8>],
) -> Result<(), Fatal> {
    let params: Params = o.get(&StateKey::Params).map_err(fatal)?.unwrap_or_default();
    if txs.len() > params.max_block_txs as usize {
        return Err(Fatal::InvalidBlock(format!(
            "{} transactions exceed max_block_txs {}",
            txs.len(),
            params.max_block_txs
        )));
    }
    let bytes: usize = txs.iter().map(Vec::len).sum();
    if bytes > params.max_block_bytes as usize {
        return Err(Fatal::InvalidBlock(format!(
            "{bytes} bytes of transactions exceed max_block_bytes {}",
            params.max_block_bytes
        )));
    }
    Ok(())
}

/// Promotes a pending validator set whose effective height has come, then runs the
/// scheduled upgrade whose height has come.
fn begin_block<R: StateReader + ?Sized>(
    o: &mut Overlay<R>,
    block: &BlockContext,
) -> Result<(), Fatal> {
    let pending: Option<PendingValidatorSet> =
        o.get(&StateKey::PendingValidatorSet).map_err(fatal)?;
    if let Some(p) = pending {
        if p.effective_height <= block.height {
            let old: ValidatorSet = o
                .get(&StateKey::ValidatorSet)
                .map_err(fatal)?
                .unwrap_or_default();
            // Those leaving keep the right to sign the checkpoints their set voted on
            // (up to this block, the last the old set votes on).
            for v in &old.validators {
                if p.set.get(&v.consensus_key).is_none() {
                    o.put(
                        &StateKey::RetiredValidator(v.consensus_key),
                        &atonomi_primitives::state::RetiredValidator {
                            validator: v.clone(),
                            last_height: block.height,
                        },
                    );
                }
            }
            for v in &p.set.validators {
                if old.get(&v.consensus_key).is_none() {
                    o.delete(&StateKey::RetiredValidator(v.consensus_key));
                }
            }
            o.put(&StateKey::ValidatorSet, &p.set);
            o.delete(&StateKey::PendingValidatorSet);
        }
    }
    upgrade::begin(o, block)
}

/// Decodes and checks a transaction without executing it: the checks of the mempool
/// and of block execution alike.
pub fn precheck<R: StateReader + ?Sized>(
    state: &R,
    chain_id: &atonomi_primitives::ChainId,
    bytes: &[u8],
    sig_check: SigCheck,
) -> Result<SignedTransaction, Refusal> {
    let stx = decode_for_chain(&read_params(state)?, chain_id, bytes, sig_check)?;
    precheck_decoded(state, &stx)?;
    Ok(stx)
}

/// Why [`precheck`] refused a transaction: the transaction's fault, or a state that
/// could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(transparent)]
    Invalid(#[from] InvalidTx),
    #[error(transparent)]
    Fatal(#[from] Fatal),
}

/// The chain's parameters (the defaults before genesis wrote them).
pub fn read_params<R: StateReader + ?Sized>(state: &R) -> Result<Params, Fatal> {
    Ok(Overlay::new(state)
        .get(&StateKey::Params)
        .map_err(fatal)?
        .unwrap_or_default())
}

/// The second half of [`precheck`], on a decoded transaction: its nonce is not used
/// yet and a checkpoint signature comes from a validator who may sign it. Returns the
/// signer's next nonce.
pub fn precheck_decoded<R: StateReader + ?Sized>(
    state: &R,
    stx: &SignedTransaction,
) -> Result<u64, Refusal> {
    let o = Overlay::new(state);
    let acct = signer_rules(&o, &stx.tx, Stage::Admission)??;
    Ok(acct.nonce)
}

/// Where [`signer_rules`] apply: on admission (a later nonce waits in the pool) or in
/// the block at a height (the nonce must be the account's next).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Admission,
    Block(atonomi_primitives::Height),
}

/// The state rules of a transaction's envelope, stated once for the mempool and for
/// blocks: its nonce, and that a checkpoint signature (free of fees, so a duty only)
/// comes from a validator who may sign that height. Returns the signer's account.
fn signer_rules<R: StateReader + ?Sized>(
    o: &Overlay<R>,
    tx: &atonomi_primitives::Transaction,
    stage: Stage,
) -> Result<Result<Account, InvalidTx>, Fatal> {
    let acct: Account = o
        .get(&StateKey::Account(tx.signer))
        .map_err(fatal)?
        .unwrap_or_default();
    match stage {
        Stage::Admission if tx.nonce < acct.nonce => {
            return Ok(Err(InvalidTx::NonceUsed {
                nonce: tx.nonce,
                next: acct.nonce,
            }))
        }
        Stage::Block(_) if tx.nonce != acct.nonce => {
            return Ok(Err(InvalidTx::WrongNonce {
                nonce: tx.nonce,
                expected: acct.nonce,
            }))
        }
        _ => {}
    }
    if let atonomi_primitives::tx::Call::SignCheckpoint { height, .. } = &tx.call {
        let now = match stage {
            Stage::Admission => None,
            Stage::Block(h) => Some(h),
        };
        if !bridge::may_sign_checkpoint(o, &tx.signer, *height, now) {
            return Ok(Err(InvalidTx::NotCheckpointSigner));
        }
    }
    Ok(Ok(acct))
}

/// The first half of [`precheck`]: decoding within the chain's size bound, the chain
/// id and (unless trusted) the signature. For callers that decode a batch once and
/// check the state for each transaction after.
pub fn decode_for_chain(
    params: &Params,
    chain_id: &atonomi_primitives::ChainId,
    bytes: &[u8],
    sig_check: SigCheck,
) -> Result<SignedTransaction, InvalidTx> {
    // Bytes over the chain's bound are not decoded at all.
    let decoded = if bytes.len() > params.max_tx_bytes as usize {
        None
    } else {
        SignedTransaction::from_bytes(bytes).ok()
    };
    let stx = check_for_chain(params, chain_id, bytes.len(), decoded)?;
    if sig_check == SigCheck::Verify {
        stx.verify_signature()
            .map_err(|_| InvalidTx::BadSignature)?;
    }
    Ok(stx)
}

/// The envelope checks on a transaction decoded already (`None`: its bytes did not
/// decode): its size within the chain's bound, then its chain id.
fn check_for_chain(
    params: &Params,
    chain_id: &atonomi_primitives::ChainId,
    len: usize,
    decoded: Option<SignedTransaction>,
) -> Result<SignedTransaction, InvalidTx> {
    if len > params.max_tx_bytes as usize {
        return Err(InvalidTx::TooLarge {
            len: len as u64,
            max: u64::from(params.max_tx_bytes),
        });
    }
    let stx = decoded.ok_or(InvalidTx::Undecodable)?;
    if &stx.tx.chain_id != chain_id {
        return Err(InvalidTx::WrongChain);
    }
    Ok(stx)
}

/// Verifies the signatures of a block's transactions on all cores, in batches (see
/// [`atonomi_primitives::crypto::verify_each`]). The answer for each transaction
/// depends only on its bytes, so neither the thread count nor the batching changes a
/// result; bytes that do not decode answer `false`.
pub fn verify_signatures(txs: &[Vec<u8>]) -> Vec<bool> {
    verify_signatures_except(txs, &[])
}

/// [`verify_signatures`], taking `skip[i] == true` as verified already (a `skip`
/// shorter than `txs` leaves the rest to verify).
pub fn verify_signatures_except(txs: &[Vec<u8>], skip: &[bool]) -> Vec<bool> {
    let decoded: Vec<Option<SignedTransaction>> = txs
        .iter()
        .map(|b| SignedTransaction::from_bytes(b).ok())
        .collect();
    verify_decoded_except(&decoded, skip)
}

/// [`verify_signatures_except`] on transactions decoded already (`None`: did not
/// decode, answers `false`).
fn verify_decoded_except(decoded: &[Option<SignedTransaction>], skip: &[bool]) -> Vec<bool> {
    let mut out: Vec<bool> = (0..decoded.len())
        .map(|i| skip.get(i).copied().unwrap_or(false))
        .collect();
    let mut todo = Vec::new();
    let mut checks = Vec::new();
    for (i, stx) in decoded.iter().enumerate() {
        if out[i] {
            continue;
        }
        if let Some(stx) = stx {
            todo.push(i);
            checks.push(stx.signature_check());
        }
    }
    for (i, ok) in todo.into_iter().zip(verify_checks(&checks)) {
        out[i] = ok;
    }
    out
}

/// [`crypto::verify_each`](atonomi_primitives::crypto::verify_each) split over up to
/// eight cores, each settling its share as one batch.
pub fn verify_checks(checks: &[atonomi_primitives::crypto::SignatureCheck]) -> Vec<bool> {
    use atonomi_primitives::crypto::verify_each;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    if threads < 2 || checks.len() < 128 {
        return verify_each(checks);
    }
    let chunk = checks.len().div_ceil(threads);
    let parts: Vec<Vec<bool>> = std::thread::scope(|s| {
        let handles: Vec<_> = checks
            .chunks(chunk)
            .map(|part| s.spawn(move || verify_each(part)))
            .collect();
        handles
            .into_iter()
            // A verifier thread cannot panic on any input; if one did, its share
            // counts as unverified rather than taking the node down.
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut out = Vec::with_capacity(checks.len());
    for (part, want) in parts.into_iter().zip(checks.chunks(chunk)) {
        let mut part = part;
        part.resize(want.len(), false);
        out.extend(part);
    }
    out
}

fn execute_tx<R: StateReader + ?Sized>(
    o: &mut Overlay<R>,
    block: &BlockContext,
    bytes: &[u8],
    decoded: Option<SignedTransaction>,
    sig_ok: bool,
) -> Result<(atonomi_primitives::Hash, TxStatus, Vec<Event>), Fatal> {
    let tx_hash = SignedTransaction::hash_of(bytes);
    // The parameters as of this transaction: an earlier one of the block may have
    // changed max_tx_bytes.
    let params: Params = o.get(&StateKey::Params).map_err(fatal)?.unwrap_or_default();
    let stx = match check_for_chain(&params, &block.chain_id, bytes.len(), decoded) {
        Ok(t) if sig_ok => t,
        Ok(_) => return Ok((tx_hash, TxStatus::Invalid(InvalidTx::BadSignature), vec![])),
        Err(reason) => return Ok((tx_hash, TxStatus::Invalid(reason), vec![])),
    };
    let tx = stx.tx;
    let acct_key = StateKey::Account(tx.signer);
    let mut acct = match signer_rules(o, &tx, Stage::Block(block.height))? {
        Ok(acct) => acct,
        Err(reason) => return Ok((tx_hash, TxStatus::Invalid(reason), vec![])),
    };
    // Checkpoint signatures by validators are a duty and free (signer_rules refused
    // them from anyone else, so they cannot be used for free spam).
    let checkpoint = matches!(tx.call, atonomi_primitives::tx::Call::SignCheckpoint { .. });
    let fee = if checkpoint {
        atonomi_primitives::Amount::ZERO
    } else {
        params.tx_fee
    };
    if let Some(max) = tx.max_fee {
        if fee > max {
            let reason = InvalidTx::FeeAboveMax { fee, max };
            return Ok((tx_hash, TxStatus::Invalid(reason), vec![]));
        }
    }
    let Some(balance) = acct.balance.checked_sub(fee) else {
        return Ok((tx_hash, TxStatus::Invalid(InvalidTx::CannotPayFee), vec![]));
    };

    // From here the transaction is included: nonce and fee are consumed whatever the
    // call does.
    acct.nonce += 1;
    acct.balance = balance;
    o.put(&acct_key, &acct);
    let mut events = Vec::new();
    if !fee.is_zero() {
        let treasury = StateKey::Account(atonomi_primitives::AccountId::treasury());
        let mut t: Account = o.get(&treasury).map_err(fatal)?.unwrap_or_default();
        t.balance = t
            .balance
            .checked_add(fee)
            .ok_or(Fatal::InvalidBlock("treasury overflow".into()))?;
        o.put(&treasury, &t);
        events.push(Event::FeeCharged {
            payer: tx.signer,
            amount: fee,
        });
    }

    o.push();
    let mut ctx = Ctx {
        o,
        block,
        params,
        signer: tx.signer,
        events: Vec::new(),
    };
    let result = ctx.dispatch(tx.call);
    let call_events = std::mem::take(&mut ctx.events);
    match result {
        Ok(()) => {
            o.commit();
            events.extend(call_events);
            Ok((tx_hash, TxStatus::Success, events))
        }
        Err(ExecError::Call(e)) => {
            o.discard();
            Ok((tx_hash, TxStatus::Failed(e), events))
        }
        Err(ExecError::Fatal(f)) => Err(f),
    }
}
