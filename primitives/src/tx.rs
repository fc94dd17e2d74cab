//! The transaction envelope and every call of the protocol.
//!
//! A transaction is `{chain_id, signer, nonce, max_fee, call}`; the signer signs the
//! domain-separated blake3 of its borsh bytes. The transaction hash is the
//! domain-separated blake3 of the signed bytes (envelope and signature).

use crate::codec::{self, bounded, CodecError};
use crate::crypto::{self, Keypair, Signature, SignatureError};
use crate::gov::GovAction;
use crate::hash::{domain, Hash};
use crate::ids::{
    AccountId, Amount, AuditorId, ChainId, DeviceId, ManufacturerId, ProposalId, Score,
};
use crate::params::MAX_TX_BYTES_CEILING;
use crate::state::{limits, Attributes, Direction, GeoArea, Subject};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Transaction {
    pub chain_id: ChainId,
    pub signer: AccountId,
    /// Must equal the signer's account nonce.
    pub nonce: u64,
    /// Most the signer will pay in transaction fees (`None`: the current `tx_fee`).
    pub max_fee: Option<Amount>,
    pub call: Call,
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SignedTransaction {
    pub tx: Transaction,
    pub signature: Signature,
}

impl Transaction {
    /// The bytes the signer signs (in the `TX_SIGN` domain).
    pub fn signing_bytes(&self) -> Vec<u8> {
        codec::encode(self)
    }

    pub fn sign(self, key: &Keypair) -> SignedTransaction {
        let signature = key.sign(domain::TX_SIGN, &self.signing_bytes());
        SignedTransaction {
            tx: self,
            signature,
        }
    }
}

impl SignedTransaction {
    pub fn to_bytes(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes signed-transaction bytes, bounded by the hard ceiling.
    pub fn from_bytes(bytes: &[u8]) -> Result<SignedTransaction, CodecError> {
        codec::decode(bytes, MAX_TX_BYTES_CEILING)
    }

    pub fn hash(&self) -> Hash {
        Self::hash_of(&self.to_bytes())
    }

    /// The hash of a transaction from its encoding (equal to [`Self::hash`] of what the
    /// bytes decode to: the encoding is canonical).
    pub fn hash_of(bytes: &[u8]) -> Hash {
        Hash::with_domain(domain::TX_HASH, bytes)
    }

    pub fn verify_signature(&self) -> Result<(), SignatureError> {
        crypto::verify(
            &self.tx.signer,
            domain::TX_SIGN,
            &self.tx.signing_bytes(),
            &self.signature,
        )
    }

    /// The signature as one item of a batch (see [`crypto::verify_each`]).
    pub fn signature_check(&self) -> crypto::SignatureCheck {
        crypto::SignatureCheck::new(
            &self.tx.signer,
            domain::TX_SIGN,
            &self.tx.signing_bytes(),
            &self.signature,
        )
    }
}

/// One device in a `RegisterDevices` whitelist.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct DeviceRegistration {
    /// Salted hash of the hardware id (see [`DeviceId::derive`]).
    pub device_id: DeviceId,
    pub public_key: AccountId,
    #[borsh(deserialize_with = "bounded::vec::<_, String, { limits::PROTOCOLS }>")]
    #[serde(default)]
    pub protocols: Vec<String>,
    #[borsh(deserialize_with = "bounded::bytes::<_, { limits::METADATA }>")]
    #[serde(default)]
    pub metadata: Vec<u8>,
}

/// One entry of a `WriteReputation` batch.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ReputationWrite {
    pub subject: Subject,
    #[borsh(deserialize_with = "bounded::string::<_, { limits::TYPE_NAME }>")]
    pub rep_type: String,
    pub score: Score,
    pub direction: Direction,
}

/// Outcome of an interaction a device reports about a peer.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
}

