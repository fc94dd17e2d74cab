//! Each call's success path and each of its failures.

use crate::fixture::*;
use atonomi_primitives::event::{Event, TxStatus};
use atonomi_primitives::gov::*;
use atonomi_primitives::state::*;
use atonomi_primitives::tx::*;
use atonomi_primitives::{
    AccountId, Amount, CallError as E, DeviceId, Hash, Height, InvalidTx, Keypair, ManufacturerId,
    ParamChange, Params, ProposalId,
};

#[test]
fn token_calls() {
    let mut c = Chain::dev();
    let a = Actors::new();
    let (alice, bob) = (a.alice.account(), a.bob.account());
    let start = c.balance(alice);
    c.ok(
        &a.alice,
        Call::Transfer {
            to: bob,
            amount: atmi(10),
        },
    );
    assert_eq!(c.balance(alice), start.checked_sub(atmi(10)).unwrap());
    c.fails(
        &a.alice,
        Call::Transfer {
            to: bob,
            amount: Amount::ZERO,
        },
        E::ZeroAmount,
    );
    c.fails(
        &a.stranger,
        Call::Transfer {
            to: bob,
            amount: atmi(1),
        },
        E::InsufficientBalance,
    );

    c.ok(
        &a.alice,
        Call::Approve {
            spender: bob,
            amount: atmi(5),
        },
    );
    c.fails(
        &a.alice,
        Call::Approve {
            spender: alice,
            amount: atmi(5),
        },
        E::SelfTransfer,
    );
    c.ok(
        &a.bob,
        Call::TransferFrom {
            from: alice,
            to: a.stranger.account(),
            amount: atmi(3),
        },
    );
    assert_eq!(c.balance(a.stranger.account()), atmi(3));
    c.fails(
        &a.bob,
        Call::TransferFrom {
            from: alice,
            to: bob,
            amount: atmi(3),
        },
        E::InsufficientAllowance,
    );
    c.fails(
        &a.stranger,
        Call::TransferFrom {
            from: alice,
            to: bob,
            amount: atmi(1),
        },
        E::InsufficientAllowance,
    );
    c.ok(
        &a.bob,
        Call::TransferFrom {
            from: alice,
            to: bob,
            amount: atmi(2),
        },
    );
    assert_eq!(
        c.get::<Amount>(StateKey::Allowance {
            owner: alice,
            spender: bob
        }),
        None,
        "spent allowance is cleared"
    );

    let supply = c.total_supply();
    c.ok(&a.alice, Call::Burn { amount: atmi(1) });
    assert_eq!(c.total_supply(), supply - Amount::ONE_ATMI);
    c.fails(
        &a.stranger,
        Call::Burn { amount: atmi(100) },
        E::InsufficientBalance,
    );

    c.ok(
        &a.alice,
        Call::DepositToPool {
            manufacturer: M,
            amount: atmi(4),
        },
    );
    assert_eq!(c.manufacturer(M).pool, atmi(4));
    c.fails(
        &a.alice,
        Call::DepositToPool {
            manufacturer: ManufacturerId::new(99),
            amount: atmi(1),
        },
        E::ManufacturerNotFound,
    );
    assert_eq!(c.tokens_in_existence(), c.total_supply());
}

#[test]
fn governance_k_of_n() {
    let mut c = Chain::dev();
    let a = Actors::new();
    let admin2 = Keypair::from_label("admin2");
    let admin3 = Keypair::from_label("admin3");
    c.fails(
        &a.stranger,
        Call::Propose {
            action: GovAction::SetNodePeer {
                peer_id: vec![1],
                allowed: true,
            },
        },
        E::NotAdmin,
    );
    c.govern(GovAction::SetAdmins {
        admins: vec![a.admin.account(), admin2.account(), admin3.account()],
        threshold: 2,
    });
    // Invalid threshold: the proposal is recorded as failed, the approval stands.
    let r = c.ok(
        &a.admin,
        Call::Propose {
            action: GovAction::SetAdmins {
                admins: vec![a.admin.account()],
                threshold: 0,
            },
        },
    );
    assert!(r
        .events
        .iter()
        .all(|e| !matches!(e, Event::ProposalExecuted { .. })));
    let pid = ProposalId::new(2);
    let r = c.ok(&admin2, Call::ApproveProposal { id: pid });
    assert!(r.events.iter().any(|e| matches!(
        e,
        Event::ProposalFailed {
            error: E::InvalidThreshold,
            ..
        }
    )));
    let p: Proposal = c.get(StateKey::Proposal(pid)).unwrap();
    assert_eq!(p.status, ProposalStatus::Failed(E::InvalidThreshold.code()));

    // One approval is not enough; the second executes.
    let maker2 = Keypair::from_label("maker2");
    c.ok(
        &a.admin,
        Call::Propose {
            action: GovAction::AddManufacturer(new_manufacturer(2, &maker2)),
        },
    );
    let pid = ProposalId::new(3);
    assert!(c
        .get::<Manufacturer>(StateKey::Manufacturer(ManufacturerId::new(2)))
        .is_none());
    c.fails(
        &a.admin,
        Call::ApproveProposal { id: pid },
        E::AlreadyApproved,
    );
    c.fails(&a.stranger, Call::ApproveProposal { id: pid }, E::NotAdmin);
    c.fails(
        &admin2,
        Call::ApproveProposal {
            id: ProposalId::new(77),
        },
        E::ProposalNotFound,
    );
    c.ok(&admin3, Call::ApproveProposal { id: pid });
    assert_eq!(
        c.manufacturer(ManufacturerId::new(2)).status,
        MemberStatus::Active
    );
    c.fails(
        &admin2,
        Call::ApproveProposal { id: pid },
        E::ProposalNotPending,
    );
}

