//! ed25519 signing with domain separation and strict verification (no malleable or
//! small-order signatures, the RFC 8032 / ZIP-215-strict subset that dalek's
//! `verify_strict` accepts).

use crate::hash::Hash;
use crate::ids::AccountId;
use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A 64-byte ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Signature(pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}..)", hex::encode(&self.0[..6]))
    }
}

impl Serialize for Signature {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as Deserialize>::deserialize(d)?;
        let mut out = [0u8; 64];
        hex::decode_to_slice(s.strip_prefix("0x").unwrap_or(&s), &mut out)
            .map_err(|_| serde::de::Error::custom("signature must be 128 hex characters"))?;
        Ok(Signature(out))
    }
}

/// A public key that decoded as a valid curve point.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", hex::encode(&self.0.as_bytes()[..6]))
    }
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("public key is not a valid ed25519 point")]
    BadKey,
    #[error("signature does not verify")]
    BadSignature,
}

impl PublicKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<PublicKey, SignatureError> {
        let vk = VerifyingKey::from_bytes(bytes).map_err(|_| SignatureError::BadKey)?;
        // Weak (small-order) keys would let many messages verify under one signature.
        if vk.is_weak() {
            return Err(SignatureError::BadKey);
        }
        Ok(PublicKey(vk))
    }

    pub fn from_account(a: &AccountId) -> Result<PublicKey, SignatureError> {
        Self::from_bytes(a.as_bytes())
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn inner(&self) -> &VerifyingKey {
        &self.0
    }

    /// Verifies `sig` over the domain-separated digest of `msg`.
    pub fn verify(&self, domain: &str, msg: &[u8], sig: &Signature) -> Result<(), SignatureError> {
        let digest = Hash::with_domain(domain, msg);
        let sig = ed25519_dalek::Signature::from_bytes(&sig.0);
        self.0
            .verify_strict(digest.as_bytes(), &sig)
            .map_err(|_| SignatureError::BadSignature)
    }
}

/// Verifies `sig` by the account `signer` over `msg` in `domain`.
pub fn verify(
    signer: &AccountId,
    domain: &str,
    msg: &[u8],
    sig: &Signature,
) -> Result<(), SignatureError> {
    signer_key(signer)?.verify(domain, msg, sig)
}

/// Decoded keys of recent signers. Decoding a key (point decompression, a field
/// square root) is about a quarter of a verification, and the same accounts sign
/// transaction after transaction. The cache only ever holds what decoding returned,
/// so it cannot change an outcome; when full it starts over.
static SIGNER_KEYS: std::sync::Mutex<std::collections::BTreeMap<[u8; 32], PublicKey>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());
const SIGNER_KEYS_MAX: usize = 16_384;

fn signer_key(signer: &AccountId) -> Result<PublicKey, SignatureError> {
    let bytes = *signer.as_bytes();
    let lock = || SIGNER_KEYS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(k) = lock().get(&bytes) {
        return Ok(*k);
    }
    let key = PublicKey::from_bytes(&bytes)?;
    let mut cache = lock();
    if cache.len() >= SIGNER_KEYS_MAX {
        cache.clear();
    }
    cache.insert(bytes, key);
    Ok(key)
}

/// A signing key. The secret never leaves this type except through `to_seed` for key
/// files.
pub struct Keypair(SigningKey);

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair({})", self.account())
    }
}

impl Keypair {
    pub fn from_seed(seed: [u8; 32]) -> Keypair {
        Keypair(SigningKey::from_bytes(&seed))
    }

    /// A fresh key from the operating system's randomness.
    pub fn generate() -> Result<Keypair, String> {
        let mut seed = [0u8; 32];
        rand_core::OsRng
            .try_fill_bytes(&mut seed)
            .map_err(|e| format!("operating system randomness unavailable: {e}"))?;
        Ok(Keypair::from_seed(seed))
    }

    /// A deterministic key for tests and the dev chain: blake3 of the label.
    pub fn from_label(label: &str) -> Keypair {
        Keypair::from_seed(Hash::with_domain("atonomi 2026 test key v1", label.as_bytes()).0)
    }

    pub fn to_seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn account(&self) -> AccountId {
        AccountId::new(self.0.verifying_key().to_bytes())
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs the domain-separated digest of `msg`.
    pub fn sign(&self, domain: &str, msg: &[u8]) -> Signature {
        let digest = Hash::with_domain(domain, msg);
        Signature(self.0.sign(digest.as_bytes()).to_bytes())
    }
}

use rand_core::TryRngCore as _;

#[cfg(test)]
mod tests {
    use super::*;

    /// The malleable twin of a signature (S + L, the group order, encodes the same
    /// scalar) and signatures under a small-order key are refused: one message, one
    /// signature, so a transaction cannot be replayed under a second hash.
    #[test]
    fn malleable_signatures_and_weak_keys_are_refused() {
        let k = Keypair::from_label("m");
        let sig = k.sign("d", b"msg");
        assert!(verify(&k.account(), "d", b"msg", &sig).is_ok());
        // L = 2^252 + 27742317777372353535851937790883648493, little-endian.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut twin = sig;
        let mut carry = 0u16;
        for (s, l) in twin.0[32..].iter_mut().zip(L) {
            let v = u16::from(*s) + u16::from(l) + carry;
            *s = v as u8;
            carry = v >> 8;
        }
        assert_eq!(carry, 0, "S + L fits in 32 bytes for this signature");
        assert_ne!(twin, sig);
        assert_eq!(
            verify(&k.account(), "d", b"msg", &twin),
            Err(SignatureError::BadSignature)
        );
        // The identity point as a public key (small order) signs nothing.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(verify(&AccountId::new(identity), "d", b"msg", &sig).is_err());
    }

    #[test]
    fn sign_verify_and_domain_separation() {
        let k = Keypair::from_label("a");
        let sig = k.sign("d1", b"msg");
        assert!(verify(&k.account(), "d1", b"msg", &sig).is_ok());
        assert_eq!(
            verify(&k.account(), "d2", b"msg", &sig),
            Err(SignatureError::BadSignature)
        );
        assert_eq!(
            verify(&k.account(), "d1", b"msh", &sig),
            Err(SignatureError::BadSignature)
        );
        let other = Keypair::from_label("b");
        assert!(verify(&other.account(), "d1", b"msg", &sig).is_err());
    }

    #[test]
    fn rejects_small_order_keys() {
        // The identity point encodes as 0x01 followed by zeros: a weak key.
        let mut weak = [0u8; 32];
        weak[0] = 1;
        assert_eq!(PublicKey::from_bytes(&weak), Err(SignatureError::BadKey));
    }

    #[test]
    fn rejects_non_canonical_s() {
        // Adding the group order L to S gives a malleated signature that lax verifiers
        // accept; strict verification must not.
        let k = Keypair::from_label("m");
        let sig = k.sign("d", b"m");
        let l: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut s = [0u8; 32];
        s.copy_from_slice(&sig.0[32..]);
        let mut carry = 0u16;
        for i in 0..32 {
            let v = u16::from(s[i]) + u16::from(l[i]) + carry;
            s[i] = v as u8;
            carry = v >> 8;
        }
        let mut bad = sig;
        bad.0[32..].copy_from_slice(&s);
        assert!(verify(&k.account(), "d", b"m", &bad).is_err());
    }
}
