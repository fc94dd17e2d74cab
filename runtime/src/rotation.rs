//! Consensus key rotation: a validator's operator replaces its consensus key, with the
//! new key's proof of possession, effective like any validator-set change. The old key
//! becomes a retired validator at the change (`begin_block`), so evidence and bridge
//! checkpoint signatures made with it stay attributable for `RETIRED_SIGNING_WINDOW`.

use crate::ctx::Ctx;
use crate::error::ExecResult;
use crate::state::StateReader;
use atonomi_primitives::crypto::{self, Signature};
use atonomi_primitives::event::Event;
use atonomi_primitives::hash::domain;
use atonomi_primitives::state::{
    PendingValidatorSet, RetiredValidator, StateKey, ValidatorSet, ROTATION_PROOF_WINDOW,
    VALIDATOR_SET_DELAY,
};
use atonomi_primitives::tx::rotation_message;
use atonomi_primitives::{AccountId, CallError, Height};

impl<R: StateReader + ?Sized> Ctx<'_, '_, R> {
    pub(crate) fn rotate_consensus_key(
        &mut self,
        validator: AccountId,
        new_key: AccountId,
        height: Height,
        proof: Signature,
    ) -> ExecResult {
        let current: ValidatorSet = self.o.get(&StateKey::ValidatorSet)?.unwrap_or_default();
        let v = current
            .get(&validator)
            .ok_or(CallError::ValidatorNotFound)?
            .clone();
        self.manufacturer_as_signer(v.operator, true)?;
        // One change of this validator's key at a time: its key must be the same in
        // the set voting now and in the next one.
        let next: ValidatorSet = self
            .o
            .get::<PendingValidatorSet>(&StateKey::PendingValidatorSet)?
            .map_or_else(|| current.clone(), |p| p.set);
        if next.get(&validator).is_none() {
            return Err(CallError::RotationPending.into());
        }
        if height > self.block.height
            || self.block.height.get() - height.get() > ROTATION_PROOF_WINDOW
        {
            return Err(CallError::StaleKeyProof.into());
        }
        // A key in either set, or one a validator used before (still remembered as
        // retired), would make two validators' votes indistinguishable.
        if current.get(&new_key).is_some()
            || next.get(&new_key).is_some()
            || self
                .o
                .get::<RetiredValidator>(&StateKey::RetiredValidator(new_key))?
                .is_some()
            || atonomi_primitives::PublicKey::from_account(&new_key).is_err()
        {
            return Err(CallError::InvalidNewKey.into());
        }
        let msg = rotation_message(&self.block.chain_id, &validator, &new_key, height);
        crypto::verify(&new_key, domain::KEY_ROTATION, &msg, &proof)
            .map_err(|_| CallError::BadKeyProof)?;
        self.change_validators(|set| {
            let entry = set
                .validators
                .iter_mut()
                .find(|x| x.consensus_key == validator)
                .ok_or(CallError::ValidatorNotFound)?;
            entry.consensus_key = new_key;
            Ok(())
        })?;
        self.emit(Event::ConsensusKeyRotated {
            validator,
            new_key,
            effective_height: Height::new(self.block.height.get() + VALIDATOR_SET_DELAY),
        });
        Ok(())
    }
}
