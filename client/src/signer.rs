//! Who signs a transaction. Every writer signs through [`Signer`], so a remote signer
//! or a hardware module can take the key file's place without touching its callers;
//! [`KeyFileSigner`] is the first implementation.

use atonomi_api::keyfile::{self, KeyFileError};
use atonomi_primitives::{AccountId, Keypair, SignedTransaction, Transaction};
use std::path::Path;

/// Why a signer could not sign.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    #[error("the transaction names signer {named}, but this key is account {key}")]
    OtherSigner { named: AccountId, key: AccountId },
}

/// Signs transactions for one account.
pub trait Signer {
    /// The account whose key signs (the transaction's `signer`).
    fn account(&self) -> AccountId;

    /// Signs `tx`, whose `signer` must be [`Signer::account`].
    fn sign(&self, tx: Transaction) -> Result<SignedTransaction, SignError>;
}

/// A signer whose key is in a key file (`atonomi keys new`).
pub struct KeyFileSigner {
    key: Keypair,
}

impl std::fmt::Debug for KeyFileSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFileSigner")
            .field("account", &self.key.account())
            .finish_non_exhaustive()
    }
}

impl KeyFileSigner {
    /// Reads the key file at `path`.
    pub fn open(path: &Path) -> Result<KeyFileSigner, SignError> {
        Ok(KeyFileSigner {
            key: keyfile::read(path)?,
        })
    }
}

impl Signer for KeyFileSigner {
    fn account(&self) -> AccountId {
        self.key.account()
    }

    fn sign(&self, tx: Transaction) -> Result<SignedTransaction, SignError> {
        if tx.signer != self.key.account() {
            return Err(SignError::OtherSigner {
                named: tx.signer,
                key: self.key.account(),
            });
        }
        Ok(tx.sign(&self.key))
    }
}
