//! Types shared by every Atonomi crate: typed ids and quantities, the transaction
//! envelope and its calls, state records and keys, blocks, receipts and events, the
//! borsh codec with size bounds, blake3 hashing with domain separation, ed25519
//! signing with strict verification, and the light-client proof verifier.
//!
//! Nothing here touches a disk, a socket or a clock: the crate is safe to fuzz and to
//! embed in light clients.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod block;
pub mod codec;
pub mod crypto;
pub mod error;
pub mod event;
pub mod genesis;
pub mod gov;
pub mod hash;
pub mod ids;
pub mod params;
pub mod proof;
pub mod query;
pub mod state;
pub mod statelog;
pub mod tx;

pub use block::{Block, BlockHeader};
pub use codec::{decode, encode, CodecError};
pub use crypto::{Keypair, PublicKey, Signature};
pub use error::{CallError, InvalidTx};
pub use event::{Event, Receipt, TxStatus};
pub use hash::Hash;
pub use ids::{
    AccountId, Amount, AuditorId, ChainId, DeviceId, Height, ManufacturerId, ProposalId, Score,
    Timestamp,
};
pub use params::{ParamChange, Params};
pub use tx::{Call, SignedTransaction, Transaction};
