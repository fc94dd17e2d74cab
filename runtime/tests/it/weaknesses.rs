//! One test per weakness of the original Atonomi Ethereum contracts (SPEC section 11),
//! showing this runtime does not repeat it.

use crate::fixture::*;
use atonomi_primitives::event::Event;
use atonomi_primitives::gov::*;
use atonomi_primitives::state::*;
use atonomi_primitives::tx::*;
use atonomi_primitives::{codec, Amount, CallError as E, Keypair, Params, ProposalId};

/// Weakness 1: Activation took the raw device id, so anyone who learned it could front-run the
/// owner. Here the device must sign for the specific owner, and only the salted hash is
/// on chain.
#[test]
fn w1_activation_cannot_be_front_run_and_hardware_id_stays_off_chain() {
    let mut c = Chain::dev();
    let a = Actors::new();
    let hardware_id = b"SERIAL-0042-SECRET";
    let d = TestDevice {
        key: Keypair::from_label("w1 device"),
        id: atonomi_primitives::DeviceId::derive(b"maker salt", hardware_id),
    };
    c.ok(
        &a.maker,
        Call::RegisterDevices {
            manufacturer: M,
            devices: vec![d.registration()],
        },
    );
    // The attacker knows the device id (it is public) and even sees alice's pending
    // activation signature in the mempool: neither lets it take the device.
    let alices_sig = d.consent(&c, a.alice.account());
    c.fails(
        &a.stranger,
        Call::ActivateDevice {
            device: d.id,
            device_signature: alices_sig,
        },
        E::BadDeviceSignature,
    );
    c.ok(
        &a.alice,
        Call::ActivateDevice {
            device: d.id,
            device_signature: alices_sig,
        },
    );
    // No state value contains the hardware id.
    for v in c.state.0.values() {
        assert!(!v.windows(hardware_id.len()).any(|w| w == hardware_id));
    }
}

/// Weakness 2: The device public key was stored but never checked. Here a signature from any
/// other key is rejected.
#[test]
fn w2_device_key_is_checked() {
    let mut c = Chain::dev();
    let a = Actors::new();
    let d = TestDevice::new("w2");
    c.ok(
        &a.maker,
        Call::RegisterDevices {
            manufacturer: M,
            devices: vec![d.registration()],
        },
    );
    let impostor = Keypair::from_label("impostor");
    let forged = sign_activation(&impostor, &c.chain_id, &d.id, &a.alice.account());
    c.fails(
        &a.alice,
        Call::ActivateDevice {
            device: d.id,
            device_signature: forged,
        },
        E::BadDeviceSignature,
    );
    // And device-signed calls need the registered key too.
    c.ok(
        &a.alice,
        Call::ActivateDevice {
            device: d.id,
            device_signature: d.consent(&c, a.alice.account()),
        },
    );
    c.ok(
        &a.admin,
        Call::Transfer {
            to: impostor.account(),
            amount: atmi(5),
        },
    );
    c.fails(
        &impostor,
        Call::AnchorLog {
            device: d.id,
            hash: atonomi_primitives::Hash::ZERO,
            kind: "k".into(),
            parties: vec![],
        },
        E::NotDeviceKey,
    );
}

/// Weakness 3: No owner was recorded, so ownership could not be transferred. Here it is.
#[test]
fn w3_owner_recorded_and_transferable() {
    let mut c = Chain::dev();
    let a = Actors::new();
    let d = TestDevice::new("w3");
    registered_active(&mut c, &a, &d, &a.alice);
    assert_eq!(c.device(d.id).owner, Some(a.alice.account()));
    c.ok(
        &a.alice,
        Call::TransferDevice {
            device: d.id,
            to: a.bob.account(),
            with_wallet: false,
        },
    );
    assert_eq!(c.device(d.id).owner, Some(a.bob.account()));
    c.fails(
        &a.alice,
        Call::SetAttributes {
            device: d.id,
            attributes: Attributes::default(),
        },
        E::NotOwner,
    );
    c.ok(
        &a.bob,
        Call::SetAttributes {
            device: d.id,
            attributes: Attributes::default(),
        },
    );
}