#[test]
fn governance_actions() {
    let mut c = Chain::dev();
    let a = Actors::new();
    let mk = Keypair::from_label("mk");
    c.govern(GovAction::AddManufacturer(new_manufacturer(7, &mk)));
    c.govern_fails(
        GovAction::AddManufacturer(new_manufacturer(7, &mk)),
        E::ManufacturerExists,
    );
    c.govern_fails(
        GovAction::AddManufacturer(NewManufacturer {
            keys: vec![],
            ..new_manufacturer(8, &mk)
        }),
        E::InvalidMember,
    );
    let id = ManufacturerId::new(7);
    c.govern(GovAction::ChangeManufacturer {
        id,
        change: MemberChange::Suspend,
    });
    c.govern_fails(
        GovAction::ChangeManufacturer {
            id,
            change: MemberChange::Suspend,
        },
        E::InvalidStatusChange,
    );
    c.govern(GovAction::ChangeManufacturer {
        id,
        change: MemberChange::Resume,
    });
    c.govern(GovAction::ChangeManufacturer {
        id,
        change: MemberChange::Remove,
    });
    c.govern_fails(
        GovAction::ChangeManufacturer {
            id,
            change: MemberChange::Resume,
        },
        E::InvalidStatusChange,
    );
    c.govern_fails(
        GovAction::ChangeManufacturer {
            id: ManufacturerId::new(70),
            change: MemberChange::Remove,
        },
        E::ManufacturerNotFound,
    );

    let au = Keypair::from_label("au");
    c.govern(GovAction::AddAuditor(new_auditor(5, &au)));
    c.govern_fails(GovAction::AddAuditor(new_auditor(5, &au)), E::AuditorExists);
    c.govern(GovAction::ChangeAuditor {
        id: atonomi_primitives::AuditorId::new(5),
        change: MemberChange::Suspend,
    });
    c.govern_fails(
        GovAction::ChangeAuditor {
            id: atonomi_primitives::AuditorId::new(6),
            change: MemberChange::Suspend,
        },
        E::AuditorNotFound,
    );

    // Validator changes take effect VALIDATOR_SET_DELAY blocks later.
    let (vkey, v) = second_validator();
    let decided_at = c.height + 1;
    c.govern(GovAction::AddValidator(v.clone()));
    c.govern_fails(GovAction::AddValidator(v.clone()), E::ValidatorExists);
    let pending: PendingValidatorSet = c.get(StateKey::PendingValidatorSet).unwrap();
    assert_eq!(
        pending.effective_height,
        Height::new(decided_at + VALIDATOR_SET_DELAY)
    );
    while c.height < decided_at + VALIDATOR_SET_DELAY {
        let set: ValidatorSet = c.get(StateKey::ValidatorSet).unwrap();
        assert_eq!(
            set.validators.len(),
            1,
            "not yet in force at height {}",
            c.height
        );
        c.ok(
            &a.alice,
            Call::Transfer {
                to: a.bob.account(),
                amount: Amount::new(1),
            },
        );
    }
    let set: ValidatorSet = c.get(StateKey::ValidatorSet).unwrap();
    assert_eq!(set.validators.len(), 2);
    // Another key with the same bridge address (issue 24, item 4).
    c.govern_fails(
        GovAction::AddValidator(Validator {
            consensus_key: Keypair::from_label("validator3").account(),
            ..v.clone()
        }),
        E::DuplicateBridgeAddress,
    );
    c.govern(GovAction::SetValidatorPower {
        consensus_key: vkey.account(),
        power: 9,
    });
    c.govern_fails(
        GovAction::SetValidatorPower {
            consensus_key: a.stranger.account(),
            power: 9,
        },
        E::ValidatorNotFound,
    );
    c.govern_fails(
        GovAction::SetValidatorPower {
            consensus_key: vkey.account(),
            power: 0,
        },
        E::InvalidValidatorSet,
    );
    c.govern(GovAction::RemoveValidator {
        consensus_key: vkey.account(),
    });
    c.govern_fails(
        GovAction::RemoveValidator {
            consensus_key: vkey.account(),
        },
        E::ValidatorNotFound,
    );

    let mut p = Params {
        payment_fee_bps: 250,
        ..Params::default()
    };
    c.govern(GovAction::SetParams(p.clone()));
    assert_eq!(c.get::<Params>(StateKey::Params).unwrap(), p);
    p.payment_fee_bps = 20_000;
    c.govern_fails(GovAction::SetParams(p), E::InvalidParams);

    // UpdateParams changes only what it names, on top of the values in force.
    c.govern(GovAction::UpdateParams(vec![
        ParamChange::registration_fee(atmi(2)),
        ParamChange::max_batch(500),
    ]));
    let updated = c.get::<Params>(StateKey::Params).unwrap();
    assert_eq!(
        updated,
        Params {
            registration_fee: atmi(2),
            max_batch: 500,
            payment_fee_bps: 250,
            ..Params::default()
        }
    );
    // Nothing, a parameter twice, or a result that does not validate: refused, unchanged.
    c.govern_fails(GovAction::UpdateParams(vec![]), E::InvalidParams);
    c.govern_fails(
        GovAction::UpdateParams(vec![ParamChange::max_batch(1), ParamChange::max_batch(2)]),
        E::InvalidParams,
    );
    c.govern_fails(
        GovAction::UpdateParams(vec![ParamChange::payment_fee_bps(10_001)]),
        E::InvalidParams,
    );
    assert_eq!(c.get::<Params>(StateKey::Params).unwrap(), updated);
    c.govern(GovAction::SetParams(Params {
        payment_fee_bps: 250,
        ..Params::default()
    }));

    // Treasury payouts come only from module accounts and only through governance.
    c.ok(
        &a.alice,
        Call::Transfer {
            to: AccountId::treasury(),
            amount: atmi(3),
        },
    );
    c.govern(GovAction::TreasuryPayout {
        from: PoolAccount::Treasury,
        to: a.bob.account(),
        amount: atmi(2),
    });
    c.govern_fails(
        GovAction::TreasuryPayout {
            from: PoolAccount::Treasury,
            to: a.bob.account(),
            amount: atmi(2),
        },
        E::InsufficientBalance,
    );
    c.govern_fails(
        GovAction::SetNodePeer {
            peer_id: vec![],
            allowed: true,
        },
        E::InvalidMember,
    );
    c.govern(GovAction::SetNodePeer {
        peer_id: vec![1, 2, 3],
        allowed: true,
    });
    assert_eq!(c.get::<()>(StateKey::NodePeer(vec![1, 2, 3])), Some(()));
}

