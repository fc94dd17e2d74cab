//! The SDK against the node's own types: every byte the SDK writes must be what the
//! node's `atonomi_primitives` would write, and every proof the node's tree produces
//! must verify here (and tampered ones must not).
extern crate std;

use super::*;
use atonomi_primitives::state::{Attributes, Device, DeviceStatus as NodeStatus, StateKey};
use atonomi_primitives::tx::{self as ntx, Call, SignedTransaction, Transaction};
use atonomi_primitives::{
    AccountId, Amount, ChainId, DeviceId, Hash, Height, Keypair, ManufacturerId, Timestamp,
};
use atonomi_storage::{MemoryStore, StateDb, StateDiff};
use std::vec::Vec;

const CHAIN: &str = "atonomi-dev";
const SEED: [u8; 32] = [42; 32];

fn node_tx(call: Call, nonce: u64) -> Vec<u8> {
    let key = Keypair::from_seed(SEED);
    Transaction {
        chain_id: ChainId::new(CHAIN).unwrap(),
        signer: key.account(),
        nonce,
        max_fee: None,
        call,
    }
    .sign(&key)
    .to_bytes()
}

#[test]
fn public_key_and_activation_signature_match_the_node() {
    let key = DeviceKey::from_seed(&SEED);
    let node_key = Keypair::from_seed(SEED);
    assert_eq!(key.public_key(), *node_key.account().as_bytes());
    let device = [7u8; 32];
    let owner = [9u8; 32];
    let sig = activation_signature(&key, CHAIN, &device, &owner).unwrap();
    let expected = ntx::sign_activation(
        &node_key,
        &ChainId::new(CHAIN).unwrap(),
        &DeviceId::new(device),
        &AccountId::new(owner),
    );
    assert_eq!(sig, expected.0);
    assert_eq!(
        activation_signature(&key, "", &device, &owner),
        Err(Error::InputTooLong)
    );
}

#[test]
fn transactions_are_byte_identical_to_the_nodes_and_verify() {
    let key = DeviceKey::from_seed(&SEED);
    let b = TxBuilder::new(&key, CHAIN).unwrap();
    let mut buf = [0u8; 1024];
    let (a, d) = ([1u8; 32], [2u8; 32]);

    let n = b
        .pay(&mut buf, 5, &a, &d, 123_456_789_000, b"coffee")
        .unwrap();
    let expected = node_tx(
        Call::Pay {
            from_device: DeviceId::new(a),
            to_device: DeviceId::new(d),
            amount: Amount::new(123_456_789_000),
            memo: b"coffee".to_vec(),
        },
        5,
    );
    assert_eq!(&buf[..n], &expected[..]);
    SignedTransaction::from_bytes(&buf[..n])
        .unwrap()
        .verify_signature()
        .unwrap();

    let n = b
        .report_interaction(&mut buf, 6, &a, &d, Outcome::Failure, &[3; 32])
        .unwrap();
    let expected = node_tx(
        Call::ReportInteraction {
            device: DeviceId::new(a),
            peer: DeviceId::new(d),
            outcome: ntx::Outcome::Failure,
            receipt: Hash([3; 32]),
        },
        6,
    );
    assert_eq!(&buf[..n], &expected[..]);

    let n = b
        .anchor_log(&mut buf, 7, &a, &[4; 32], "telemetry", &[d, [5; 32]])
        .unwrap();
    let expected = node_tx(
        Call::AnchorLog {
            device: DeviceId::new(a),
            hash: Hash([4; 32]),
            kind: "telemetry".into(),
            parties: std::vec![DeviceId::new(d), DeviceId::new([5; 32])],
        },
        7,
    );
    assert_eq!(&buf[..n], &expected[..]);
}

#[test]
fn small_buffers_and_oversized_inputs_are_refused() {
    let key = DeviceKey::from_seed(&SEED);
    let b = TxBuilder::new(&key, CHAIN).unwrap();
    let mut small = [0u8; 100];
    assert_eq!(
        b.pay(&mut small, 0, &[1; 32], &[2; 32], 1, b""),
        Err(Error::BufferTooSmall)
    );
    let mut buf = [0u8; 2048];
    assert_eq!(
        b.pay(&mut buf, 0, &[1; 32], &[2; 32], 1, &[0; 257]),
        Err(Error::InputTooLong)
    );
    assert_eq!(
        b.anchor_log(&mut buf, 0, &[1; 32], &[0; 32], "k", &[[0; 32]; 17]),
        Err(Error::InputTooLong)
    );
    assert!(TxBuilder::new(&key, &"x".repeat(33)).is_err());
}

fn device(i: u8, status: NodeStatus, owner: Option<[u8; 32]>) -> Device {
    Device {
        id: DeviceId::new([i; 32]),
        manufacturer: ManufacturerId::new(3),
        public_key: AccountId::new([i.wrapping_add(100); 32]),
        protocols: std::vec!["mqtt".into(), "coap".into()],
        metadata: std::vec![1, 2, 3],
        status,
        owner: owner.map(AccountId::new),
        wallet: None,
        attributes: Attributes::default(),
        registered_at: Height::new(1),
        activated_at: None,
        window_start: Timestamp::new(0),
        window_spent: Amount::ZERO,
    }
}