/// Weakness 4: An empty manufacturer pool made reputation writes revert, and tiny rewards
/// rounded a share to zero and blocked writes. Here the score is always stored and the
/// reward paid as far as the pool allows.
#[test]
fn w4_writes_never_fail_for_lack_of_reward() {
    let mut c = Chain::dev();
    let a = Actors::new();
    let d = TestDevice::new("w4");
    registered_active(&mut c, &a, &d, &a.alice); // pool: 2 ATMI
                                                 // A reward larger than the pool, then a tiny one.
    let mut p = Params {
        reputation_reward: atmi(5),
        ..Params::default()
    };
    c.govern(GovAction::SetParams(p.clone()));
    let w = |s| ReputationWrite {
        subject: Subject::Device(d.id),
        rep_type: "trust".into(),
        score: score(s),
        direction: Direction::Steady,
    };
    let r = c.ok(
        &a.auditor,
        Call::WriteReputation {
            auditor: A,
            entries: vec![w(4_000)],
        },
    );
    assert!(
        r.events
            .iter()
            .any(|e| matches!(e, Event::ReputationWritten { reward, .. } if *reward == atmi(2))),
        "paid what the pool had"
    );
    assert_eq!(c.manufacturer(M).pool, Amount::ZERO);
    c.advance_ms(86_400_000);
    let r = c.ok(
        &a.auditor,
        Call::WriteReputation {
            auditor: A,
            entries: vec![w(4_100)],
        },
    );
    assert!(r.events.iter().any(|e| matches!(e, Event::ReputationWritten { reward, score: s, .. } if reward.is_zero() && *s == score(4_100))));
    // A reward of 1 base unit: the auditor's 80% rounds to zero, the write still lands.
    p.reputation_reward = Amount::new(1);
    c.govern(GovAction::SetParams(p));
    c.ok(
        &a.alice,
        Call::DepositToPool {
            manufacturer: M,
            amount: atmi(1),
        },
    );
    c.advance_ms(86_400_000);
    c.ok(
        &a.auditor,
        Call::WriteReputation {
            auditor: A,
            entries: vec![w(4_200)],
        },
    );
    let e: ReputationEntry = c
        .get(StateKey::Reputation {
            subject: Subject::Device(d.id),
            rep_type: "trust".into(),
            auditor: A,
        })
        .unwrap();
    assert_eq!((e.score, e.writes), (score(4_200), 3));
}

/// Weakness 5: Two writes in the same block bypassed the reward decay. Here decay is by elapsed
/// time per (auditor, subject): a zero-time rewrite earns nothing.
#[test]
fn w5_same_block_rewrites_earn_nothing() {
    let mut c = Chain::dev();
    let a = Actors::new();
    let d = TestDevice::new("w5");
    registered_active(&mut c, &a, &d, &a.alice);
    c.ok(
        &a.alice,
        Call::DepositToPool {
            manufacturer: M,
            amount: atmi(100),
        },
    );
    let w = |s| ReputationWrite {
        subject: Subject::Device(d.id),
        rep_type: "trust".into(),
        score: score(s),
        direction: Direction::Up,
    };
    let first = c.tx(
        &a.auditor,
        Call::WriteReputation {
            auditor: A,
            entries: vec![w(1_000), w(2_000)],
        },
    );
    let mut second = first.tx.clone();
    second.nonce += 1;
    second.call = Call::WriteReputation {
        auditor: A,
        entries: vec![w(3_000)],
    };
    let second = second.sign(&a.auditor);
    let receipts = c.block(vec![first, second]);
    let rewards: Vec<Amount> = receipts
        .iter()
        .flat_map(|r| r.events.iter())
        .filter_map(|e| match e {
            Event::ReputationWritten { reward, .. } => Some(*reward),
            _ => None,
        })
        .collect();
    let full = Amount::new(Amount::ONE_ATMI / 8);
    assert_eq!(rewards, vec![full, Amount::ZERO, Amount::ZERO]);
    // Half the window later: half the reward.
    c.advance_ms(43_200_000 - 1_000);
    let r = c.ok(
        &a.auditor,
        Call::WriteReputation {
            auditor: A,
            entries: vec![w(4_000)],
        },
    );
    assert!(r.events.iter().any(|e| matches!(e, Event::ReputationWritten { reward, .. } if *reward == Amount::new(Amount::ONE_ATMI / 16))));
}

/// Weakness 6: Removing a manufacturer stranded its pooled tokens. Here removal settles the pool
/// to its reward wallet.
#[test]
fn w6_removal_settles_the_pool() {
    let mut c = Chain::dev();
    let a = Actors::new();
    c.ok(
        &a.alice,
        Call::DepositToPool {
            manufacturer: M,
            amount: atmi(42),
        },
    );
    let wallet = c.manufacturer(M).reward_wallet;
    let before = c.balance(wallet);
    let r = c.govern(GovAction::ChangeManufacturer {
        id: M,
        change: MemberChange::Remove,
    });
    assert!(r
        .events
        .iter()
        .any(|e| matches!(e, Event::PoolSettled { amount, .. } if *amount == atmi(42))));
    assert_eq!(c.manufacturer(M).pool, Amount::ZERO);
    assert_eq!(c.balance(wallet), before.checked_add(atmi(42)).unwrap());
    assert_eq!(c.tokens_in_existence(), c.total_supply());
}