#[test]
fn register_devices() {
    let mut c = Chain::dev();
    let a = Actors::new();
    let devs: Vec<_> = (0..5).map(|i| TestDevice::new(&format!("r{i}"))).collect();
    let regs: Vec<_> = devs.iter().map(|d| d.registration()).collect();
    let before = c.balance(a.maker.account());
    let r = c.ok(
        &a.maker,
        Call::RegisterDevices {
            manufacturer: M,
            devices: regs.clone(),
        },
    );
    assert_eq!(
        r.events
            .iter()
            .filter(|e| matches!(e, Event::DeviceRegistered { .. }))
            .count(),
        5
    );
    assert_eq!(
        c.balance(a.maker.account()),
        before.checked_sub(atmi(5)).unwrap(),
        "1 ATMI per device"
    );
    assert_eq!(c.manufacturer(M).pool, atmi(5), "fees flow into the pool");
    assert_eq!(
        c.manufacturer(M).devices_registered,
        5,
        "the counter counts"
    );
    assert_eq!(c.device(devs[0].id).status, DeviceStatus::Registered);

    c.fails(
        &a.maker,
        Call::RegisterDevices {
            manufacturer: M,
            devices: vec![regs[0].clone()],
        },
        E::DeviceExists,
    );
    c.fails(
        &a.maker,
        Call::RegisterDevices {
            manufacturer: M,
            devices: vec![],
        },
        E::EmptyBatch,
    );
    let d = TestDevice::new("dup");
    c.fails(
        &a.maker,
        Call::RegisterDevices {
            manufacturer: M,
            devices: vec![d.registration(), d.registration()],
        },
        E::DuplicateInBatch,
    );
    // A small-order key is taken at registration (decoding keys there was most of its
    // cost) and refused at activation, which checks the device's signature under it.
    let w = TestDevice::new("weak");
    let mut weak = w.registration();
    weak.public_key = AccountId::new({
        let mut k = [0u8; 32];
        k[0] = 1;
        k
    });
    c.ok(
        &a.maker,
        Call::RegisterDevices {
            manufacturer: M,
            devices: vec![weak],
        },
    );
    c.fails(
        &a.alice,
        Call::ActivateDevice {
            device: w.id,
            device_signature: w.consent(&c, a.alice.account()),
        },
        E::InvalidDeviceKey,
    );
    assert_eq!(
        c.manufacturer(M).devices_registered,
        6,
        "refused batches count nothing"
    );
    c.fails(
        &a.stranger,
        Call::RegisterDevices {
            manufacturer: M,
            devices: vec![d.registration()],
        },
        E::NotManufacturerKey,
    );
    c.fails(
        &a.maker,
        Call::RegisterDevices {
            manufacturer: ManufacturerId::new(9),
            devices: vec![d.registration()],
        },
        E::ManufacturerNotFound,
    );
    let too_many: Vec<_> = (0..2_001)
        .map(|i| TestDevice::new(&format!("big{i}")).registration())
        .collect();
    c.fails(
        &a.maker,
        Call::RegisterDevices {
            manufacturer: M,
            devices: too_many,
        },
        E::BatchTooLarge,
    );
    // A manufacturer whose key cannot pay the fee registers nothing.
    let poor = Keypair::from_label("poor maker");
    c.govern(GovAction::AddManufacturer(new_manufacturer(3, &poor)));
    c.fails(
        &poor,
        Call::RegisterDevices {
            manufacturer: ManufacturerId::new(3),
            devices: vec![d.registration()],
        },
        E::InsufficientBalance,
    );
    // Suspended manufacturers cannot register.
    c.govern(GovAction::ChangeManufacturer {
        id: M,
        change: MemberChange::Suspend,
    });
    c.fails(
        &a.maker,
        Call::RegisterDevices {
            manufacturer: M,
            devices: vec![d.registration()],
        },
        E::ManufacturerNotActive,
    );
}

#[test]
fn device_lifecycle_by_manufacturer() {
    let mut c = Chain::dev();
    let a = Actors::new();
    let d = TestDevice::new("life");
    c.ok(
        &a.maker,
        Call::RegisterDevices {
            manufacturer: M,
            devices: vec![d.registration()],
        },
    );
    c.fails(
        &a.maker,
        Call::SuspendDevice { device: d.id },
        E::InvalidStatusChange,
    );
    let sig = d.consent(&c, a.alice.account());
    c.ok(
        &a.alice,
        Call::ActivateDevice {
            device: d.id,
            device_signature: sig,
        },
    );
    c.fails(
        &a.alice,
        Call::SuspendDevice { device: d.id },
        E::NotManufacturerKey,
    );
    c.ok(&a.maker, Call::SuspendDevice { device: d.id });
    assert_eq!(c.device(d.id).status, DeviceStatus::Suspended);
    c.fails(
        &a.maker,
        Call::SuspendDevice { device: d.id },
        E::InvalidStatusChange,
    );
    c.ok(&a.maker, Call::ResumeDevice { device: d.id });
    c.fails(
        &a.maker,
        Call::ResumeDevice { device: d.id },
        E::InvalidStatusChange,
    );
    c.ok(&a.maker, Call::RevokeDevice { device: d.id });
    c.fails(
        &a.maker,
        Call::RevokeDevice { device: d.id },
        E::DeviceRevoked,
    );
    c.fails(
        &a.maker,
        Call::ResumeDevice { device: d.id },
        E::DeviceRevoked,
    );
    c.fails(
        &a.maker,
        Call::RevokeDevice {
            device: DeviceId::new([3; 32]),
        },
        E::DeviceNotFound,
    );

    // Another manufacturer's key cannot touch this manufacturer's devices.
    let other = Keypair::from_label("other maker");
    c.govern(GovAction::AddManufacturer(new_manufacturer(4, &other)));
    let d2 = TestDevice::new("life2");
    c.ok(
        &a.maker,
        Call::RegisterDevices {
            manufacturer: M,
            devices: vec![d2.registration()],
        },
    );
    c.fails(
        &other,
        Call::RevokeDevice { device: d2.id },
        E::NotManufacturerKey,
    );
}

