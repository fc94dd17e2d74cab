//! The bridge's on-chain part: validators record their checkpoint signatures.

use crate::ctx::Ctx;
use crate::error::ExecResult;
use crate::overlay::Overlay;
use crate::StateReader;
use atonomi_primitives::event::Event;
use atonomi_primitives::state::{CheckpointSignature, StateKey, ValidatorSet};
use atonomi_primitives::{AccountId, CallError};

/// Whether `signer` may sign checkpoints now: a member of the current validator set
/// with a bridge address. Such a transaction pays no fee (checkpoints are a duty).
pub(crate) fn is_bridge_validator<R: StateReader + ?Sized>(
    o: &Overlay<R>,
    signer: &AccountId,
) -> bool {
    let set: ValidatorSet = o
        .get(&StateKey::ValidatorSet)
        .ok()
        .flatten()
        .unwrap_or_default();
    set.get(signer)
        .is_some_and(|v| v.bridge_address != [0u8; 20])
}

impl<R: StateReader + ?Sized> Ctx<'_, '_, R> {
    pub fn sign_checkpoint(&mut self, epoch: u64, record: CheckpointSignature) -> ExecResult {
        if !is_bridge_validator(self.o, &self.signer) {
            return Err(CallError::NotValidator.into());
        }
        if epoch == 0 || record.height.get() == 0 {
            return Err(CallError::InvalidCheckpoint.into());
        }
        let key = StateKey::CheckpointSignature {
            epoch,
            validator: self.signer,
        };
        if self.o.get::<CheckpointSignature>(&key)?.is_some() {
            return Err(CallError::CheckpointAlreadySigned.into());
        }
        self.o.put(&key, &record);
        self.emit(Event::CheckpointSigned {
            epoch,
            validator: self.signer,
            height: record.height,
        });
        Ok(())
    }
}
