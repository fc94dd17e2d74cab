//! Typed errors of call execution. Each has a stable numeric code (receipts, RPC) and
//! a stable snake_case name (JSON).

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

macro_rules! call_errors {
    ($($(#[$m:meta])* $name:ident = $code:literal, $msg:literal;)*) => {
        /// Why a call failed. A failed call consumes the nonce (and the transaction fee)
        /// and changes nothing else.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize, thiserror::Error)]
        #[serde(rename_all = "snake_case")]
        #[borsh(use_discriminant = false)]
        pub enum CallError {
            $($(#[$m])* #[error($msg)] $name,)*
        }

        impl CallError {
            /// Stable numeric code.
            pub fn code(self) -> u16 {
                match self { $(CallError::$name => $code,)* }
            }

            pub fn from_code(code: u16) -> Option<CallError> {
                match code { $($code => Some(CallError::$name),)* _ => None }
            }

            pub const ALL: &'static [CallError] = &[$(CallError::$name,)*];
        }
    };
}

call_errors! {
    // Token
    InsufficientBalance = 100, "the paying account's balance is too low";
    InsufficientAllowance = 101, "the allowance is too low";
    ZeroAmount = 102, "the amount must be greater than zero";
    Overflow = 103, "arithmetic overflow";
    SelfTransfer = 104, "sender and receiver are the same account";
    ModuleAccount = 105, "module accounts cannot be used here";
    FeeTooHigh = 106, "the transaction fee exceeds max_fee";
    // Governance
    NotAdmin = 200, "the signer is not a governance admin";
    ProposalNotFound = 201, "no such proposal";
    ProposalNotPending = 202, "the proposal is no longer pending";
    AlreadyApproved = 203, "the signer already approved this proposal";
    InvalidThreshold = 204, "threshold must be between 1 and the number of admins";
    InvalidParams = 205, "the parameter set is invalid";
    ValidatorExists = 206, "a validator with this key already exists";
    ValidatorNotFound = 207, "no validator with this key";
    InvalidValidatorSet = 208, "the validator set would be empty, too large or have zero power";
    InvalidMember = 209, "the new member is invalid (no keys, duplicate keys, name too long)";
    DuplicateBridgeAddress = 210, "another validator of the set has this bridge address";
    InvalidUpgrade = 211, "upgrade name must be 1..=64 characters of a-z, 0-9, '.', '-', '_'";
    UpgradeTooSoon = 212, "the upgrade height is fewer than upgrade_min_delay blocks ahead";
    UpgradeNameUsed = 213, "an upgrade of this name was scheduled before (names are not reused)";
    UpgradeScheduled = 214, "another upgrade is scheduled: cancel it first";
    UpgradeNotScheduled = 215, "no scheduled upgrade has this name";
    // Validator operators
    RotationPending = 216, "this validator's key is not in both the current and the next set (a change is pending)";
    InvalidNewKey = 217, "the new consensus key is not a valid ed25519 key, or a validator uses or used it";
    BadKeyProof = 218, "the new key's proof of possession does not verify";
    StaleKeyProof = 219, "the proof's height is ahead of the block or more than ROTATION_PROOF_WINDOW behind it";
    // Membership
    ManufacturerExists = 300, "a manufacturer with this id exists";
    ManufacturerNotFound = 301, "no such manufacturer";
    ManufacturerNotActive = 302, "the manufacturer is suspended or removed";
    NotManufacturerKey = 303, "the signer is not a key of this manufacturer";
    AuditorExists = 304, "an auditor with this id exists";
    AuditorNotFound = 305, "no such auditor";
    AuditorNotActive = 306, "the auditor is suspended or removed";
    NotAuditorKey = 307, "the signer is not a key of this auditor";
    InvalidStatusChange = 308, "that status change is not allowed from the current status";
    // Devices
    EmptyBatch = 400, "the batch is empty";
    BatchTooLarge = 401, "the batch exceeds max_batch";
    DuplicateInBatch = 402, "the batch names the same device twice";
    DeviceExists = 403, "this device id was registered before (ids are never reused)";
    DeviceNotFound = 404, "no such device";
    InvalidDeviceKey = 405, "the device public key is not a valid ed25519 key";
    BadDeviceSignature = 406, "the device signature does not verify with the registered device key";
    DeviceNotRegistered = 407, "the device is not in the Registered state";
    DeviceNotActive = 408, "the device is not active";
    DeviceRevoked = 409, "the device is revoked";
    NotOwner = 410, "the signer does not own the device";
    NotDeviceKey = 411, "the signer is not the device's key";
    WrongManufacturer = 412, "the device belongs to another manufacturer";
    InvalidWallet = 413, "a wallet must be the owner's own account";
    InvalidAttributes = 414, "attributes are inconsistent (zero window, empty area)";
    DeviceSuspended = 415, "the device is suspended";
    // Reputation
    InvalidSubject = 500, "the reputation subject does not exist";
    InvalidReputationType = 501, "reputation type must be 1..=32 bytes";
    // Payments and policy
    BelowMinReputation = 600, "a device's reputation is below the required minimum";
    PerTxLimitExceeded = 601, "the amount exceeds the payer's per-transaction limit";
    WindowLimitExceeded = 602, "the amount exceeds the payer's limit for the current window";
    PayeeNotAllowed = 603, "the payee is not on the payer's allowlist";
    OutsideArea = 604, "the payee is outside the payer's allowed area";
    SamePayerPayee = 605, "a device cannot pay itself";
    // Services and logs
    ServiceNotFound = 700, "no such service offer";
    InvalidService = 701, "service type must be 1..=32 bytes and expiry in the future";
    InvalidKind = 702, "log kind must be 1..=32 bytes";
    // Bridge
    NotValidator = 800, "only a member of the current validator set with a bridge address may sign checkpoints";
    CheckpointAlreadySigned = 801, "this validator already signed the checkpoint of this epoch";
    InvalidCheckpoint = 802, "epoch and height must be at least 1";
}

/// Why a transaction is not executable at all: it changes nothing, not even the
/// nonce. Receipts carry it (`TxStatus::Invalid`), so it is consensus data: a closed
/// set of typed reasons with numbers only, never a library's error text. Append new
/// variants at the end: the borsh tag is the position.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
    thiserror::Error,
)]
#[serde(rename_all = "snake_case")]
pub enum InvalidTx {
    #[error("the transaction is {len} bytes, more than max_tx_bytes {max}")]
    TooLarge { len: u64, max: u64 },
    #[error("the bytes do not decode as a signed transaction")]
    Undecodable,
    #[error("the transaction is signed for another chain id")]
    WrongChain,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("nonce {nonce} does not match the account nonce {expected}")]
    WrongNonce { nonce: u64, expected: u64 },
    #[error("nonce {nonce} already used (next is {next})")]
    NonceUsed { nonce: u64, next: u64 },
    #[error(
        "only validators with a bridge address sign checkpoints, of the heights their set voted on"
    )]
    NotCheckpointSigner,
    #[error("tx_fee {fee} exceeds max_fee {max}")]
    FeeAboveMax {
        fee: crate::ids::Amount,
        max: crate::ids::Amount,
    },
    #[error("the signer cannot pay the transaction fee")]
    CannotPayFee,
}