#[test]
fn activation_and_ownership() {
    let mut c = Chain::dev();
    let a = Actors::new();
    let d = TestDevice::new("own");
    c.ok(
        &a.maker,
        Call::RegisterDevices {
            manufacturer: M,
            devices: vec![d.registration()],
        },
    );
    let pool = c.manufacturer(M).pool;
    // Consent for another owner does not work for alice.
    let for_bob = d.consent(&c, a.bob.account());
    c.fails(
        &a.alice,
        Call::ActivateDevice {
            device: d.id,
            device_signature: for_bob,
        },
        E::BadDeviceSignature,
    );
    let sig = d.consent(&c, a.alice.account());
    c.fails(
        &a.stranger,
        Call::ActivateDevice {
            device: d.id,
            device_signature: d.consent(&c, a.stranger.account()),
        },
        E::InsufficientBalance,
    );
    c.ok(
        &a.alice,
        Call::ActivateDevice {
            device: d.id,
            device_signature: sig,
        },
    );
    assert_eq!(
        c.manufacturer(M).pool,
        pool.checked_add(atmi(1)).unwrap(),
        "activation fee to the pool"
    );
    let dev = c.device(d.id);
    assert_eq!(
        (dev.status, dev.owner),
        (DeviceStatus::Active, Some(a.alice.account()))
    );
    c.fails(
        &a.alice,
        Call::ActivateDevice {
            device: d.id,
            device_signature: sig,
        },
        E::DeviceNotRegistered,
    );
    c.fails(
        &a.alice,
        Call::ActivateDevice {
            device: DeviceId::new([8; 32]),
            device_signature: sig,
        },
        E::DeviceNotFound,
    );

    c.ok(
        &a.alice,
        Call::SetWallet {
            device: d.id,
            wallet: Some(a.alice.account()),
        },
    );
    c.fails(
        &a.alice,
        Call::SetWallet {
            device: d.id,
            wallet: Some(a.bob.account()),
        },
        E::InvalidWallet,
    );
    c.fails(
        &a.bob,
        Call::SetWallet {
            device: d.id,
            wallet: None,
        },
        E::NotOwner,
    );

    let attrs = Attributes {
        per_tx_limit: Some(atmi(5)),
        ..Attributes::default()
    };
    c.ok(
        &a.alice,
        Call::SetAttributes {
            device: d.id,
            attributes: attrs.clone(),
        },
    );
    assert_eq!(c.device(d.id).attributes, attrs);
    let bad = Attributes {
        window_limit: Some(WindowLimit {
            amount: atmi(1),
            window_ms: 0,
        }),
        ..Attributes::default()
    };
    c.fails(
        &a.alice,
        Call::SetAttributes {
            device: d.id,
            attributes: bad,
        },
        E::InvalidAttributes,
    );
    c.fails(
        &a.bob,
        Call::SetAttributes {
            device: d.id,
            attributes: attrs,
        },
        E::NotOwner,
    );

    c.fails(
        &a.alice,
        Call::TransferDevice {
            device: d.id,
            to: a.alice.account(),
            with_wallet: false,
        },
        E::SelfTransfer,
    );
    c.fails(
        &a.bob,
        Call::TransferDevice {
            device: d.id,
            to: a.bob.account(),
            with_wallet: false,
        },
        E::NotOwner,
    );
    c.ok(
        &a.alice,
        Call::TransferDevice {
            device: d.id,
            to: a.bob.account(),
            with_wallet: false,
        },
    );
    let dev = c.device(d.id);
    assert_eq!(
        (dev.owner, dev.wallet),
        (Some(a.bob.account()), None),
        "wallet binding cleared"
    );
    c.fails(
        &a.alice,
        Call::TransferDevice {
            device: d.id,
            to: a.alice.account(),
            with_wallet: true,
        },
        E::NotOwner,
    );

    // RegisterAndActivate: the device still consents, the manufacturer pays.
    let d2 = TestDevice::new("preowned");
    let sig = d2.consent(&c, a.bob.account());
    let bad_sig = d2.consent(&c, a.alice.account());
    c.fails(
        &a.maker,
        Call::RegisterAndActivate {
            manufacturer: M,
            device: d2.registration(),
            owner: a.bob.account(),
            device_signature: bad_sig,
        },
        E::BadDeviceSignature,
    );
    let registered = c.manufacturer(M).devices_registered;
    c.ok(
        &a.maker,
        Call::RegisterAndActivate {
            manufacturer: M,
            device: d2.registration(),
            owner: a.bob.account(),
            device_signature: sig,
        },
    );
    assert_eq!(c.device(d2.id).owner, Some(a.bob.account()));
    assert_eq!(c.manufacturer(M).devices_registered, registered + 1);
    c.fails(
        &a.maker,
        Call::RegisterAndActivate {
            manufacturer: M,
            device: d2.registration(),
            owner: a.bob.account(),
            device_signature: sig,
        },
        E::DeviceExists,
    );
}

#[test]
fn services() {
    let mut c = Chain::dev();
    let a = Actors::new();
    let d = TestDevice::new("svc");
    registered_active(&mut c, &a, &d, &a.alice);
    let reg = |ty: &str, expiry: u64| Call::RegisterService {
        device: d.id,
        service_type: ty.into(),
        price: atmi(1),
        unit: "kwh".into(),
        area: None,
        metadata: vec![],
        expiry: Height::new(expiry),
    };
    c.ok(&a.alice, reg("energy", 1_000));
    let offer: ServiceOffer = c
        .get(StateKey::Service {
            service_type: "energy".into(),
            device: d.id,
        })
        .unwrap();
    assert_eq!(offer.price, atmi(1));
    c.fails(&a.alice, reg("energy", 1), E::InvalidService);
    c.fails(&a.alice, reg("", 1_000), E::InvalidService);
    c.fails(&a.bob, reg("energy", 1_000), E::NotOwner);
    c.fails(
        &a.bob,
        Call::WithdrawService {
            device: d.id,
            service_type: "energy".into(),
        },
        E::NotOwner,
    );
    c.ok(
        &a.alice,
        Call::WithdrawService {
            device: d.id,
            service_type: "energy".into(),
        },
    );
    c.fails(
        &a.alice,
        Call::WithdrawService {
            device: d.id,
            service_type: "energy".into(),
        },
        E::ServiceNotFound,
    );
    c.ok(&a.maker, Call::SuspendDevice { device: d.id });
    c.fails(&a.alice, reg("energy", 1_000), E::DeviceSuspended);
}

