//! The authorization matrix: every role × every call; only the allowed roles succeed.

use crate::fixture::*;
use atonomi_primitives::event::TxStatus;
use atonomi_primitives::gov::GovAction;
use atonomi_primitives::state::{Attributes, Direction, Subject};
use atonomi_primitives::tx::{Call, Outcome, ReputationWrite};
use atonomi_primitives::{Hash, Height, Keypair, ProposalId};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Admin,
    Manufacturer,
    Auditor,
    Owner,
    Device,
    Stranger,
}

const ROLES: [Role; 6] = [
    Role::Admin,
    Role::Manufacturer,
    Role::Auditor,
    Role::Owner,
    Role::Device,
    Role::Stranger,
];

struct World {
    chain: Chain,
    a: Actors,
    admin2: Keypair,
    device: TestDevice,
    suspended: TestDevice,
    peer: TestDevice,
}

impl World {
    fn key(&self, r: Role) -> &Keypair {
        match r {
            Role::Admin => &self.a.admin,
            Role::Manufacturer => &self.a.maker,
            Role::Auditor => &self.a.auditor,
            Role::Owner => &self.a.alice,
            Role::Device => &self.device.key,
            Role::Stranger => &self.a.stranger,
        }
    }
}

fn world() -> World {
    let mut c = Chain::dev();
    let a = Actors::new();
    let device = TestDevice::new("m-device");
    let suspended = TestDevice::new("m-suspended");
    let peer = TestDevice::new("m-peer");
    registered_active(&mut c, &a, &device, &a.alice);
    registered_active(&mut c, &a, &suspended, &a.alice);
    registered_active(&mut c, &a, &peer, &a.bob);
    c.ok(
        &a.maker,
        Call::SuspendDevice {
            device: suspended.id,
        },
    );
    c.ok(
        &a.alice,
        Call::RegisterService {
            device: device.id,
            service_type: "energy".into(),
            price: atmi(1),
            unit: "kwh".into(),
            area: None,
            metadata: vec![],
            expiry: Height::new(10_000),
        },
    );
    // Everyone can pay for token calls and fees.
    for k in [&a.stranger, &device.key, &a.auditor] {
        c.ok(
            &a.admin,
            Call::Transfer {
                to: k.account(),
                amount: atmi(1_000),
            },
        );
    }
    c.ok(
        &a.alice,
        Call::Approve {
            spender: a.stranger.account(),
            amount: atmi(10),
        },
    );
    // Two admins, threshold 2, one pending proposal opened by the second admin.
    let admin2 = Keypair::from_label("matrix admin2");
    c.govern(GovAction::SetAdmins {
        admins: vec![a.admin.account(), admin2.account()],
        threshold: 2,
    });
    c.ok(
        &admin2,
        Call::Propose {
            action: GovAction::SetNodePeer {
                peer_id: vec![7],
                allowed: true,
            },
        },
    );
    World {
        chain: c,
        a,
        admin2,
        device,
        suspended,
        peer,
    }
}