/// Every call. The doc line of each names who may send it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Call {
    // ---- Token (anyone) ----
    /// Anyone: move tokens.
    Transfer { to: AccountId, amount: Amount },
    /// Anyone: set `spender`'s allowance over the signer's tokens (overwrites).
    Approve { spender: AccountId, amount: Amount },
    /// A spender: move `from`'s tokens within the allowance.
    TransferFrom {
        from: AccountId,
        to: AccountId,
        amount: Amount,
    },
    /// Anyone: destroy own tokens, lowering the total supply.
    Burn { amount: Amount },
    /// Anyone: add tokens to a manufacturer's pool (funds reputation rewards).
    DepositToPool {
        manufacturer: ManufacturerId,
        amount: Amount,
    },

    // ---- Governance (admins) ----
    /// Admin: open a proposal (counts as the proposer's approval).
    Propose { action: GovAction },
    /// Admin: approve a pending proposal; the k-th approval executes it.
    ApproveProposal { id: ProposalId },

    // ---- Manufacturer (its keys) ----
    /// Manufacturer key: whitelist devices; the per-device fee goes to its pool.
    RegisterDevices {
        manufacturer: ManufacturerId,
        #[borsh(deserialize_with = "bounded::vec::<_, DeviceRegistration, { limits::BATCH }>")]
        devices: Vec<DeviceRegistration>,
    },
    /// Manufacturer key: register a device and activate it for `owner` in one step
    /// (pre-owned devices); the device still signs the activation.
    RegisterAndActivate {
        manufacturer: ManufacturerId,
        device: DeviceRegistration,
        owner: AccountId,
        device_signature: Signature,
    },
    /// Manufacturer key of the device's manufacturer.
    SuspendDevice { device: DeviceId },
    /// Manufacturer key of the device's manufacturer.
    ResumeDevice { device: DeviceId },
    /// Manufacturer key of the device's manufacturer; final.
    RevokeDevice { device: DeviceId },

    // ---- Owner ----
    /// The new owner (signer), with the device's signature over
    /// (chain id, device id, signer): pays the activation fee.
    ActivateDevice {
        device: DeviceId,
        device_signature: Signature,
    },
    /// Owner: hand the device to `to`; `with_wallet` keeps the payment-wallet binding,
    /// otherwise it is cleared.
    TransferDevice {
        device: DeviceId,
        to: AccountId,
        with_wallet: bool,
    },
    /// Owner.
    SetAttributes {
        device: DeviceId,
        attributes: Attributes,
    },
    /// Owner: `Some(owner)` lets the device pay from the owner's account; `None` makes it
    /// pay from its own account.
    SetWallet {
        device: DeviceId,
        wallet: Option<AccountId>,
    },
    /// Owner.
    RegisterService {
        device: DeviceId,
        #[borsh(deserialize_with = "bounded::string::<_, { limits::TYPE_NAME }>")]
        service_type: String,
        price: Amount,
        #[borsh(deserialize_with = "bounded::string::<_, { limits::UNIT }>")]
        unit: String,
        area: Option<GeoArea>,
        #[borsh(deserialize_with = "bounded::bytes::<_, { limits::METADATA }>")]
        metadata: Vec<u8>,
        expiry: crate::ids::Height,
    },
    /// Owner.
    WithdrawService {
        device: DeviceId,
        #[borsh(deserialize_with = "bounded::string::<_, { limits::TYPE_NAME }>")]
        service_type: String,
    },

    // ---- Auditor (its keys) ----
    /// Auditor key: write scores; each accepted entry earns the decayed reward.
    WriteReputation {
        auditor: AuditorId,
        #[borsh(deserialize_with = "bounded::vec::<_, ReputationWrite, { limits::BATCH }>")]
        entries: Vec<ReputationWrite>,
    },

    // ---- Device (signed with the device key) ----
    /// Device: pay another device, checked against both devices' status, reputation
    /// and the payer's attributes; the payment fee is split auditor pool / treasury.
    Pay {
        from_device: DeviceId,
        to_device: DeviceId,
        amount: Amount,
        #[borsh(deserialize_with = "bounded::bytes::<_, { limits::MEMO }>")]
        memo: Vec<u8>,
    },
    /// Device: anchor the hash of an off-chain transaction or log batch.
    AnchorLog {
        device: DeviceId,
        hash: Hash,
        #[borsh(deserialize_with = "bounded::string::<_, { limits::TYPE_NAME }>")]
        kind: String,
        #[borsh(deserialize_with = "bounded::vec::<_, DeviceId, { limits::PARTIES }>")]
        parties: Vec<DeviceId>,
    },
    /// Device: report how an exchange with `peer` went (input of the network auditor).
    ReportInteraction {
        device: DeviceId,
        peer: DeviceId,
        outcome: Outcome,
        receipt: Hash,
    },

    // ---- Validator operator (a key of the validator's operator manufacturer) ----
    /// Operator: replace the consensus key of `validator` (its key now) by `new_key`,
    /// from `VALIDATOR_SET_DELAY` blocks after this one, like any validator-set
    /// change. `proof` is `new_key`'s signature of (chain id, validator, new_key,
    /// height) ([`sign_rotation`]); `height` is at most the including block's and at
    /// most `ROTATION_PROOF_WINDOW` below it.
    RotateConsensusKey {
        validator: AccountId,
        new_key: AccountId,
        height: crate::ids::Height,
        proof: Signature,
    },

    // ---- Validator (its consensus key; no fee) ----
    /// Validator: its bridge key's signature of the Ethereum checkpoint of `epoch`.
    SignCheckpoint {
        epoch: u64,
        height: crate::ids::Height,
        block_hash: Hash,
        state_root: Hash,
        next_set_hash: Hash,
        signature: crate::state::EthSignature,
    },
}

