//! Inclusion and non-inclusion proofs of device records and reputation, verified the
//! way a light client does: with the root alone, no database.

use crate::fixture::*;
use atonomi_genesis::dev;
use atonomi_primitives::proof::{self, StateProof};
use atonomi_primitives::state::{
    Device, DeviceStatus, Direction, ReputationAggregate, StateKey, Subject,
};
use atonomi_primitives::tx::{Call, ReputationWrite};
use atonomi_primitives::{DeviceId, Height, Timestamp};
use atonomi_runtime::{execute_block, genesis_diff, BlockContext, SigCheck};
use atonomi_storage::{RocksConfig, RocksStore, StateDb};

#[test]
fn device_and_reputation_proofs_on_rocksdb() {
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(RocksStore::open(dir.path(), &RocksConfig::default()).unwrap()).unwrap();
    let g = dev::genesis();
    db.commit(&genesis_diff(&g.state()).unwrap(), 0).unwrap();

    // Drive the same transactions through an in-memory chain to sign them.
    let mut chain = Chain::dev();
    let a = Actors::new();
    let d = TestDevice::new("proof");
    let mut blocks = Vec::new();
    let reg = chain.tx(
        &a.maker,
        Call::RegisterDevices {
            manufacturer: M,
            devices: vec![d.registration()],
        },
    );
    chain.block(vec![reg.clone()]);
    blocks.push(reg);
    let act = chain.tx(
        &a.alice,
        Call::ActivateDevice {
            device: d.id,
            device_signature: d.consent(&chain, a.alice.account()),
        },
    );
    chain.block(vec![act.clone()]);
    blocks.push(act);
    let w = ReputationWrite {
        subject: Subject::Device(d.id),
        rep_type: "trust".into(),
        score: score(7_777),
        direction: Direction::Up,
    };
    let rep = chain.tx(
        &a.auditor,
        Call::WriteReputation {
            auditor: A,
            entries: vec![w],
        },
    );
    chain.block(vec![rep.clone()]);
    blocks.push(rep);
    for (i, tx) in blocks.iter().enumerate() {
        let h = i as u64 + 1;
        let ctx = BlockContext {
            chain_id: g.chain_id.clone(),
            height: Height::new(h),
            timestamp: Timestamp::new(g.genesis_time_ms + h * 1_000),
            upgrades: Default::default(),
        };
        let reader = |k: &[u8]| db.get(k);
        let out = execute_block(&reader, &ctx, &[tx.to_bytes()], SigCheck::Verify).unwrap();
        db.commit(&out.diff, h).unwrap();
    }

    let key = StateKey::Device(d.id);
    let root3 = db.root_at(3).unwrap();
    let (value, p) = db.prove(&key.to_bytes(), 3).unwrap();
    // The proof travels as bytes.
    let p = StateProof::from_bytes(&p.to_bytes()).unwrap();
    let dev: Device = proof::verify(root3, &key, value.as_deref(), &p)
        .unwrap()
        .unwrap();
    assert_eq!(
        (dev.status, dev.owner),
        (DeviceStatus::Active, Some(a.alice.account()))
    );

    // Tampering with the value, the root or the key fails.
    let mut forged = value.clone().unwrap();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert!(proof::verify::<Device>(root3, &key, Some(&forged), &p).is_err());
    assert!(proof::verify::<Device>(db.root_at(2).unwrap(), &key, value.as_deref(), &p).is_err());
    let other = StateKey::Device(DeviceId::new([1; 32]));
    assert!(proof::verify::<Device>(root3, &other, value.as_deref(), &p).is_err());
    // Claiming absence with an inclusion proof fails.
    assert!(proof::verify::<Device>(root3, &key, None, &p).is_err());

    // Non-inclusion: an id never registered, and this device before its registration.
    let ghost = StateKey::Device(DeviceId::new([0xab; 32]));
    let (v, p) = db.prove(&ghost.to_bytes(), 3).unwrap();
    assert!(v.is_none());
    assert!(proof::verify::<Device>(root3, &ghost, None, &p)
        .unwrap()
        .is_none());
    let (v, p) = db.prove(&key.to_bytes(), 0).unwrap();
    assert!(v.is_none());
    proof::verify::<Device>(db.root_at(0).unwrap(), &key, None, &p).unwrap();
    // At height 1 the device was registered but not yet active.
    let (v, p) = db.prove(&key.to_bytes(), 1).unwrap();
    let at1: Device = proof::verify(db.root_at(1).unwrap(), &key, v.as_deref(), &p)
        .unwrap()
        .unwrap();
    assert_eq!(at1.status, DeviceStatus::Registered);

    // The reputation aggregate is provable too.
    let agg_key = StateKey::ReputationAggregate {
        subject: Subject::Device(d.id),
        rep_type: "trust".into(),
    };
    let (v, p) = db.prove(&agg_key.to_bytes(), 3).unwrap();
    let agg: ReputationAggregate = proof::verify(root3, &agg_key, v.as_deref(), &p)
        .unwrap()
        .unwrap();
    assert_eq!(agg.median, score(7_777));

    // Garbage proof bytes are an error, not a panic.
    assert!(StateProof::from_bytes(&[0xff; 40]).is_err());
    assert!(StateProof::from_bytes(&vec![0u8; proof::MAX_PROOF_BYTES + 1]).is_err());
}