/// A state of 60 devices (and a few other records), as the node builds it, over three
/// versions so that entries sit in the log at different places.
fn tree() -> (StateDb<MemoryStore>, [u8; 32]) {
    let db = StateDb::open(MemoryStore::new()).unwrap();
    db.commit(&StateDiff::new(), 0).unwrap();
    for version in 1..=3u8 {
        let mut diff = StateDiff::new();
        for i in 0..60u8 {
            if i % 3 != version % 3 && version != 1 {
                continue;
            }
            let d = device(
                i,
                if i % 3 == 0 {
                    NodeStatus::Revoked
                } else {
                    NodeStatus::Active
                },
                (i % 2 == 0).then_some([i; 32]),
            );
            diff.insert(
                StateKey::Device(d.id).to_bytes(),
                Some(borsh::to_vec(&d).unwrap()),
            );
            diff.insert(
                StateKey::Account(AccountId::new([i; 32])).to_bytes(),
                Some(std::vec![i, version, 5]),
            );
        }
        db.commit(&diff, version as u64).unwrap();
    }
    let root = db.root_at(3).unwrap().0;
    (db, root)
}

fn prove(db: &StateDb<MemoryStore>, id: [u8; 32]) -> (Option<Vec<u8>>, Vec<u8>) {
    let (v, p) = db
        .prove(&StateKey::Device(DeviceId::new(id)).to_bytes(), 3)
        .unwrap();
    (v, p.to_bytes())
}

#[test]
fn device_records_prove_and_tampering_is_caught() {
    let (db, root) = tree();
    for i in [0u8, 1, 2, 33, 59] {
        let (v, p) = prove(&db, [i; 32]);
        let v = v.unwrap();
        let view = verify_device(&root, &[i; 32], Some(&v), &p).unwrap();
        assert_eq!(
            view.status,
            Some(if i % 3 == 0 {
                DeviceStatus::Revoked
            } else {
                DeviceStatus::Active
            })
        );
        assert_eq!(view.owner, (i % 2 == 0).then_some([i; 32]));
        assert_eq!(view.manufacturer, 3);
        assert_eq!(view.public_key, [i.wrapping_add(100); 32]);
        // Another record, root, device id or a flipped proof byte: refused.
        let mut other = v.clone();
        other[40] ^= 1;
        assert_eq!(
            verify_device(&root, &[i; 32], Some(&other), &p),
            Err(Error::ProofMismatch)
        );
        let mut bad_root = root;
        bad_root[0] ^= 1;
        assert_eq!(
            verify_device(&bad_root, &[i; 32], Some(&v), &p),
            Err(Error::ProofMismatch)
        );
        assert!(verify_device(&root, &[i ^ 1; 32], Some(&v), &p).is_err());
        assert!(
            verify_device(&root, &[i; 32], None, &p).is_err(),
            "presence proof accepted as absence"
        );
        for pos in 0..p.len() {
            let mut q = p.clone();
            q[pos] ^= 0x10;
            assert!(
                verify_device(&root, &[i; 32], Some(&v), &q).is_err(),
                "flipped proof byte {pos} accepted"
            );
        }
    }
}

#[test]
fn absent_devices_prove_absent() {
    let (db, root) = tree();
    for i in [200u8, 201, 250] {
        let (v, p) = prove(&db, [i; 32]);
        assert!(v.is_none());
        assert_eq!(
            verify_device(&root, &[i; 32], None, &p).unwrap().status,
            None
        );
        assert!(verify_device(&root, &[i; 32], Some(b"forged"), &p).is_err());
        // The absence proof of one id does not prove a registered device absent.
        assert!(verify_device(&root, &[1; 32], None, &p).is_err());
    }
}

#[test]
fn header_hash_and_state_root() {
    let header = atonomi_primitives::block::BlockHeader {
        chain_id: ChainId::new(CHAIN).unwrap(),
        height: Height::new(9),
        parent_hash: Hash([1; 32]),
        timestamp: Timestamp::new(5),
        proposer: AccountId::new([2; 32]),
        tx_root: Hash([3; 32]),
        state_root: Hash([4; 32]),
        receipts_root: Hash([5; 32]),
        validator_set_hash: Hash([6; 32]),
        next_validator_set_hash: Hash([7; 32]),
    };
    let bytes = borsh::to_vec(&header).unwrap();
    assert_eq!(header_state_root(&bytes, &header.hash().0), Ok([4; 32]));
    assert_eq!(
        header_state_root(&bytes, &[0; 32]),
        Err(Error::HeaderMismatch)
    );
    assert!(header_state_root(
        &bytes[..20],
        &crate::domain_hash(domain::BLOCK_HASH, &[&bytes[..20]])
    )
    .is_err());
}
