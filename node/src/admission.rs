//! The mempool's admission policy: who may put a transaction into this node's pool.
//!
//! With the default zero transaction fee, anybody can make a key and sign transactions
//! that execute for free; on a permissioned ledger that would let a flood from fresh
//! keys crowd out honest users. The policy is node-local, not a consensus rule (a block
//! proposed by another validator is judged by the chain's rules alone), and it is
//! checked before the signature is verified, so a refused flood costs a decode and a
//! few point reads per transaction, not an ed25519 verification.
//!
//! A sender is admitted when it holds at least `min_balance`, or when it holds a role
//! the call needs: a governance admin proposing or approving, a key of the manufacturer
//! or auditor the call names, the owner of the device it names, or the device's own key
//! for the calls a device signs (a device wallet may be its owner's account, so the
//! device key itself often holds nothing), or a key of the manufacturer operating the
//! validator whose consensus key it rotates. Validators' checkpoint signatures are
//! checked by `runtime::precheck` already.

use atonomi_primitives::gov::Governance;
use atonomi_primitives::state::{Account, Auditor, Device, Manufacturer, StateKey, ValidatorSet};
use atonomi_primitives::{codec, AccountId, Call, DeviceId, SignedTransaction};

/// A state read: the committed value of a key, if any.
pub type Read<'a> = dyn Fn(&StateKey) -> Option<Vec<u8>> + 'a;

#[derive(Debug, Clone)]
pub struct Policy {
    pub min_balance: u128,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { min_balance: 1 }
    }
}

fn get<T: borsh::BorshDeserialize>(read: &Read<'_>, key: &StateKey) -> Option<T> {
    read(key).and_then(|b| codec::decode(&b, 16 << 20).ok())
}

fn device(read: &Read<'_>, id: &DeviceId) -> Option<Device> {
    get(read, &StateKey::Device(*id))
}

fn is_manufacturer_key(
    read: &Read<'_>,
    m: atonomi_primitives::ManufacturerId,
    who: &AccountId,
) -> bool {
    get::<Manufacturer>(read, &StateKey::Manufacturer(m)).is_some_and(|m| m.keys.contains(who))
}

impl Policy {
    /// Whether the signer holds a role this call needs (see the module docs).
    fn has_role(read: &Read<'_>, stx: &SignedTransaction) -> bool {
        let who = &stx.tx.signer;
        let device_key = |d: &DeviceId| device(read, d).is_some_and(|d| d.public_key == *who);
        let device_owner = |d: &DeviceId| device(read, d).is_some_and(|d| d.owner == Some(*who));
        match &stx.tx.call {
            Call::Propose { .. } | Call::ApproveProposal { .. } => {
                get::<Governance>(read, &StateKey::Governance)
                    .is_some_and(|g| g.admins.contains(who))
            }
            Call::RegisterDevices { manufacturer, .. }
            | Call::RegisterAndActivate { manufacturer, .. } => {
                is_manufacturer_key(read, *manufacturer, who)
            }
            Call::SuspendDevice { device: d }
            | Call::ResumeDevice { device: d }
            | Call::RevokeDevice { device: d } => {
                device(read, d).is_some_and(|d| is_manufacturer_key(read, d.manufacturer, who))
            }
            Call::WriteReputation { auditor, .. } => {
                get::<Auditor>(read, &StateKey::Auditor(*auditor))
                    .is_some_and(|a| a.keys.contains(who))
            }
            Call::Pay { from_device: d, .. }
            | Call::AnchorLog { device: d, .. }
            | Call::ReportInteraction { device: d, .. } => device_key(d),
            Call::TransferDevice { device: d, .. }
            | Call::SetAttributes { device: d, .. }
            | Call::SetWallet { device: d, .. }
            | Call::RegisterService { device: d, .. }
            | Call::WithdrawService { device: d, .. } => device_owner(d),
            Call::SignCheckpoint { .. } => true,
            Call::RotateConsensusKey { validator, .. } => {
                get::<ValidatorSet>(read, &StateKey::ValidatorSet)
                    .and_then(|set| set.get(validator).map(|v| v.operator))
                    .is_some_and(|m| is_manufacturer_key(read, m, who))
            }
            _ => false,
        }
    }

    /// `Err` says why the sender is not admitted.
    pub fn check(&self, read: &Read<'_>, stx: &SignedTransaction) -> Result<(), Refused> {
        if self.min_balance == 0 {
            return Ok(());
        }
        let balance =
            get::<Account>(read, &StateKey::Account(stx.tx.signer)).map_or(0, |a| a.balance.get());
        if balance >= self.min_balance || Self::has_role(read, stx) {
            return Ok(());
        }
        Err(Refused {
            balance,
            min_balance: self.min_balance,
        })
    }
}

/// Why this node's policy does not admit a sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the sender holds {balance} base units, under this node's admission minimum of {min_balance}, and no role this call needs")]
pub struct Refused {
    pub balance: u128,
    pub min_balance: u128,
}

#[cfg(test)]
mod tests {
    use super::*;
    use atonomi_primitives::{Amount, ChainId, Keypair, Transaction};
    use std::collections::BTreeMap;

    fn transfer(key: &Keypair) -> SignedTransaction {
        Transaction {
            chain_id: ChainId::new("t").unwrap(),
            signer: key.account(),
            nonce: 0,
            max_fee: None,
            call: Call::Transfer {
                to: Keypair::from_label("to").account(),
                amount: Amount::new(0),
            },
        }
        .sign(key)
    }

    #[test]
    fn fresh_keys_are_refused_funded_ones_admitted_and_zero_admits_all() {
        let rich = Keypair::from_label("rich");
        let fresh = Keypair::from_label("fresh");
        let mut state = BTreeMap::new();
        state.insert(
            StateKey::Account(rich.account()).to_bytes(),
            codec::encode(&Account {
                nonce: 0,
                balance: Amount::new(5),
            }),
        );
        let read = |k: &StateKey| state.get(&k.to_bytes()).cloned();
        let policy = Policy { min_balance: 5 };
        assert!(policy.check(&read, &transfer(&rich)).is_ok());
        assert!(policy.check(&read, &transfer(&fresh)).is_err());
        assert!(Policy { min_balance: 6 }
            .check(&read, &transfer(&rich))
            .is_err());
        assert!(Policy { min_balance: 0 }
            .check(&read, &transfer(&fresh))
            .is_ok());
    }
}