impl Call {
    /// Short name, used in logs, metrics and the authorization matrix.
    pub fn name(&self) -> &'static str {
        match self {
            Call::Transfer { .. } => "transfer",
            Call::Approve { .. } => "approve",
            Call::TransferFrom { .. } => "transfer_from",
            Call::Burn { .. } => "burn",
            Call::DepositToPool { .. } => "deposit_to_pool",
            Call::Propose { .. } => "propose",
            Call::ApproveProposal { .. } => "approve_proposal",
            Call::RegisterDevices { .. } => "register_devices",
            Call::RegisterAndActivate { .. } => "register_and_activate",
            Call::SuspendDevice { .. } => "suspend_device",
            Call::ResumeDevice { .. } => "resume_device",
            Call::RevokeDevice { .. } => "revoke_device",
            Call::ActivateDevice { .. } => "activate_device",
            Call::TransferDevice { .. } => "transfer_device",
            Call::SetAttributes { .. } => "set_attributes",
            Call::SetWallet { .. } => "set_wallet",
            Call::RegisterService { .. } => "register_service",
            Call::WithdrawService { .. } => "withdraw_service",
            Call::WriteReputation { .. } => "write_reputation",
            Call::Pay { .. } => "pay",
            Call::AnchorLog { .. } => "anchor_log",
            Call::ReportInteraction { .. } => "report_interaction",
            Call::SignCheckpoint { .. } => "sign_checkpoint",
            Call::RotateConsensusKey { .. } => "rotate_consensus_key",
        }
    }
}

/// The message a device signs to consent to its activation by `owner`:
/// (chain id, device id, owner), borsh-encoded, in the `ACTIVATION` domain.
pub fn activation_message(chain_id: &ChainId, device: &DeviceId, owner: &AccountId) -> Vec<u8> {
    codec::encode(&(chain_id, device, owner))
}

/// What a new consensus key signs to prove it is held by whoever rotates to it:
/// (chain id, validator's current key, new key, height), borsh-encoded, in the
/// `KEY_ROTATION` domain.
pub fn rotation_message(
    chain_id: &ChainId,
    validator: &AccountId,
    new_key: &AccountId,
    height: crate::ids::Height,
) -> Vec<u8> {
    codec::encode(&(chain_id, validator, new_key, height))
}

/// The proof of possession of `new_key` for [`Call::RotateConsensusKey`].
pub fn sign_rotation(
    new_key: &Keypair,
    chain_id: &ChainId,
    validator: &AccountId,
    height: crate::ids::Height,
) -> Signature {
    new_key.sign(
        domain::KEY_ROTATION,
        &rotation_message(chain_id, validator, &new_key.account(), height),
    )
}

/// Signs an activation consent with the device key.
pub fn sign_activation(
    device_key: &Keypair,
    chain_id: &ChainId,
    device: &DeviceId,
    owner: &AccountId,
) -> Signature {
    device_key.sign(
        domain::ACTIVATION,
        &activation_message(chain_id, device, owner),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SignedTransaction {
        let k = Keypair::from_label("alice");
        Transaction {
            chain_id: ChainId::new("test").unwrap(),
            signer: k.account(),
            nonce: 3,
            max_fee: None,
            call: Call::Transfer {
                to: AccountId::new([9; 32]),
                amount: Amount::new(5),
            },
        }
        .sign(&k)
    }

    #[test]
    fn round_trip_and_verify() {
        let tx = sample();
        let bytes = tx.to_bytes();
        let back = SignedTransaction::from_bytes(&bytes).unwrap();
        assert_eq!(back, tx);
        assert_eq!(back.hash(), tx.hash());
        back.verify_signature().unwrap();
    }

    #[test]
    fn any_change_breaks_the_signature() {
        let mut tx = sample();
        tx.tx.nonce += 1;
        assert!(tx.verify_signature().is_err());
        let mut tx = sample();
        tx.tx.chain_id = ChainId::new("other").unwrap();
        assert!(tx.verify_signature().is_err());
    }

    #[test]
    fn oversized_batch_is_rejected_by_the_decoder() {
        let k = Keypair::from_label("m");
        let reg = DeviceRegistration {
            device_id: DeviceId::new([1; 32]),
            public_key: k.account(),
            protocols: vec![],
            metadata: vec![],
        };
        let tx = Transaction {
            chain_id: ChainId::new("test").unwrap(),
            signer: k.account(),
            nonce: 0,
            max_fee: None,
            call: Call::RegisterDevices {
                manufacturer: ManufacturerId::new(1),
                devices: vec![reg; limits::BATCH + 1],
            },
        }
        .sign(&k);
        assert!(SignedTransaction::from_bytes(&tx.to_bytes()).is_err());
    }
}
