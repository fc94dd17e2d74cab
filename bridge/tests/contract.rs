//! The checkpoint contract on a real anvil: acceptance, every rejection with its custom
//! error, and validator-set rotation.

mod common;

use alloy::primitives::{Bytes, U256};
use common::*;

#[tokio::test]
async fn a_quorum_checkpoint_is_accepted_once() {
    let env = setup(4).await;
    let c = checkpoint(1, &env.set);
    let receipt = env
        .submit(&env.set, &c, env.sign(&env.keys, &c, &[0, 1, 2]))
        .await
        .unwrap();
    assert!(receipt.status());
    let i = env.instance();
    assert_eq!(i.latestEpoch().call().await.unwrap(), 1);
    let stored = i.latestCheckpoint().call().await.unwrap();
    assert_eq!(atonomi_bridge::Checkpoint::from(&stored), c);
    assert_eq!(
        atonomi_bridge::Checkpoint::from(&i.checkpointAt(1).call().await.unwrap()),
        c
    );
    // The same checkpoint again (a second relayer): refused, nothing changes.
    let e = env
        .submit(&env.set, &c, env.sign(&env.keys, &c, &[0, 1, 2, 3]))
        .await
        .unwrap_err();
    assert!(
        revert_name(&e).contains("EpochNotNext"),
        "{}",
        revert_name(&e)
    );
    // Epochs are strictly sequential: 3 before 2 is refused.
    let e = env
        .submit(
            &env.set,
            &checkpoint(3, &env.set),
            env.sign(&env.keys, &checkpoint(3, &env.set), &[0, 1, 2, 3]),
        )
        .await
        .unwrap_err();
    assert!(
        revert_name(&e).contains("EpochNotNext"),
        "{}",
        revert_name(&e)
    );
    let e = i.checkpointAt(2).call().await.unwrap_err();
    assert!(
        revert_name(&e).contains("UnknownEpoch"),
        "{}",
        revert_name(&e)
    );
}

#[tokio::test]
async fn below_quorum_forged_swapped_and_malleable_signatures_are_refused() {
    let env = setup(4).await;
    let c = checkpoint(1, &env.set);
    // 2 of 4 equal powers: 20 of 40 is not more than 2/3.
    let e = env
        .submit(&env.set, &c, env.sign(&env.keys, &c, &[0, 1]))
        .await
        .unwrap_err();
    assert!(
        revert_name(&e).contains("InsufficientPower"),
        "{}",
        revert_name(&e)
    );
    // A stranger's signature in a validator's slot.
    let mut sigs = env.sign(&env.keys, &c, &[0, 1, 2]);
    let (stranger, _) = new_set(1);
    sigs[0] = env.sign(&stranger, &c, &[0]).remove(0);
    let e = env.submit(&env.set, &c, sigs).await.unwrap_err();
    assert!(
        revert_name(&e).contains("InvalidSignature"),
        "{}",
        revert_name(&e)
    );
    // Two validators' signatures swapped.
    let mut sigs = env.sign(&env.keys, &c, &[0, 1, 2]);
    sigs.swap(0, 1);
    let e = env.submit(&env.set, &c, sigs).await.unwrap_err();
    assert!(
        revert_name(&e).contains("InvalidSignature"),
        "{}",
        revert_name(&e)
    );
    // A signature over another checkpoint (here: another state root).
    let other = atonomi_bridge::Checkpoint {
        state_root: alloy::primitives::B256::ZERO,
        ..c
    };
    let mut sigs = env.sign(&env.keys, &c, &[0, 1, 2]);
    sigs[2] = env.sign(&env.keys, &other, &[2]).remove(2);
    let e = env.submit(&env.set, &c, sigs).await.unwrap_err();
    assert!(
        revert_name(&e).contains("InvalidSignature"),
        "{}",
        revert_name(&e)
    );
    // The high-s twin of a valid signature (s' = n - s, v flipped).
    let mut sigs = env.sign(&env.keys, &c, &[0, 1, 2]);
    let mut raw = sigs[0].to_vec();
    let n = U256::from_str_radix(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141",
        16,
    )
    .unwrap();
    let s = U256::from_be_slice(&raw[32..64]);
    raw[32..64].copy_from_slice(&(n - s).to_be_bytes::<32>());
    raw[64] = if raw[64] == 27 { 28 } else { 27 };
    sigs[0] = Bytes::from(raw);
    let e = env.submit(&env.set, &c, sigs).await.unwrap_err();
    assert!(revert_name(&e).contains("HighS"), "{}", revert_name(&e));
    // A truncated signature.
    let mut sigs = env.sign(&env.keys, &c, &[0, 1, 2]);
    sigs[1] = Bytes::from(vec![1u8; 64]);
    let e = env.submit(&env.set, &c, sigs).await.unwrap_err();
    assert!(
        revert_name(&e).contains("BadSignatureLength"),
        "{}",
        revert_name(&e)
    );
    assert_eq!(
        env.instance().latestEpoch().call().await.unwrap(),
        0,
        "nothing was accepted"
    );
}

#[tokio::test]
async fn a_wrong_validator_set_is_refused() {
    let env = setup(4).await;
    let (keys, set) = new_set(4);
    let c = checkpoint(1, &set);
    // Signed by a full quorum — of a set the contract does not trust.
    let e = env
        .submit(&set, &c, env.sign(&keys, &c, &[0, 1, 2, 3]))
        .await
        .unwrap_err();
    assert!(
        revert_name(&e).contains("ValidatorSetMismatch"),
        "{}",
        revert_name(&e)
    );
    // The trusted members with inflated powers: a different set hash.
    let mut inflated = env.set.clone();
    inflated.powers[0] = U256::from(1000u64);
    let e = env
        .submit(&inflated, &c, env.sign(&env.keys, &c, &[0]))
        .await
        .unwrap_err();
    assert!(
        revert_name(&e).contains("ValidatorSetMismatch"),
        "{}",
        revert_name(&e)
    );
}

#[tokio::test]
async fn a_validator_set_change_rotates_the_trusted_set() {
    let env = setup(4).await;
    let (new_keys, new_set) = new_set(5);
    let c1 = checkpoint(1, &new_set);
    let r = env
        .submit(&env.set, &c1, env.sign(&env.keys, &c1, &[0, 1, 2]))
        .await
        .unwrap();
    assert!(r.status());
    let rotated = r.inner.logs().iter().any(|l| l.topic0() == Some(&<atonomi_bridge::contract::IAtonomiCheckpoints::ValidatorSetRotated as alloy::sol_types::SolEvent>::SIGNATURE_HASH));
    assert!(rotated, "no ValidatorSetRotated event");
    assert_eq!(
        env.instance().validatorSetHash().call().await.unwrap(),
        new_set.hash()
    );
    // The old set no longer counts, the new one does.
    let c2 = checkpoint(2, &new_set);
    let e = env
        .submit(&env.set, &c2, env.sign(&env.keys, &c2, &[0, 1, 2, 3]))
        .await
        .unwrap_err();
    assert!(
        revert_name(&e).contains("ValidatorSetMismatch"),
        "{}",
        revert_name(&e)
    );
    let r = env
        .submit(&new_set, &c2, env.sign(&new_keys, &c2, &[0, 1, 3, 4]))
        .await
        .unwrap();
    assert!(r.status());
    assert_eq!(env.instance().latestEpoch().call().await.unwrap(), 2);
}
