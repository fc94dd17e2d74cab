//! Upgrades at a height: scheduling rules, the migration inside the block of the
//! height, and the stop of a binary that does not implement the plan.

use crate::fixture::*;
use atonomi_primitives::event::Event;
use atonomi_primitives::gov::{GovAction, UpgradePlan, UpgradeRecord, UpgradeStatus};
use atonomi_primitives::state::StateKey;
use atonomi_primitives::{CallError as E, Height, ParamChange};
use atonomi_runtime::upgrade::KnownUpgrades;
use atonomi_runtime::{execute_block, Fatal, SigCheck};

fn plan(name: &str, height: u64) -> UpgradePlan {
    UpgradePlan {
        name: name.into(),
        height: Height::new(height),
        info: "atonomi 0.2.0".into(),
    }
}

/// A chain where upgrades may be scheduled 5 blocks ahead.
fn chain() -> Chain {
    let mut c = Chain::dev();
    c.govern(GovAction::UpdateParams(vec![
        ParamChange::upgrade_min_delay(5),
    ]));
    c
}

fn version(c: &Chain) -> Option<u32> {
    c.get(StateKey::ProtocolVersion)
}

#[test]
fn scheduling_is_refused_too_soon_twice_or_under_a_bad_name() {
    let mut c = chain();
    // The proposal executes in block h = c.height + 1: h + 5 is the earliest.
    let earliest = c.height + 1 + 5;
    c.govern_fails(
        GovAction::ScheduleUpgrade(plan("v2", earliest - 1)),
        E::UpgradeTooSoon,
    );
    for bad in ["", "V2", "v2 beta"] {
        c.govern_fails(
            GovAction::ScheduleUpgrade(plan(bad, 1_000)),
            E::InvalidUpgrade,
        );
    }
    let earliest = c.height + 1 + 5;
    let r = c.govern(GovAction::ScheduleUpgrade(plan("v2", earliest)));
    assert!(r.events.iter().any(
        |e| matches!(e, Event::UpgradeScheduled { name, height } if name == "v2" && height.get() == earliest)
    ));
    assert_eq!(
        c.get::<UpgradePlan>(StateKey::ScheduledUpgrade),
        Some(plan("v2", earliest))
    );
    c.govern_fails(
        GovAction::ScheduleUpgrade(plan("v3", 1_000)),
        E::UpgradeScheduled,
    );
    c.govern_fails(
        GovAction::CancelUpgrade { name: "v3".into() },
        E::UpgradeNotScheduled,
    );
    // Cancelled: the name stays used, another may be scheduled.
    c.govern(GovAction::CancelUpgrade { name: "v2".into() });
    assert_eq!(c.get::<UpgradePlan>(StateKey::ScheduledUpgrade), None);
    let record: UpgradeRecord = c.get(StateKey::Upgrade("v2".into())).unwrap();
    assert!(matches!(record.status, UpgradeStatus::Cancelled { .. }));
    c.govern_fails(
        GovAction::ScheduleUpgrade(plan("v2", 1_000)),
        E::UpgradeNameUsed,
    );
    c.govern(GovAction::ScheduleUpgrade(plan("v3", 1_000)));
}

#[test]
fn the_migration_runs_in_the_block_of_the_height_and_not_before() {
    let mut c = chain();
    let at = c.height + 1 + 5;
    c.govern(GovAction::ScheduleUpgrade(plan("v2", at)));
    while c.height + 1 < at {
        c.block(vec![]);
        assert_eq!(version(&c), None, "applied early, at {}", c.height);
    }
    c.block(vec![]);
    assert_eq!(c.height, at);
    assert_eq!(version(&c), Some(2));
    assert_eq!(c.get::<UpgradePlan>(StateKey::ScheduledUpgrade), None);
    let record: UpgradeRecord = c.get(StateKey::Upgrade("v2".into())).unwrap();
    assert_eq!(
        record.status,
        UpgradeStatus::Applied {
            at: Height::new(at)
        }
    );
    // Once: later blocks leave it.
    c.block(vec![]);
    assert_eq!(version(&c), Some(2));
}

#[test]
fn a_binary_without_the_plan_stops_before_the_block_and_a_cancelled_plan_stops_nobody() {
    let mut c = chain();
    let at = c.height + 1 + 5;
    c.govern(GovAction::ScheduleUpgrade(plan("v2", at)));
    while c.height + 1 < at {
        c.block(vec![]);
    }
    let mut old = c.ctx();
    old.upgrades = KnownUpgrades::NONE;
    assert_eq!(
        execute_block(&c.state, &old, &[], SigCheck::Verify),
        Err(Fatal::UpgradeRequired {
            name: "v2".into(),
            height: Height::new(at),
            info: "atonomi 0.2.0".into()
        })
    );
    // Blocks before the height run the same on the old binary.
    let mut early = chain();
    let at = early.height + 1 + 5;
    early.govern(GovAction::ScheduleUpgrade(plan("v2", at)));
    let mut ctx = early.ctx();
    ctx.upgrades = KnownUpgrades::NONE;
    assert!(execute_block(&early.state, &ctx, &[], SigCheck::Verify).is_ok());
    // Cancelled before its height: the old binary passes it.
    early.govern(GovAction::CancelUpgrade { name: "v2".into() });
    while early.height < at + 1 {
        let mut ctx = early.ctx();
        ctx.upgrades = KnownUpgrades::NONE;
        let out = execute_block(&early.state, &ctx, &[], SigCheck::Verify).unwrap();
        early.state.apply(&out.diff);
        early.height += 1;
        early.time_ms += 1_000;
    }
    assert_eq!(version(&early), None);
}