/// Weakness 7: One owner key could pause everything and self-destruct taking the pooled tokens.
/// Here governance is k-of-n, no single admin can act alone, and no action moves
/// tokens out of a user's account or a manufacturer's pool.
#[test]
fn w7_no_single_key_moves_others_funds() {
    let mut c = Chain::dev();
    let a = Actors::new();
    let admin2 = Keypair::from_label("w7 admin2");
    c.govern(GovAction::SetAdmins {
        admins: vec![a.admin.account(), admin2.account()],
        threshold: 2,
    });
    c.ok(
        &a.alice,
        Call::DepositToPool {
            manufacturer: M,
            amount: atmi(10),
        },
    );
    // A lone admin proposes to drain the treasury to itself: nothing happens until a
    // second admin approves.
    c.ok(
        &a.alice,
        Call::Transfer {
            to: atonomi_primitives::AccountId::treasury(),
            amount: atmi(1),
        },
    );
    let alice = c.balance(a.alice.account());
    let r = c.ok(
        &a.admin,
        Call::Propose {
            action: GovAction::TreasuryPayout {
                from: PoolAccount::Treasury,
                to: a.admin.account(),
                amount: atmi(1),
            },
        },
    );
    assert!(!r
        .events
        .iter()
        .any(|e| matches!(e, Event::ProposalExecuted { .. })));
    let p: Proposal = c.get(StateKey::Proposal(ProposalId::new(2))).unwrap();
    assert_eq!(p.status, ProposalStatus::Pending);
    // The admin cannot spend alice's tokens or the pool, with or without governance:
    // no call or action names another account as the source of funds.
    c.fails(
        &a.admin,
        Call::TransferFrom {
            from: a.alice.account(),
            to: a.admin.account(),
            amount: atmi(1),
        },
        E::InsufficientAllowance,
    );
    assert_eq!(c.balance(a.alice.account()), alice);
    assert_eq!(c.manufacturer(M).pool, atmi(10));
    // Every governance action's source of funds is a module account.
    for from in [PoolAccount::Treasury, PoolAccount::AuditorPool] {
        assert_ne!(from.account(), a.alice.account());
        assert_ne!(from.account(), c.manufacturer(M).reward_wallet);
    }
}

/// Weakness 8: Reputation was an opaque 32-byte string per device. Here scores are typed, per
/// auditor and type, with direction, history and an aggregate, and provable (see the
/// proofs tests for the aggregate's proof).
#[test]
fn w8_typed_reputation_with_aggregate_and_history() {
    let mut c = Chain::dev();
    let a = Actors::new();
    let d = TestDevice::new("w8");
    registered_active(&mut c, &a, &d, &a.alice);
    let au2 = Keypair::from_label("w8 auditor2");
    let au3 = Keypair::from_label("w8 auditor3");
    c.govern(GovAction::AddAuditor(new_auditor(2, &au2)));
    c.govern(GovAction::AddAuditor(new_auditor(3, &au3)));
    let w = |ty: &str, s, dir| ReputationWrite {
        subject: Subject::Device(d.id),
        rep_type: ty.into(),
        score: score(s),
        direction: dir,
    };
    c.ok(
        &a.auditor,
        Call::WriteReputation {
            auditor: A,
            entries: vec![
                w("security", 9_000, Direction::Up),
                w("financial", 100, Direction::Down),
            ],
        },
    );
    c.ok(
        &au2,
        Call::WriteReputation {
            auditor: atonomi_primitives::AuditorId::new(2),
            entries: vec![w("security", 1_000, Direction::Down)],
        },
    );
    c.ok(
        &au3,
        Call::WriteReputation {
            auditor: atonomi_primitives::AuditorId::new(3),
            entries: vec![w("security", 5_000, Direction::Steady)],
        },
    );
    let agg: ReputationAggregate = c
        .get(StateKey::ReputationAggregate {
            subject: Subject::Device(d.id),
            rep_type: "security".into(),
        })
        .unwrap();
    assert_eq!(agg.median, score(5_000));
    assert_eq!(agg.scores.len(), 3);
    let fin: ReputationAggregate = c
        .get(StateKey::ReputationAggregate {
            subject: Subject::Device(d.id),
            rep_type: "financial".into(),
        })
        .unwrap();
    assert_eq!(fin.median, score(100));
    let e: ReputationEntry = c
        .get(StateKey::Reputation {
            subject: Subject::Device(d.id),
            rep_type: "financial".into(),
            auditor: A,
        })
        .unwrap();
    assert_eq!(e.direction, Direction::Down);
    // Scores above 2^31-1 do not even decode.
    let mut bytes = codec::encode(&w("x", 1, Direction::Up));
    let n = bytes.len();
    bytes[n - 5..n - 1].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(codec::decode::<ReputationWrite>(&bytes, 1024).is_err());
}