#[test]
fn reputation_writes_and_rewards() {
    let mut c = Chain::dev();
    let a = Actors::new();
    let d = TestDevice::new("rep");
    registered_active(&mut c, &a, &d, &a.alice);
    let pool = c.manufacturer(M).pool; // 2 ATMI: registration + activation
    let auditor_before = c.balance(a.auditor.account());
    let maker_before = c.balance(a.maker.account());
    let w = |s: u32| ReputationWrite {
        subject: Subject::Device(d.id),
        rep_type: "trust".into(),
        score: score(s),
        direction: Direction::Up,
    };
    c.ok(
        &a.auditor,
        Call::WriteReputation {
            auditor: A,
            entries: vec![w(7_000)],
        },
    );
    let reward = Amount::new(Amount::ONE_ATMI / 8);
    assert_eq!(c.manufacturer(M).pool, pool.checked_sub(reward).unwrap());
    assert_eq!(
        c.balance(a.auditor.account()),
        auditor_before
            .checked_add(reward.bps(8_000).unwrap())
            .unwrap(),
        "80% to the auditor"
    );
    assert_eq!(
        c.balance(a.maker.account()),
        maker_before
            .checked_add(reward.bps(2_000).unwrap())
            .unwrap(),
        "20% to the manufacturer"
    );
    let e: ReputationEntry = c
        .get(StateKey::Reputation {
            subject: Subject::Device(d.id),
            rep_type: "trust".into(),
            auditor: A,
        })
        .unwrap();
    assert_eq!((e.score, e.writes), (score(7_000), 1));

    // A second auditor: the aggregate is the lower median.
    let au2 = Keypair::from_label("auditor2");
    c.govern(GovAction::AddAuditor(new_auditor(2, &au2)));
    let r = c.ok(
        &au2,
        Call::WriteReputation {
            auditor: atonomi_primitives::AuditorId::new(2),
            entries: vec![w(3_000)],
        },
    );
    assert!(r.events.iter().any(
        |e| matches!(e, Event::ReputationWritten { aggregate, .. } if *aggregate == score(3_000))
    ));
    let agg: ReputationAggregate = c
        .get(StateKey::ReputationAggregate {
            subject: Subject::Device(d.id),
            rep_type: "trust".into(),
        })
        .unwrap();
    assert_eq!(agg.scores.len(), 2);

    c.fails(
        &a.stranger,
        Call::WriteReputation {
            auditor: A,
            entries: vec![w(1)],
        },
        E::NotAuditorKey,
    );
    c.fails(
        &a.auditor,
        Call::WriteReputation {
            auditor: A,
            entries: vec![],
        },
        E::EmptyBatch,
    );
    let bad_type = ReputationWrite {
        rep_type: String::new(),
        ..w(1)
    };
    c.fails(
        &a.auditor,
        Call::WriteReputation {
            auditor: A,
            entries: vec![bad_type],
        },
        E::InvalidReputationType,
    );
    let ghost = ReputationWrite {
        subject: Subject::Device(DeviceId::new([4; 32])),
        ..w(1)
    };
    c.fails(
        &a.auditor,
        Call::WriteReputation {
            auditor: A,
            entries: vec![ghost],
        },
        E::InvalidSubject,
    );
    c.fails(
        &a.auditor,
        Call::WriteReputation {
            auditor: atonomi_primitives::AuditorId::new(40),
            entries: vec![w(1)],
        },
        E::AuditorNotFound,
    );
    c.govern(GovAction::ChangeAuditor {
        id: A,
        change: MemberChange::Suspend,
    });
    c.fails(
        &a.auditor,
        Call::WriteReputation {
            auditor: A,
            entries: vec![w(1)],
        },
        E::AuditorNotActive,
    );
}

/// Two active devices owned by alice and bob, the payer funded on its own account.
fn payment_setup() -> (Chain, Actors, TestDevice, TestDevice) {
    let mut c = Chain::dev();
    let a = Actors::new();
    let payer = TestDevice::new("payer");
    let payee = TestDevice::new("payee");
    registered_active(&mut c, &a, &payer, &a.alice);
    registered_active(&mut c, &a, &payee, &a.bob);
    c.ok(
        &a.alice,
        Call::Transfer {
            to: payer.key.account(),
            amount: atmi(1_000),
        },
    );
    (c, a, payer, payee)
}

fn pay(from: &TestDevice, to: &TestDevice, amount: Amount) -> Call {
    Call::Pay {
        from_device: from.id,
        to_device: to.id,
        amount,
        memo: b"m".to_vec(),
    }
}

#[test]
fn payments_with_fee_split() {
    let (mut c, a, payer, payee) = payment_setup();
    let treasury = c.balance(AccountId::treasury());
    c.ok(&payer.key, pay(&payer, &payee, atmi(100)));
    assert_eq!(c.balance(payee.key.account()), atmi(100));
    assert_eq!(c.balance(payer.key.account()), atmi(899), "100 + 1% fee");
    assert_eq!(
        c.balance(AccountId::auditor_pool()),
        Amount::new(Amount::ONE_ATMI / 2)
    );
    assert_eq!(
        c.balance(AccountId::treasury()),
        treasury
            .checked_add(Amount::new(Amount::ONE_ATMI / 2))
            .unwrap()
    );

    // Paying from the owner's wallet.
    c.ok(
        &a.alice,
        Call::SetWallet {
            device: payer.id,
            wallet: Some(a.alice.account()),
        },
    );
    let alice = c.balance(a.alice.account());
    c.ok(&payer.key, pay(&payer, &payee, atmi(10)));
    assert_eq!(
        c.balance(a.alice.account()),
        alice
            .checked_sub(Amount::new(Amount::ONE_ATMI * 101 / 10))
            .unwrap()
    );

    c.fails(&a.alice, pay(&payer, &payee, atmi(1)), E::NotDeviceKey);
    c.fails(&payer.key, pay(&payer, &payer, atmi(1)), E::SamePayerPayee);
    c.fails(&payer.key, pay(&payer, &payee, Amount::ZERO), E::ZeroAmount);
    c.fails(
        &payer.key,
        Call::Pay {
            from_device: payer.id,
            to_device: DeviceId::new([1; 32]),
            amount: atmi(1),
            memo: vec![],
        },
        E::DeviceNotFound,
    );
    c.ok(
        &a.alice,
        Call::SetWallet {
            device: payer.id,
            wallet: None,
        },
    );
    c.fails(
        &payer.key,
        pay(&payer, &payee, atmi(10_000)),
        E::InsufficientBalance,
    );
}

