//! The Atonomi device SDK: what a device needs to take part in the network, in a
//! `no_std` crate with no allocator — every output goes into a buffer the caller owns.
//!
//! - [`DeviceKey`]: the device's ed25519 key (from a 32-byte seed kept by the device);
//! - [`activation_signature`]: the device's consent to be activated by an owner;
//! - [`TxBuilder`]: `Pay`, `ReportInteraction` and `AnchorLog` transactions, encoded
//!   and signed exactly as the node expects (borsh, the transaction signing domain);
//! - [`header_state_root`] and [`verify_device`]: check a block header against a
//!   trusted hash, then a device record's inclusion (or absence) proof against that
//!   header's state root, and read the record's status and owner.
//!
//! Signatures follow the chain's scheme: ed25519 over blake3 in key-derivation mode
//! with a domain string as context, so a signature for one purpose never counts for
//! another. The C interface is the `device-sdk/c` crate (a static library and a
//! header); this crate is its portable core.
#![no_std]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod encode;
mod proof;

pub use encode::{Outcome, TxBuilder};
pub use proof::{header_state_root, verify_device, DeviceStatus, DeviceView};

use ed25519_dalek::{Signer, SigningKey};

/// Signing domains (the node's `atonomi_primitives::hash::domain`).
pub mod domain {
    pub const TX_SIGN: &str = "atonomi 2026 transaction signature v1";
    pub const ACTIVATION: &str = "atonomi 2026 device activation v1";
    pub const BLOCK_HASH: &str = "atonomi 2026 block header v1";
}

/// Why an SDK call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The output buffer is too small.
    BufferTooSmall,
    /// An input is longer than the chain accepts (chain id, memo, kind, parties).
    InputTooLong,
    /// Bytes that do not decode as the expected structure.
    Malformed,
    /// The header does not hash to the trusted hash.
    HeaderMismatch,
    /// The proof does not verify against the state root.
    ProofMismatch,
}

/// blake3 in key-derivation mode: `domain` as context, then `parts` in order.
pub(crate) fn domain_hash(domain: &str, parts: &[&[u8]]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key(domain);
    for p in parts {
        h.update(p);
    }
    *h.finalize().as_bytes()
}

/// The device's signing key. The seed is zeroed when the key is dropped.
pub struct DeviceKey(SigningKey);

impl core::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("DeviceKey")
            .field(&self.public_key())
            .finish()
    }
}

impl DeviceKey {
    /// The key of a 32-byte secret seed (generated once, in the factory or on first boot,
    /// from a hardware random source).
    pub fn from_seed(seed: &[u8; 32]) -> DeviceKey {
        DeviceKey(SigningKey::from_bytes(seed))
    }

    /// The public key: the device's `public_key` in its registration, and the account
    /// that signs its transactions.
    pub fn public_key(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    /// Signs the blake3 digest of `parts` (concatenated) in `domain`.
    pub fn sign_parts(&self, domain: &str, parts: &[&[u8]]) -> [u8; 64] {
        let digest = domain_hash(domain, parts);
        self.0.sign(&digest).to_bytes()
    }
}

/// The device's consent to its activation by `owner` on `chain_id`: the signature an
/// owner puts in `ActivateDevice` (or a manufacturer in `RegisterAndActivate`).
/// Signed message: borsh `(chain_id, device_id, owner)` in the activation domain.
pub fn activation_signature(
    key: &DeviceKey,
    chain_id: &str,
    device_id: &[u8; 32],
    owner: &[u8; 32],
) -> Result<[u8; 64], Error> {
    let len = encode::chain_id_len(chain_id)?;
    Ok(key.sign_parts(
        domain::ACTIVATION,
        &[&len, chain_id.as_bytes(), device_id, owner],
    ))
}

#[cfg(test)]
mod tests;
