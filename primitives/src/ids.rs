//! Typed ids and quantities. Each is a newtype built with `new`; amounts only offer
//! checked arithmetic.

use crate::hash::{domain, hex32_serde, parse_hex32, Hash, ParseHexError};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// An account: the 32-byte ed25519 public key that signs for it. Shown as 64 hex
/// characters everywhere (RPC, CLI, genesis).
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, BorshSerialize, BorshDeserialize,
)]
pub struct AccountId(pub [u8; 32]);
hex32_serde!(AccountId);

impl AccountId {
    pub const fn new(bytes: [u8; 32]) -> Self {
        AccountId(bytes)
    }

    /// A module account (treasury, auditor pool): its id is a domain-separated hash of
    /// its name, so nobody holds its private key and only the runtime moves its funds.
    pub fn module(name: &str) -> Self {
        AccountId(Hash::with_domain(domain::MODULE_ACCOUNT, name.as_bytes()).0)
    }

    pub fn treasury() -> Self {
        Self::module("treasury")
    }

    pub fn auditor_pool() -> Self {
        Self::module("auditor-pool")
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// A device id: blake3 of (manufacturer salt ‖ hardware id), computed off chain so the
/// raw hardware id never appears on chain.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, BorshSerialize, BorshDeserialize,
)]
pub struct DeviceId(pub [u8; 32]);
hex32_serde!(DeviceId);

impl DeviceId {
    pub const fn new(bytes: [u8; 32]) -> Self {
        DeviceId(bytes)
    }

    /// The salted id a manufacturer derives from its secret salt and the hardware id.
    pub fn derive(salt: &[u8], hardware_id: &[u8]) -> Self {
        let mut h = blake3::Hasher::new_derive_key(domain::DEVICE_ID);
        h.update(&(salt.len() as u64).to_le_bytes());
        h.update(salt);
        h.update(hardware_id);
        DeviceId(*h.finalize().as_bytes())
    }
}

macro_rules! hex_display {
    ($($t:ident),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($t), hex::encode(&self.0[..6]))
            }
        }
        impl FromStr for $t {
            type Err = ParseHexError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_hex32(s).map($t)
            }
        }
    )*};
}
hex_display!(AccountId, DeviceId);