#[test]
fn payment_policy_checks() {
    let (mut c, a, payer, payee) = payment_setup();
    let set = |c: &mut Chain, attrs: Attributes| {
        c.ok(
            &a.alice,
            Call::SetAttributes {
                device: payer.id,
                attributes: attrs,
            },
        );
    };
    set(
        &mut c,
        Attributes {
            per_tx_limit: Some(atmi(5)),
            ..Default::default()
        },
    );
    c.fails(
        &payer.key,
        pay(&payer, &payee, atmi(6)),
        E::PerTxLimitExceeded,
    );
    c.ok(&payer.key, pay(&payer, &payee, atmi(5)));

    set(
        &mut c,
        Attributes {
            window_limit: Some(WindowLimit {
                amount: atmi(10),
                window_ms: 60_000,
            }),
            ..Default::default()
        },
    );
    c.ok(&payer.key, pay(&payer, &payee, atmi(6)));
    c.fails(
        &payer.key,
        pay(&payer, &payee, atmi(5)),
        E::WindowLimitExceeded,
    );
    c.advance_ms(60_000);
    c.ok(&payer.key, pay(&payer, &payee, atmi(5)));

    set(
        &mut c,
        Attributes {
            payee_allowlist: Some(vec![DeviceId::new([9; 32])]),
            ..Default::default()
        },
    );
    c.fails(&payer.key, pay(&payer, &payee, atmi(1)), E::PayeeNotAllowed);

    let area = GeoArea {
        min: GeoPoint {
            lat_e6: 0,
            lon_e6: 0,
        },
        max: GeoPoint {
            lat_e6: 10,
            lon_e6: 10,
        },
    };
    set(
        &mut c,
        Attributes {
            geo_area: Some(area),
            ..Default::default()
        },
    );
    c.fails(&payer.key, pay(&payer, &payee, atmi(1)), E::OutsideArea);
    c.ok(
        &a.bob,
        Call::SetAttributes {
            device: payee.id,
            attributes: Attributes {
                location: Some(GeoPoint {
                    lat_e6: 5,
                    lon_e6: 5,
                }),
                ..Default::default()
            },
        },
    );
    c.ok(&payer.key, pay(&payer, &payee, atmi(1)));

    set(
        &mut c,
        Attributes {
            counterparty_min_reputation: Some(score(6_000)),
            ..Default::default()
        },
    );
    c.fails(
        &payer.key,
        pay(&payer, &payee, atmi(1)),
        E::BelowMinReputation,
    );
    set(&mut c, Attributes::default());

    // An auditor's low score stops the device from paying.
    let w = ReputationWrite {
        subject: Subject::Device(payer.id),
        rep_type: "trust".into(),
        score: score(10),
        direction: Direction::Down,
    };
    c.ok(
        &a.auditor,
        Call::WriteReputation {
            auditor: A,
            entries: vec![w],
        },
    );
    c.fails(
        &payer.key,
        pay(&payer, &payee, atmi(1)),
        E::BelowMinReputation,
    );

    // Suspended payees cannot be paid.
    let w = ReputationWrite {
        subject: Subject::Device(payer.id),
        rep_type: "trust".into(),
        score: score(9_000),
        direction: Direction::Up,
    };
    c.advance_ms(1);
    c.ok(
        &a.auditor,
        Call::WriteReputation {
            auditor: A,
            entries: vec![w],
        },
    );
    c.ok(&a.maker, Call::SuspendDevice { device: payee.id });
    c.fails(&payer.key, pay(&payer, &payee, atmi(1)), E::DeviceSuspended);
    c.ok(&a.maker, Call::SuspendDevice { device: payer.id });
    c.fails(&payer.key, pay(&payer, &payee, atmi(1)), E::DeviceSuspended);
}

#[test]
fn logs_and_interaction_reports() {
    let (mut c, a, d1, d2) = payment_setup();
    let r = c.ok(
        &d1.key,
        Call::AnchorLog {
            device: d1.id,
            hash: Hash::of(b"batch"),
            kind: "telemetry".into(),
            parties: vec![d2.id],
        },
    );
    assert!(matches!(r.events[0], Event::LogAnchored { .. }));
    c.fails(
        &d1.key,
        Call::AnchorLog {
            device: d1.id,
            hash: Hash::of(b"x"),
            kind: String::new(),
            parties: vec![],
        },
        E::InvalidKind,
    );
    c.fails(
        &d1.key,
        Call::AnchorLog {
            device: d1.id,
            hash: Hash::of(b"x"),
            kind: "k".into(),
            parties: vec![DeviceId::new([5; 32])],
        },
        E::DeviceNotFound,
    );
    c.fails(
        &a.alice,
        Call::AnchorLog {
            device: d1.id,
            hash: Hash::of(b"x"),
            kind: "k".into(),
            parties: vec![],
        },
        E::NotDeviceKey,
    );
    let r = c.ok(
        &d1.key,
        Call::ReportInteraction {
            device: d1.id,
            peer: d2.id,
            outcome: Outcome::Failure,
            receipt: Hash::of(b"r"),
        },
    );
    assert!(matches!(
        r.events[0],
        Event::InteractionReported {
            outcome: Outcome::Failure,
            ..
        }
    ));
    c.fails(
        &d1.key,
        Call::ReportInteraction {
            device: d1.id,
            peer: d1.id,
            outcome: Outcome::Success,
            receipt: Hash::ZERO,
        },
        E::SamePayerPayee,
    );
    c.fails(
        &d1.key,
        Call::ReportInteraction {
            device: d1.id,
            peer: DeviceId::new([5; 32]),
            outcome: Outcome::Success,
            receipt: Hash::ZERO,
        },
        E::DeviceNotFound,
    );
}

