//! blake3 hashing with domain separation.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A 32-byte blake3 digest.
#[derive(
    Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize,
)]
pub struct Hash(pub [u8; 32]);

/// Domain tags: every hashed or signed message names what it is, so a signature or
/// hash made for one purpose can never be replayed as another.
pub mod domain {
    pub const TX_SIGN: &str = "atonomi 2026 transaction signature v1";
    pub const TX_HASH: &str = "atonomi 2026 transaction hash v1";
    pub const BLOCK_HASH: &str = "atonomi 2026 block header v1";
    pub const TX_ROOT: &str = "atonomi 2026 transaction root v1";
    pub const ACTIVATION: &str = "atonomi 2026 device activation v1";
    pub const DEVICE_ID: &str = "atonomi 2026 device id v1";
    pub const MODULE_ACCOUNT: &str = "atonomi 2026 module account v1";
    pub const VALIDATOR_SET: &str = "atonomi 2026 validator set v1";
    pub const RECEIPT: &str = "atonomi 2026 receipt v1";
    pub const KEY_ROTATION: &str = "atonomi 2026 consensus key rotation v1";
}

impl Hash {
    pub const ZERO: Hash = Hash([0u8; 32]);

    /// Plain blake3 of `data`.
    pub fn of(data: &[u8]) -> Hash {
        Hash(*blake3::hash(data).as_bytes())
    }

    /// blake3 in key-derivation mode with `domain` as context, over `data`.
    pub fn with_domain(domain: &str, data: &[u8]) -> Hash {
        let mut h = blake3::Hasher::new_derive_key(domain);
        h.update(data);
        Hash(*h.finalize().as_bytes())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

/// Why a hex string is not a 32-byte value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected 64 hex characters (32 bytes), optionally prefixed with 0x")]
pub struct ParseHexError;

/// Parses 64 hex characters, with or without `0x`.
pub fn parse_hex32(s: &str) -> Result<[u8; 32], ParseHexError> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|_| ParseHexError)?;
    Ok(out)
}

impl FromStr for Hash {
    type Err = ParseHexError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex32(s).map(Hash)
    }
}

/// 32-byte newtypes are shown and parsed as 64 lowercase hex characters in JSON.
macro_rules! hex32_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&hex::encode(self.0))
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as Deserialize>::deserialize(d)?;
                $crate::hash::parse_hex32(&s)
                    .map(Self)
                    .map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use hex32_serde;
hex32_serde!(Hash);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_separate_hashes() {
        let a = Hash::with_domain(domain::TX_SIGN, b"x");
        let b = Hash::with_domain(domain::TX_HASH, b"x");
        assert_ne!(a, b);
        assert_ne!(a, Hash::of(b"x"));
    }

    #[test]
    fn hex_round_trip() {
        let h = Hash::of(b"abc");
        assert_eq!(h.to_hex().parse::<Hash>().unwrap(), h);
        assert_eq!(format!("0x{}", h.to_hex()).parse::<Hash>().unwrap(), h);
        assert!("zz".parse::<Hash>().is_err());
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<Hash>(&json).unwrap(), h);
    }
}