#[test]
fn only_allowed_roles_succeed() {
    use Role::*;
    let w = world();
    let fresh = TestDevice::new("m-fresh");
    let preowned = TestDevice::new("m-preowned");
    let alice = w.a.alice.account();
    let rep = ReputationWrite {
        subject: Subject::Device(w.device.id),
        rep_type: "trust".into(),
        score: score(6_000),
        direction: Direction::Up,
    };
    let cases: Vec<(Call, &[Role])> = vec![
        (
            Call::Transfer {
                to: w.a.bob.account(),
                amount: atmi(1),
            },
            &ROLES,
        ),
        (
            Call::Approve {
                spender: w.a.bob.account(),
                amount: atmi(1),
            },
            &ROLES,
        ),
        (Call::Burn { amount: atmi(1) }, &ROLES),
        (
            Call::DepositToPool {
                manufacturer: M,
                amount: atmi(1),
            },
            &ROLES,
        ),
        (
            Call::TransferFrom {
                from: alice,
                to: w.a.bob.account(),
                amount: atmi(1),
            },
            &[Stranger],
        ),
        (
            Call::Propose {
                action: GovAction::SetNodePeer {
                    peer_id: vec![9],
                    allowed: true,
                },
            },
            &[Admin],
        ),
        (
            Call::ApproveProposal {
                id: ProposalId::new(2),
            },
            &[Admin],
        ),
        (
            Call::RegisterDevices {
                manufacturer: M,
                devices: vec![fresh.registration()],
            },
            &[Manufacturer],
        ),
        (
            Call::RegisterAndActivate {
                manufacturer: M,
                device: preowned.registration(),
                owner: alice,
                device_signature: preowned.consent(&w.chain, alice),
            },
            &[Manufacturer],
        ),
        (
            Call::SuspendDevice {
                device: w.device.id,
            },
            &[Manufacturer],
        ),
        (
            Call::ResumeDevice {
                device: w.suspended.id,
            },
            &[Manufacturer],
        ),
        (
            Call::RevokeDevice {
                device: w.device.id,
            },
            &[Manufacturer],
        ),
        (
            Call::TransferDevice {
                device: w.device.id,
                to: w.a.bob.account(),
                with_wallet: false,
            },
            &[Owner],
        ),
        (
            Call::SetAttributes {
                device: w.device.id,
                attributes: Attributes::default(),
            },
            &[Owner],
        ),
        (
            Call::SetWallet {
                device: w.device.id,
                wallet: None,
            },
            &[Owner],
        ),
        (
            Call::RegisterService {
                device: w.device.id,
                service_type: "data".into(),
                price: atmi(1),
                unit: "mb".into(),
                area: None,
                metadata: vec![],
                expiry: Height::new(10_000),
            },
            &[Owner],
        ),
        (
            Call::WithdrawService {
                device: w.device.id,
                service_type: "energy".into(),
            },
            &[Owner],
        ),
        (
            Call::WriteReputation {
                auditor: A,
                entries: vec![rep],
            },
            &[Auditor],
        ),
        (
            Call::Pay {
                from_device: w.device.id,
                to_device: w.peer.id,
                amount: atmi(1),
                memo: vec![],
            },
            &[Device],
        ),
        (
            Call::AnchorLog {
                device: w.device.id,
                hash: Hash::of(b"l"),
                kind: "log".into(),
                parties: vec![],
            },
            &[Device],
        ),
        (
            Call::ReportInteraction {
                device: w.device.id,
                peer: w.peer.id,
                outcome: Outcome::Success,
                receipt: Hash::ZERO,
            },
            &[Device],
        ),
    ];
    let mut checked = 0;
    for (call, allowed) in &cases {
        for role in ROLES {
            let mut c = w.chain.clone();
            let r = c.send(w.key(role), call.clone());
            let ok = r.status == TxStatus::Success;
            assert_eq!(
                ok,
                allowed.contains(&role),
                "{} by {role:?}: {:?}",
                call.name(),
                r.status
            );
            checked += 1;
        }
    }
    // Activation: only the owner the device consented to.
    let d = TestDevice::new("m-activate");
    let mut base = w.chain.clone();
    base.ok(
        &w.a.maker,
        Call::RegisterDevices {
            manufacturer: M,
            devices: vec![d.registration()],
        },
    );
    let sig = d.consent(&base, alice);
    for role in ROLES {
        let mut c = base.clone();
        let r = c.send(
            w.key(role),
            Call::ActivateDevice {
                device: d.id,
                device_signature: sig,
            },
        );
        assert_eq!(
            r.status == TxStatus::Success,
            role == Owner,
            "activate by {role:?}: {:?}",
            r.status
        );
        checked += 1;
    }
    // Every call variant appears in the matrix.
    assert_eq!(cases.len() + 1, 22);
    assert_eq!(checked, 22 * ROLES.len());
    let _ = &w.admin2;
}