impl CallError {
    /// The `CallError` variant name in snake_case.
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn codes_are_unique_and_round_trip() {
        let mut seen = BTreeSet::new();
        for e in CallError::ALL {
            assert!(seen.insert(e.code()), "duplicate code {}", e.code());
            assert_eq!(CallError::from_code(e.code()), Some(*e));
            assert!(!e.name().is_empty());
        }
        assert_eq!(CallError::from_code(9999), None);
    }

    /// Receipts are hashed into `receipts_root`: the bytes of a reason are fixed by
    /// its position and its numbers, and its text is for display only.
    #[test]
    fn invalid_reasons_are_typed_and_their_bytes_fixed() {
        use crate::codec::encode;
        use crate::event::TxStatus;
        assert_eq!(encode(&InvalidTx::Undecodable), [1]);
        let mut nonce = vec![4];
        nonce.extend_from_slice(&7u64.to_le_bytes());
        nonce.extend_from_slice(&9u64.to_le_bytes());
        assert_eq!(
            encode(&InvalidTx::WrongNonce {
                nonce: 7,
                expected: 9
            }),
            nonce
        );
        assert_eq!(encode(&TxStatus::Invalid(InvalidTx::CannotPayFee)), [2, 8]);
        assert_eq!(
            TxStatus::Invalid(InvalidTx::BadSignature).to_string(),
            "not executable: the signature does not verify"
        );
        assert_eq!(
            serde_json::to_value(TxStatus::Invalid(InvalidTx::WrongChain)).unwrap(),
            serde_json::json!({"status": "invalid", "error": "wrong_chain"})
        );
    }
}