#[test]
fn invalid_transactions_change_nothing() {
    let mut c = Chain::dev();
    let a = Actors::new();
    let before = c.state.clone();
    let good = c.tx(
        &a.alice,
        Call::Transfer {
            to: a.bob.account(),
            amount: atmi(1),
        },
    );
    let mut bad_sig = good.clone();
    bad_sig.signature.0[0] ^= 1;
    let mut wrong_chain = good.tx.clone();
    wrong_chain.chain_id = atonomi_primitives::ChainId::new("other").unwrap();
    let wrong_chain = wrong_chain.sign(&a.alice);
    let mut future = good.tx.clone();
    future.nonce += 5;
    let future = future.sign(&a.alice);
    let mut huge_fee = good.tx.clone();
    huge_fee.max_fee = Some(Amount::ZERO);
    let garbage = vec![0xff; 100];
    let receipts = c.block_raw(vec![
        bad_sig.to_bytes(),
        wrong_chain.to_bytes(),
        future.to_bytes(),
        garbage,
        vec![0u8; 600 * 1024],
    ]);
    // Each reason is typed (receipts are hashed: no library's error text in them).
    let reasons: Vec<_> = receipts.iter().map(|r| r.status.clone()).collect();
    assert!(
        matches!(
            reasons.as_slice(),
            [
                TxStatus::Invalid(InvalidTx::BadSignature),
                TxStatus::Invalid(InvalidTx::WrongChain),
                TxStatus::Invalid(InvalidTx::WrongNonce {
                    nonce: 5,
                    expected: 0
                }),
                TxStatus::Invalid(InvalidTx::Undecodable),
                TxStatus::Invalid(InvalidTx::TooLarge { len: 614400, .. }),
            ]
        ),
        "{reasons:?}"
    );
    assert_eq!(c.state.0, before.0, "invalid transactions changed state");
    // The same transaction replayed in a later block is rejected by its nonce.
    let r = c.block(vec![good.clone()]);
    assert_eq!(r[0].status, TxStatus::Success);
    let r = c.block(vec![good]);
    assert_eq!(
        r[0].status,
        TxStatus::Invalid(InvalidTx::WrongNonce {
            nonce: 0,
            expected: 1
        })
    );
}

#[test]
fn failed_call_consumes_nonce_only() {
    let mut c = Chain::dev();
    let a = Actors::new();
    let n = c.nonce(a.stranger.account());
    c.fails(
        &a.stranger,
        Call::Transfer {
            to: a.bob.account(),
            amount: atmi(1),
        },
        E::InsufficientBalance,
    );
    assert_eq!(c.nonce(a.stranger.account()), n + 1);
}

#[test]
fn large_blocks_verify_signatures_in_parallel_with_the_same_result() {
    let mut c = Chain::dev();
    let a = Actors::new();
    // 200 transfers from distinct funded keys (the parallel path needs 64 or more);
    // every seventh signature is broken.
    let keys: Vec<Keypair> = (0..200)
        .map(|i| Keypair::from_label(&format!("par{i}")))
        .collect();
    let fund: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let mut tx = c
                .tx(
                    &a.admin,
                    Call::Transfer {
                        to: k.account(),
                        amount: atmi(1),
                    },
                )
                .tx;
            tx.nonce += i as u64;
            tx.sign(&a.admin)
        })
        .collect();
    assert!(c.block(fund).iter().all(|r| r.status == TxStatus::Success));
    let txs: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let mut t = c.tx(
                k,
                Call::Transfer {
                    to: a.bob.account(),
                    amount: Amount::new(1),
                },
            );
            if i % 7 == 0 {
                t.signature.0[5] ^= 0x40;
            }
            t.to_bytes()
        })
        .collect();
    let sequential: Vec<bool> = txs
        .iter()
        .map(|b| {
            atonomi_primitives::SignedTransaction::from_bytes(b)
                .unwrap()
                .verify_signature()
                .is_ok()
        })
        .collect();
    assert_eq!(atonomi_runtime::verify_signatures(&txs), sequential);
    let receipts = c.block_raw(txs);
    for (i, r) in receipts.iter().enumerate() {
        if i % 7 == 0 {
            assert_eq!(r.status, TxStatus::Invalid(InvalidTx::BadSignature));
        } else {
            assert_eq!(r.status, TxStatus::Success);
        }
    }
}

#[test]
fn blocks_over_the_limits_are_rejected_whole() {
    let mut c = Chain::dev();
    let mut p = Params {
        max_block_txs: 3,
        max_block_bytes: 600 * 1024,
        ..Params::default()
    };
    c.govern(GovAction::SetParams(p.clone()));
    let ctx = c.ctx();
    let four: Vec<Vec<u8>> = (0..4).map(|i| vec![i; 10]).collect();
    let err =
        atonomi_runtime::execute_block(&c.state, &ctx, &four, atonomi_runtime::SigCheck::Verify)
            .unwrap_err();
    assert!(
        matches!(err, atonomi_runtime::Fatal::InvalidBlock(ref m) if m.contains("max_block_txs")),
        "{err}"
    );
    let three: Vec<Vec<u8>> = (0..3).map(|i| vec![i; 10]).collect();
    assert!(atonomi_runtime::execute_block(
        &c.state,
        &ctx,
        &three,
        atonomi_runtime::SigCheck::Verify
    )
    .is_ok());
    p.max_block_txs = 100;
    p.max_block_bytes = p.max_tx_bytes;
    c.govern(GovAction::SetParams(p.clone()));
    let ctx = c.ctx();
    let big: Vec<Vec<u8>> = vec![vec![0; p.max_tx_bytes as usize], vec![0; 1]];
    let err =
        atonomi_runtime::execute_block(&c.state, &ctx, &big, atonomi_runtime::SigCheck::Verify)
            .unwrap_err();
    assert!(
        matches!(err, atonomi_runtime::Fatal::InvalidBlock(ref m) if m.contains("max_block_bytes")),
        "{err}"
    );
}