macro_rules! int_id {
    ($(#[$m:meta])* $t:ident, $inner:ty) => {
        $(#[$m])*
        #[derive(
            Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug,
            BorshSerialize, BorshDeserialize, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $t(pub $inner);

        impl $t {
            pub const fn new(v: $inner) -> Self {
                $t(v)
            }
            pub const fn get(self) -> $inner {
                self.0
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

int_id!(
    /// A manufacturer, numbered by the governance action that adds it.
    ManufacturerId,
    u32
);
int_id!(
    /// An auditor, numbered by the governance action that adds it.
    AuditorId,
    u32
);
int_id!(
    /// A governance proposal, numbered sequentially from 1.
    ProposalId,
    u64
);
int_id!(
    /// A block height; genesis state is height 0, the first block is height 1.
    Height,
    u64
);
int_id!(
    /// Milliseconds since the Unix epoch, as agreed in a block header (never read from
    /// a local clock inside the runtime).
    Timestamp,
    u64
);

impl Height {
    pub fn next(self) -> Height {
        Height(self.0.saturating_add(1))
    }
}

/// A reputation score: 0..=2_147_483_647 (the range of the original contracts).
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, BorshSerialize, Serialize,
)]
#[serde(transparent)]
pub struct Score(u32);

impl BorshDeserialize for Score {
    fn deserialize_reader<R: borsh::io::Read>(reader: &mut R) -> borsh::io::Result<Self> {
        let v = u32::deserialize_reader(reader)?;
        Score::new(v).ok_or_else(|| {
            borsh::io::Error::new(borsh::io::ErrorKind::InvalidData, "score above 2147483647")
        })
    }
}

impl<'de> Deserialize<'de> for Score {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = <u32 as Deserialize>::deserialize(d)?;
        Score::new(v).ok_or_else(|| serde::de::Error::custom("score above 2147483647"))
    }
}

impl Score {
    pub const MAX: u32 = 2_147_483_647;

    /// `None` when `v` is above [`Score::MAX`].
    pub const fn new(v: u32) -> Option<Score> {
        if v <= Self::MAX {
            Some(Score(v))
        } else {
            None
        }
    }

    pub const fn get(self) -> u32 {
        self.0
    }
}

/// The chain id: short printable ASCII, part of every signed message.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, BorshSerialize, Serialize)]
#[serde(transparent)]
pub struct ChainId(String);

/// Why a chain id is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("chain id must be 1..=32 characters of [a-z0-9-], got {0:?}")]
pub struct InvalidChainId(pub String);

impl ChainId {
    pub const MAX_LEN: usize = 32;

    pub fn new(s: impl Into<String>) -> Result<ChainId, InvalidChainId> {
        let s = s.into();
        let ok = !s.is_empty()
            && s.len() <= Self::MAX_LEN
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(ChainId(s))
        } else {
            Err(InvalidChainId(s))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl BorshDeserialize for ChainId {
    fn deserialize_reader<R: borsh::io::Read>(reader: &mut R) -> borsh::io::Result<Self> {
        let s = crate::codec::bounded::string::<R, { ChainId::MAX_LEN }>(reader)?;
        ChainId::new(s)
            .map_err(|e| borsh::io::Error::new(borsh::io::ErrorKind::InvalidData, e.to_string()))
    }
}

impl<'de> Deserialize<'de> for ChainId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ChainId::new(<String as Deserialize>::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A token amount in base units (10^-18 ATMI). Only checked arithmetic is offered.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Debug,
    BorshSerialize,
    BorshDeserialize,
)]
pub struct Amount(u128);

impl Amount {
    pub const ZERO: Amount = Amount(0);
    /// Base units per whole ATMI (18 decimals).
    pub const ONE_ATMI: u128 = 1_000_000_000_000_000_000;

    pub const fn new(base_units: u128) -> Amount {
        Amount(base_units)
    }

    /// `n` whole ATMI, `None` on overflow.
    pub const fn atmi(n: u128) -> Option<Amount> {
        match n.checked_mul(Self::ONE_ATMI) {
            Some(v) => Some(Amount(v)),
            None => None,
        }
    }

    pub const fn get(self) -> u128 {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn checked_add(self, o: Amount) -> Option<Amount> {
        self.0.checked_add(o.0).map(Amount)
    }

    pub fn checked_sub(self, o: Amount) -> Option<Amount> {
        self.0.checked_sub(o.0).map(Amount)
    }

    pub fn checked_mul(self, n: u128) -> Option<Amount> {
        self.0.checked_mul(n).map(Amount)
    }

    /// `self * bps / 10_000`, rounded down; `None` on overflow.
    pub fn bps(self, bps: u16) -> Option<Amount> {
        // Split to avoid overflow for large amounts: (q*10000 + r) * bps / 10000.
        let q = self.0 / 10_000;
        let r = self.0 % 10_000;
        let a = q.checked_mul(u128::from(bps))?;
        let b = r * u128::from(bps) / 10_000;
        a.checked_add(b).map(Amount)
    }

    pub fn min(self, o: Amount) -> Amount {
        Amount(self.0.min(o.0))
    }

    /// Parses a decimal amount: `"1.5"` means 1.5 ATMI; a plain integer with the suffix
    /// `base` (e.g. `"15base"`) means base units.
    pub fn parse_atmi(s: &str) -> Option<Amount> {
        if let Some(base) = s.strip_suffix("base") {
            return base.parse::<u128>().ok().map(Amount);
        }
        let (int, frac) = match s.split_once('.') {
            Some((i, f)) => (i, f),
            None => (s, ""),
        };
        if frac.len() > 18 || (int.is_empty() && frac.is_empty()) {
            return None;
        }
        if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let int: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
        let mut frac_units: u128 = if frac.is_empty() {
            0
        } else {
            frac.parse().ok()?
        };
        for _ in frac.len()..18 {
            frac_units *= 10;
        }
        int.checked_mul(Self::ONE_ATMI)?
            .checked_add(frac_units)
            .map(Amount)
    }
}

impl fmt::Display for Amount {
    /// Whole ATMI with up to 18 decimals, trailing zeros trimmed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let int = self.0 / Self::ONE_ATMI;
        let frac = self.0 % Self::ONE_ATMI;
        if frac == 0 {
            write!(f, "{int}")
        } else {
            let s = format!("{frac:018}");
            write!(f, "{int}.{}", s.trim_end_matches('0'))
        }
    }
}

// Amounts travel as decimal strings of base units in JSON: u128 does not fit in a JSON
// number that every client parses exactly.
impl Serialize for Amount {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as Deserialize>::deserialize(d)?;
        if s.len() > 39 || !s.bytes().all(|b| b.is_ascii_digit()) || s.is_empty() {
            return Err(serde::de::Error::custom(
                "amount must be a decimal string of base units",
            ));
        }
        s.parse::<u128>()
            .map(Amount)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amount_checked_math() {
        let max = Amount::new(u128::MAX);
        assert!(max.checked_add(Amount::new(1)).is_none());
        assert!(Amount::ZERO.checked_sub(Amount::new(1)).is_none());
        assert_eq!(Amount::new(10_000).bps(100), Some(Amount::new(100)));
        assert_eq!(Amount::new(99).bps(100), Some(Amount::ZERO));
        assert_eq!(max.bps(10_000), Some(max));
        assert_eq!(max.bps(5_000), Some(Amount::new(u128::MAX / 2)));
    }

    #[test]
    fn amount_parse_and_display() {
        assert_eq!(Amount::parse_atmi("1"), Amount::atmi(1));
        assert_eq!(
            Amount::parse_atmi("0.125"),
            Some(Amount::new(125_000_000_000_000_000))
        );
        assert_eq!(Amount::parse_atmi("7base"), Some(Amount::new(7)));
        assert_eq!(Amount::parse_atmi("1.0000000000000000001"), None);
        assert_eq!(Amount::parse_atmi("-1"), None);
        assert_eq!(Amount::parse_atmi("."), None);
        assert_eq!(Amount::new(125_000_000_000_000_000).to_string(), "0.125");
        assert_eq!(Amount::atmi(3).unwrap().to_string(), "3");
    }

    #[test]
    fn score_bounds() {
        assert!(Score::new(Score::MAX).is_some());
        assert!(Score::new(Score::MAX + 1).is_none());
    }

    #[test]
    fn chain_id_rules() {
        assert!(ChainId::new("atonomi-dev").is_ok());
        assert!(ChainId::new("").is_err());
        assert!(ChainId::new("UPPER").is_err());
        assert!(ChainId::new("x".repeat(33)).is_err());
        let bytes = crate::codec::encode(&"BAD".to_string());
        assert!(crate::codec::decode::<ChainId>(&bytes, 64).is_err());
    }

    #[test]
    fn module_accounts_differ() {
        assert_ne!(AccountId::treasury(), AccountId::auditor_pool());
    }
}
