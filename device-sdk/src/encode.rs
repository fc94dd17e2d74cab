//! Transactions as the node decodes them (borsh), written into a caller's buffer.
//!
//! `SignedTransaction { tx: Transaction { chain_id, signer, nonce, max_fee, call }, signature }`
//! where the signature is over the encoded `Transaction` in the transaction domain.
//! The variant numbers below are the positions of the calls in the runtime's `Call`
//! enum; a test checks each against the node's own encoding.

use crate::{domain, DeviceKey, Error};

const CALL_PAY: u8 = 19;
const CALL_ANCHOR_LOG: u8 = 20;
const CALL_REPORT_INTERACTION: u8 = 21;

/// Limits of the chain (`atonomi_primitives::state::limits`).
pub const MAX_CHAIN_ID: usize = 32;
pub const MAX_MEMO: usize = 256;
pub const MAX_KIND: usize = 32;
pub const MAX_PARTIES: usize = 16;

/// How an exchange with a peer went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success = 0,
    Failure = 1,
}

pub(crate) fn chain_id_len(chain_id: &str) -> Result<[u8; 4], Error> {
    if chain_id.is_empty() || chain_id.len() > MAX_CHAIN_ID {
        return Err(Error::InputTooLong);
    }
    Ok((chain_id.len() as u32).to_le_bytes())
}

struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let end = self
            .len
            .checked_add(bytes.len())
            .ok_or(Error::BufferTooSmall)?;
        self.buf
            .get_mut(self.len..end)
            .ok_or(Error::BufferTooSmall)?
            .copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    fn len_prefixed(&mut self, bytes: &[u8], max: usize) -> Result<(), Error> {
        if bytes.len() > max {
            return Err(Error::InputTooLong);
        }
        self.put(&(bytes.len() as u32).to_le_bytes())?;
        self.put(bytes)
    }
}

/// Builds transactions signed by one device on one chain.
#[derive(Debug)]
pub struct TxBuilder<'k> {
    key: &'k DeviceKey,
    chain_id: &'k str,
}

impl<'k> TxBuilder<'k> {
    pub fn new(key: &'k DeviceKey, chain_id: &'k str) -> Result<TxBuilder<'k>, Error> {
        chain_id_len(chain_id)?;
        Ok(TxBuilder { key, chain_id })
    }

    /// Writes the transaction header and `call` into `out`, signs it, appends the
    /// signature; returns the length of the signed transaction.
    fn build(
        &self,
        out: &mut [u8],
        nonce: u64,
        call: impl FnOnce(&mut Writer<'_>) -> Result<(), Error>,
    ) -> Result<usize, Error> {
        let mut w = Writer { buf: out, len: 0 };
        w.len_prefixed(self.chain_id.as_bytes(), MAX_CHAIN_ID)?;
        w.put(&self.key.public_key())?;
        w.put(&nonce.to_le_bytes())?;
        w.put(&[0])?; // max_fee: None (the chain's current fee)
        call(&mut w)?;
        let signed_len = w.len;
        let tx = w.buf.get(..signed_len).ok_or(Error::BufferTooSmall)?;
        let signature = self.key.sign_parts(domain::TX_SIGN, &[tx]);
        w.put(&signature)?;
        Ok(w.len)
    }

    /// `Pay { from_device, to_device, amount, memo }` (amount in base units, 10^-18 ATMI).
    pub fn pay(
        &self,
        out: &mut [u8],
        nonce: u64,
        from_device: &[u8; 32],
        to_device: &[u8; 32],
        amount: u128,
        memo: &[u8],
    ) -> Result<usize, Error> {
        self.build(out, nonce, |w| {
            w.put(&[CALL_PAY])?;
            w.put(from_device)?;
            w.put(to_device)?;
            w.put(&amount.to_le_bytes())?;
            w.len_prefixed(memo, MAX_MEMO)
        })
    }

    /// `ReportInteraction { device, peer, outcome, receipt }`.
    pub fn report_interaction(
        &self,
        out: &mut [u8],
        nonce: u64,
        device: &[u8; 32],
        peer: &[u8; 32],
        outcome: Outcome,
        receipt: &[u8; 32],
    ) -> Result<usize, Error> {
        self.build(out, nonce, |w| {
            w.put(&[CALL_REPORT_INTERACTION])?;
            w.put(device)?;
            w.put(peer)?;
            w.put(&[outcome as u8])?;
            w.put(receipt)
        })
    }

    /// `AnchorLog { device, hash, kind, parties }`.
    pub fn anchor_log(
        &self,
        out: &mut [u8],
        nonce: u64,
        device: &[u8; 32],
        hash: &[u8; 32],
        kind: &str,
        parties: &[[u8; 32]],
    ) -> Result<usize, Error> {
        if kind.is_empty() || parties.len() > MAX_PARTIES {
            return Err(Error::InputTooLong);
        }
        self.build(out, nonce, |w| {
            w.put(&[CALL_ANCHOR_LOG])?;
            w.put(device)?;
            w.put(hash)?;
            w.len_prefixed(kind.as_bytes(), MAX_KIND)?;
            w.put(&(parties.len() as u32).to_le_bytes())?;
            for p in parties {
                w.put(p)?;
            }
            Ok(())
        })
    }
}