#[test]
fn precheck_is_the_admission_check() {
    use atonomi_runtime::{precheck, SigCheck};
    let mut c = Chain::dev();
    let a = Actors::new();
    let tx = c.tx(
        &a.alice,
        Call::Transfer {
            to: a.bob.account(),
            amount: atmi(1),
        },
    );
    assert!(precheck(&c.state, &c.chain_id, &tx.to_bytes(), SigCheck::Verify).is_ok());
    let mut future = tx.tx.clone();
    future.nonce += 3;
    assert!(
        precheck(
            &c.state,
            &c.chain_id,
            &future.sign(&a.alice).to_bytes(),
            SigCheck::Verify
        )
        .is_ok(),
        "future nonces wait in the mempool"
    );
    let mut bad = tx.clone();
    bad.signature.0[1] ^= 1;
    let refused = |c: &Chain, chain: &atonomi_primitives::ChainId, bytes: &[u8]| {
        precheck(&c.state, chain, bytes, SigCheck::Verify).unwrap_err()
    };
    assert_eq!(
        refused(&c, &c.chain_id, &bad.to_bytes()),
        InvalidTx::BadSignature.into()
    );
    let other = atonomi_primitives::ChainId::new("other").unwrap();
    assert_eq!(
        refused(&c, &other, &tx.to_bytes()),
        InvalidTx::WrongChain.into()
    );
    assert_eq!(
        refused(&c, &c.chain_id, &[1, 2, 3]),
        InvalidTx::Undecodable.into()
    );
    c.block(vec![tx.clone()]);
    let err = refused(&c, &c.chain_id, &tx.to_bytes());
    assert_eq!(err, InvalidTx::NonceUsed { nonce: 0, next: 1 }.into());
    assert_eq!(err.to_string(), "nonce 0 already used (next is 1)");
}

/// Skipping the verification of pre-verified signatures changes nothing for honest
/// callers: the outcome equals verifying all, and a transaction not marked verified
/// is still checked (a bad signature stays `Invalid`).
#[test]
fn preverified_signatures_give_the_outcome_of_verifying_all() {
    let c = Chain::dev();
    let a = Actors::new();
    let good = c.tx(
        &a.alice,
        Call::Transfer {
            to: a.bob.account(),
            amount: atmi(1),
        },
    );
    let mut forged = c.tx(
        &a.bob,
        Call::Transfer {
            to: a.alice.account(),
            amount: atmi(1),
        },
    );
    forged.signature.0[0] ^= 1;
    let txs = vec![good.to_bytes(), forged.to_bytes()];
    let ctx = c.ctx();
    let all =
        atonomi_runtime::execute_block(&c.state, &ctx, &txs, atonomi_runtime::SigCheck::Verify)
            .unwrap();
    let skip_good =
        atonomi_runtime::execute_block_preverified(&c.state, &ctx, &txs, &[true, false]).unwrap();
    assert_eq!(all, skip_good);
    assert!(matches!(
        skip_good.receipts[1].status,
        TxStatus::Invalid(InvalidTx::BadSignature)
    ));
    assert_eq!(skip_good.receipts[0].status, TxStatus::Success);
    // Flags shorter than the block leave the rest to verify.
    assert_eq!(
        atonomi_runtime::execute_block_preverified(&c.state, &ctx, &txs, &[true]).unwrap(),
        all
    );
    // Many transactions take the parallel path with gaps of pre-verified ones.
    let many: Vec<Vec<u8>> = (0..200u64)
        .map(|i| {
            let mut t = c.tx(
                &a.alice,
                Call::Transfer {
                    to: a.bob.account(),
                    amount: atmi(1),
                },
            );
            t.tx.nonce = i;
            t = t.tx.sign(&a.alice);
            if i % 7 == 3 {
                t.signature.0[5] ^= 1;
            }
            t.to_bytes()
        })
        .collect();
    let flags: Vec<bool> = (0..200u64).map(|i| i % 2 == 0 && i % 7 != 3).collect();
    assert_eq!(
        atonomi_runtime::verify_signatures_except(&many, &flags),
        (0..200u64).map(|i| i % 7 != 3).collect::<Vec<_>>()
    );
}

/// Issue 24, item 1: a validator removed from the set may still record its signature
/// of the checkpoints its set voted on (the rotation checkpoint among them), for
/// `RETIRED_SIGNING_WINDOW` heights; not of later heights, and not after the window.
#[test]
fn a_removed_validator_signs_the_checkpoints_of_its_set_only() {
    let mut c = Chain::dev();
    let (vkey, v) = second_validator();
    c.govern(GovAction::AddValidator(v.clone()));
    let in_set = |c: &Chain| {
        c.get::<ValidatorSet>(StateKey::ValidatorSet)
            .unwrap()
            .get(&vkey.account())
            .is_some()
    };
    while !in_set(&c) {
        c.block(vec![]);
    }
    c.govern(GovAction::RemoveValidator {
        consensus_key: vkey.account(),
    });
    let pending: PendingValidatorSet = c.get(StateKey::PendingValidatorSet).unwrap();
    let removed_at = pending.effective_height.get();
    while c.height < removed_at {
        c.block(vec![]);
    }
    let set: ValidatorSet = c.get(StateKey::ValidatorSet).unwrap();
    assert!(set.get(&vkey.account()).is_none(), "removed");
    let retired: RetiredValidator = c.get(StateKey::RetiredValidator(vkey.account())).unwrap();
    assert_eq!(retired.last_height, Height::new(removed_at));
    let sign = |epoch: u64, height: u64| Call::SignCheckpoint {
        epoch,
        height: Height::new(height),
        block_hash: Hash([1; 32]),
        state_root: Hash([2; 32]),
        next_set_hash: Hash([3; 32]),
        signature: EthSignature([4; 65]),
    };
    // The rotation checkpoint (the last height its set voted on): recorded.
    c.ok(&vkey, sign(1, removed_at));
    // A height the new set voted on: not its to sign.
    let r = c.send(&vkey, sign(2, removed_at + 1));
    assert_eq!(r.status, TxStatus::Invalid(InvalidTx::NotCheckpointSigner));
    // Past the window, not even its own heights.
    while c.height <= removed_at + RETIRED_SIGNING_WINDOW {
        c.block(vec![]);
    }
    let r = c.send(&vkey, sign(3, removed_at));
    assert_eq!(r.status, TxStatus::Invalid(InvalidTx::NotCheckpointSigner));
    // Added back, it is a member again and its retirement is forgotten.
    c.govern(GovAction::AddValidator(v));
    while !in_set(&c) {
        c.block(vec![]);
    }
    assert!(c
        .get::<RetiredValidator>(StateKey::RetiredValidator(vkey.account()))
        .is_none());
}
