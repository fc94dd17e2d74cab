//! The bridge's on-chain part: validators record their checkpoint signatures.

use crate::ctx::Ctx;
use crate::error::ExecResult;
use crate::overlay::Overlay;
use crate::state::StateReader;
use atonomi_primitives::event::Event;
use atonomi_primitives::state::{
    CheckpointSignature, RetiredValidator, StateKey, ValidatorSet, RETIRED_SIGNING_WINDOW,
};
use atonomi_primitives::{AccountId, CallError, Height};

/// Whether `signer` may record its signature of the checkpoint at `height`: a member
/// of the current validator set with a bridge address, or a validator retired since
/// whose set voted on `height`, within [`RETIRED_SIGNING_WINDOW`] heights of leaving
/// (`now`, the executing block's height; `None` in the mempool's precheck). Such a
/// transaction pays no fee (checkpoints are a duty).
pub(crate) fn may_sign_checkpoint<R: StateReader + ?Sized>(
    o: &Overlay<R>,
    signer: &AccountId,
    height: Height,
    now: Option<Height>,
) -> bool {
    let set: ValidatorSet = o
        .get(&StateKey::ValidatorSet)
        .ok()
        .flatten()
        .unwrap_or_default();
    if set
        .get(signer)
        .is_some_and(|v| v.bridge_address != [0u8; 20])
    {
        return true;
    }
    let retired: Option<RetiredValidator> =
        o.get(&StateKey::RetiredValidator(*signer)).ok().flatten();
    retired.is_some_and(|r| {
        r.validator.bridge_address != [0u8; 20]
            && height <= r.last_height
            && now.is_none_or(|n| {
                n.get() <= r.last_height.get().saturating_add(RETIRED_SIGNING_WINDOW)
            })
    })
}

impl<R: StateReader + ?Sized> Ctx<'_, '_, R> {
    pub fn sign_checkpoint(&mut self, epoch: u64, record: CheckpointSignature) -> ExecResult {
        if !may_sign_checkpoint(self.o, &self.signer, record.height, Some(self.block.height)) {
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
