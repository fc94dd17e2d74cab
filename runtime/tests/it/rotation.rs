//! Consensus key rotation: who may rotate, the proof of possession, one rotation at a
//! time, the change taking effect like any set change, and the old key retired.

use crate::fixture::*;
use atonomi_genesis::dev;
use atonomi_primitives::event::Event;
use atonomi_primitives::state::{
    PendingValidatorSet, RetiredValidator, StateKey, ValidatorSet, ROTATION_PROOF_WINDOW,
};
use atonomi_primitives::tx::{sign_rotation, Call};
use atonomi_primitives::{CallError as E, Height, Keypair};

fn rotate(c: &Chain, old: &Keypair, new: &Keypair, height: u64) -> Call {
    Call::RotateConsensusKey {
        validator: old.account(),
        new_key: new.account(),
        height: Height::new(height),
        proof: sign_rotation(new, &c.chain_id, &old.account(), Height::new(height)),
    }
}

fn set(c: &Chain) -> ValidatorSet {
    c.get(StateKey::ValidatorSet).unwrap()
}

#[test]
fn the_operator_rotates_a_key_with_its_proof_and_the_old_key_retires() {
    let mut c = Chain::dev();
    let (old, new) = (
        dev::key("validator"),
        Keypair::from_label("new consensus key"),
    );
    let operator = dev::key("manufacturer");
    let h = c.height;
    // Not the operator; a proof by another key; a proof of another height; a proof
    // from the future or too old; the key of a validator in the set.
    c.fails(
        &dev::key("alice"),
        rotate(&c, &old, &new, h),
        E::NotManufacturerKey,
    );
    let mut forged = rotate(&c, &old, &new, h);
    if let Call::RotateConsensusKey { proof, .. } = &mut forged {
        *proof = sign_rotation(
            &Keypair::from_label("other"),
            &c.chain_id,
            &old.account(),
            Height::new(h),
        );
    }
    c.fails(&operator, forged, E::BadKeyProof);
    let mut moved = rotate(&c, &old, &new, h);
    if let Call::RotateConsensusKey { height, .. } = &mut moved {
        *height = Height::new(h + 1);
    }
    c.fails(&operator, moved, E::BadKeyProof);
    c.fails(
        &operator,
        rotate(&c, &old, &new, c.height + 5),
        E::StaleKeyProof,
    );
    c.fails(
        &operator,
        rotate(&c, &old, &old, c.height),
        E::InvalidNewKey,
    );
    c.fails(
        &operator,
        rotate(&c, &Keypair::from_label("nobody"), &new, c.height),
        E::ValidatorNotFound,
    );

    let r = c.ok(&operator, rotate(&c, &old, &new, c.height));
    let effective = match r.events.as_slice() {
        [.., Event::ConsensusKeyRotated {
            validator,
            new_key,
            effective_height,
        }] => {
            assert_eq!((*validator, *new_key), (old.account(), new.account()));
            *effective_height
        }
        other => panic!("{other:?}"),
    };
    let pending: PendingValidatorSet = c.get(StateKey::PendingValidatorSet).unwrap();
    assert_eq!(pending.effective_height, effective);
    // One at a time: not the old key again while the change is pending (the next
    // block; the one after promotes the new set).
    let third = Keypair::from_label("third");
    c.fails(
        &operator,
        rotate(&c, &old, &third, c.height),
        E::RotationPending,
    );
    while c.height < effective.get() {
        assert!(set(&c).get(&old.account()).is_some(), "changed early");
        c.block(vec![]);
    }
    let now = set(&c);
    let v = now.get(&new.account()).expect("the new key votes");
    assert!(now.get(&old.account()).is_none());
    let before = dev::genesis().state().validators;
    let was = before.get(&old.account()).unwrap();
    assert_eq!(
        (v.power, v.operator, &v.peer_id, v.bridge_address),
        (was.power, was.operator, &was.peer_id, was.bridge_address)
    );
    // The old key stays attributable to the validator, and cannot come back.
    let retired: RetiredValidator = c.get(StateKey::RetiredValidator(old.account())).unwrap();
    assert_eq!(retired.last_height, effective);
    c.fails(
        &operator,
        rotate(&c, &new, &old, c.height),
        E::InvalidNewKey,
    );
    // The next rotation, from the new key, is allowed; a proof older than the window is not.
    let stale = c.height;
    while c.height <= stale + ROTATION_PROOF_WINDOW {
        c.block(vec![]);
    }
    c.fails(&operator, rotate(&c, &new, &third, stale), E::StaleKeyProof);
    c.ok(&operator, rotate(&c, &new, &third, c.height));
}
