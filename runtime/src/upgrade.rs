//! Software upgrades at a height. Governance schedules a plan (a name and a height);
//! at the start of that block a node whose binary implements the name runs its state
//! migration, inside the block's one write; a node whose binary does not stops with
//! [`Fatal::UpgradeRequired`] before executing anything of the block.
//!
//! To ship an upgrade: add its name to [`UPGRADES`] and its migration to `migrate`
//! (a test checks they match), then schedule it by governance.

use crate::ctx::{BlockContext, Ctx};
use crate::error::{fatal, ExecResult, Fatal};
use crate::overlay::Overlay;
use crate::state::StateReader;
use atonomi_primitives::event::Event;
use atonomi_primitives::gov::{UpgradePlan, UpgradeRecord, UpgradeStatus};
use atonomi_primitives::state::StateKey;
use atonomi_primitives::{CallError, Params};

pub use crate::known_upgrades::{KnownUpgrades, Upgrade, GENESIS_PROTOCOL_VERSION, UPGRADES};

/// The scheduled plan, when one is.
pub fn scheduled<R: StateReader + ?Sized>(state: &R) -> Result<Option<UpgradePlan>, Fatal> {
    Overlay::new(state)
        .get(&StateKey::ScheduledUpgrade)
        .map_err(fatal)
}

/// At the start of a block: runs the scheduled plan's migration when its height has
/// come, or stops when this binary does not implement it.
pub(crate) fn begin<R: StateReader + ?Sized>(
    o: &mut Overlay<R>,
    block: &BlockContext,
) -> Result<(), Fatal> {
    let Some(plan) = o
        .get::<UpgradePlan>(&StateKey::ScheduledUpgrade)
        .map_err(fatal)?
    else {
        return Ok(());
    };
    if plan.height > block.height {
        return Ok(());
    }
    if !block.upgrades.knows(&plan.name) {
        return Err(Fatal::UpgradeRequired {
            name: plan.name,
            height: plan.height,
            info: plan.info,
        });
    }
    migrate(&plan.name, o)?;
    o.delete(&StateKey::ScheduledUpgrade);
    o.put(
        &StateKey::Upgrade(plan.name.clone()),
        &UpgradeRecord {
            plan,
            status: UpgradeStatus::Applied { at: block.height },
        },
    );
    Ok(())
}

/// Each upgrade's state migration, by name.
fn migrate<R: StateReader + ?Sized>(name: &str, o: &mut Overlay<R>) -> Result<(), Fatal> {
    match name {
        "v2" => {
            o.put(&StateKey::ProtocolVersion, &2u32);
            Ok(())
        }
        _ => Err(Fatal::InvalidBlock(format!(
            "upgrade {name:?} is listed but has no migration"
        ))),
    }
}

impl<R: StateReader + ?Sized> Ctx<'_, '_, R> {
    pub(crate) fn schedule_upgrade(&mut self, plan: UpgradePlan) -> ExecResult {
        if !UpgradePlan::valid_name(&plan.name) {
            return Err(CallError::InvalidUpgrade.into());
        }
        // The parameters in state: an earlier transaction of this block may have
        // changed them.
        let params: Params = self.o.get(&StateKey::Params)?.unwrap_or_default();
        let earliest = self
            .block
            .height
            .get()
            .saturating_add(params.upgrade_min_delay);
        if plan.height.get() < earliest {
            return Err(CallError::UpgradeTooSoon.into());
        }
        let key = StateKey::Upgrade(plan.name.clone());
        if self.o.get::<UpgradeRecord>(&key)?.is_some() {
            return Err(CallError::UpgradeNameUsed.into());
        }
        if self
            .o
            .get::<UpgradePlan>(&StateKey::ScheduledUpgrade)?
            .is_some()
        {
            return Err(CallError::UpgradeScheduled.into());
        }
        self.o.put(&StateKey::ScheduledUpgrade, &plan);
        self.o.put(
            &key,
            &UpgradeRecord {
                plan: plan.clone(),
                status: UpgradeStatus::Scheduled,
            },
        );
        self.emit(Event::UpgradeScheduled {
            name: plan.name,
            height: plan.height,
        });
        Ok(())
    }

    pub(crate) fn cancel_upgrade(&mut self, name: String) -> ExecResult {
        let plan = self
            .o
            .get::<UpgradePlan>(&StateKey::ScheduledUpgrade)?
            .filter(|p| p.name == name)
            .ok_or(CallError::UpgradeNotScheduled)?;
        self.o.delete(&StateKey::ScheduledUpgrade);
        self.o.put(
            &StateKey::Upgrade(name.clone()),
            &UpgradeRecord {
                plan,
                status: UpgradeStatus::Cancelled {
                    at: self.block.height,
                },
            },
        );
        self.emit(Event::UpgradeCancelled { name });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::MemoryState;

    #[test]
    fn every_listed_upgrade_has_a_migration() {
        let state = MemoryState::default();
        for u in UPGRADES {
            let mut o = Overlay::new(&state);
            migrate(u.name, &mut o).unwrap();
            assert!(!o.into_diff().is_empty(), "{} changes nothing", u.name);
        }
        assert!(UPGRADES.len() <= 64, "KnownUpgrades holds 64 bits");
    }

    #[test]
    fn known_upgrades_narrow_by_name() {
        assert!(KnownUpgrades::ALL.knows("v2"));
        assert!(!KnownUpgrades::NONE.knows("v2"));
        assert!(!KnownUpgrades::ALL.knows("v99"));
        assert_eq!(KnownUpgrades::only(["v2"]).unwrap().names(), ["v2"]);
        assert!(KnownUpgrades::only(["v99"]).is_err());
        assert!(KnownUpgrades::only([]).unwrap().names().is_empty());
    }
}
