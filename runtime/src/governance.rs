//! k-of-n governance: admins propose and approve actions; the approval that reaches
//! the threshold executes the action. No single key can move anyone else's funds.

use crate::ctx::Ctx;
use crate::error::{ExecError, ExecResult, Fatal};
use crate::state::StateReader;
use atonomi_primitives::event::Event;
use atonomi_primitives::gov::{
    GovAction, Governance, MemberChange, NewAuditor, NewManufacturer, Proposal, ProposalStatus,
};
use atonomi_primitives::state::{
    limits, valid_member, Auditor, Manufacturer, MemberStatus, PendingValidatorSet, StateKey,
    ValidatorSet, VALIDATOR_SET_DELAY,
};
use atonomi_primitives::{
    AccountId, AuditorId, CallError, Height, ManufacturerId, Params, ProposalId,
};
use std::collections::BTreeSet;

impl<R: StateReader + ?Sized> Ctx<'_, '_, R> {
    fn governance(&self) -> ExecResult<Governance> {
        self.o.get(&StateKey::Governance)?.ok_or_else(|| {
            ExecError::Fatal(Fatal::InvalidBlock("governance record missing".into()))
        })
    }

    fn require_admin(&self) -> ExecResult<Governance> {
        let g = self.governance()?;
        if g.admins.contains(&self.signer) {
            Ok(g)
        } else {
            Err(CallError::NotAdmin.into())
        }
    }

    pub fn propose(&mut self, action: GovAction) -> ExecResult {
        let mut g = self.require_admin()?;
        let id = g.next_proposal;
        g.next_proposal = ProposalId::new(id.get() + 1);
        self.o.put(&StateKey::Governance, &g);
        let proposal = Proposal {
            id,
            proposer: self.signer,
            action: action.clone(),
            approvals: vec![self.signer],
            status: ProposalStatus::Pending,
            created: self.block.height,
        };
        self.emit(Event::ProposalCreated {
            id,
            proposer: self.signer,
            action,
        });
        self.emit(Event::ProposalApproved {
            id,
            admin: self.signer,
            approvals: 1,
        });
        self.maybe_execute(proposal, &g)
    }

    pub fn approve_proposal(&mut self, id: ProposalId) -> ExecResult {
        let g = self.require_admin()?;
        let mut p: Proposal = self
            .o
            .get(&StateKey::Proposal(id))?
            .ok_or(CallError::ProposalNotFound)?;
        if p.status != ProposalStatus::Pending {
            return Err(CallError::ProposalNotPending.into());
        }
        if p.approvals.contains(&self.signer) {
            return Err(CallError::AlreadyApproved.into());
        }
        p.approvals.push(self.signer);
        let count = current_approvals(&p, &g);
        self.emit(Event::ProposalApproved {
            id,
            admin: self.signer,
            approvals: count,
        });
        self.maybe_execute(p, &g)
    }

    /// Stores the proposal, executing its action first if enough current admins
    /// approved. A failing action marks the proposal Failed; the approval stands.
    fn maybe_execute(&mut self, mut p: Proposal, g: &Governance) -> ExecResult {
        if current_approvals(&p, g) >= g.threshold {
            self.o.push();
            match self.execute_action(p.action.clone()) {
                Ok(()) => {
                    self.o.commit();
                    p.status = ProposalStatus::Executed;
                    self.emit(Event::ProposalExecuted { id: p.id });
                }
                Err(ExecError::Call(e)) => {
                    self.o.discard();
                    p.status = ProposalStatus::Failed(e.code());
                    self.emit(Event::ProposalFailed { id: p.id, error: e });
                }
                Err(fatal) => return Err(fatal),
            }
        }
        self.o.put(&StateKey::Proposal(p.id), &p);
        Ok(())
    }

    fn execute_action(&mut self, action: GovAction) -> ExecResult {
        match action {
            GovAction::AddManufacturer(m) => self.add_manufacturer(m),
            GovAction::ChangeManufacturer { id, change } => self.change_manufacturer(id, change),
            GovAction::AddAuditor(a) => self.add_auditor(a),
            GovAction::ChangeAuditor { id, change } => self.change_auditor(id, change),
            GovAction::AddValidator(v) => self.change_validators(|set| {
                if set.get(&v.consensus_key).is_some() {
                    return Err(CallError::ValidatorExists);
                }
                set.validators.push(v);
                Ok(())
            }),
            GovAction::RemoveValidator { consensus_key } => self.change_validators(|set| {
                let before = set.validators.len();
                set.validators.retain(|v| v.consensus_key != consensus_key);
                if set.validators.len() == before {
                    return Err(CallError::ValidatorNotFound);
                }
                Ok(())
            }),
            GovAction::SetValidatorPower {
                consensus_key,
                power,
            } => self.change_validators(|set| {
                let v = set
                    .validators
                    .iter_mut()
                    .find(|v| v.consensus_key == consensus_key)
                    .ok_or(CallError::ValidatorNotFound)?;
                v.power = power;
                Ok(())
            }),
            GovAction::SetParams(params) => self.set_params(params),
            GovAction::UpdateParams(changes) => {
                let names: BTreeSet<_> = changes.iter().map(|c| c.name()).collect();
                if changes.is_empty() || names.len() != changes.len() {
                    return Err(CallError::InvalidParams.into());
                }
                // The parameters in state, not self.params: an earlier transaction of
                // this block may have changed them.
                let mut params: Params = self.o.get(&StateKey::Params)?.unwrap_or_default();
                for change in changes {
                    params.apply(change);
                }
                self.set_params(params)
            }
            GovAction::TreasuryPayout { from, to, amount } => {
                if amount.is_zero() {
                    return Err(CallError::ZeroAmount.into());
                }
                let from = from.account();
                self.move_tokens(from, to, amount)?;
                self.emit(Event::TreasuryPaid { from, to, amount });
                Ok(())
            }
            GovAction::SetAdmins { admins, threshold } => {
                let unique: BTreeSet<_> = admins.iter().collect();
                if admins.is_empty() || unique.len() != admins.len() {
                    return Err(CallError::InvalidMember.into());
                }
                if threshold == 0 || threshold as usize > admins.len() {
                    return Err(CallError::InvalidThreshold.into());
                }
                let mut g = self.governance()?;
                g.admins = admins;
                g.threshold = threshold;
                self.o.put(&StateKey::Governance, &g);
                self.emit(Event::AdminsChanged { threshold });
                Ok(())
            }
            GovAction::ScheduleUpgrade(plan) => self.schedule_upgrade(plan),
            GovAction::CancelUpgrade { name } => self.cancel_upgrade(name),
            GovAction::SetNodePeer { peer_id, allowed } => {
                if peer_id.is_empty() {
                    return Err(CallError::InvalidMember.into());
                }
                let key = StateKey::NodePeer(peer_id.clone());
                if allowed {
                    self.o.put(&key, &());
                } else {
                    self.o.delete(&key);
                }
                self.emit(Event::NodePeerChanged { peer_id, allowed });
                Ok(())
            }
        }
    }

    /// New network parameters, if they validate.
    fn set_params(&mut self, params: Params) -> ExecResult {
        params.validate().map_err(|_| CallError::InvalidParams)?;
        self.o.put(&StateKey::Params, &params);
        self.emit(Event::ParamsChanged);
        Ok(())
    }

    fn add_manufacturer(&mut self, n: NewManufacturer) -> ExecResult {
        check_member(&n.name, &n.keys, &n.metadata)?;
        if self
            .o
            .get::<Manufacturer>(&StateKey::Manufacturer(n.id))?
            .is_some()
        {
            return Err(CallError::ManufacturerExists.into());
        }
        let m = Manufacturer {
            id: n.id,
            name: n.name,
            keys: n.keys,
            status: MemberStatus::Active,
            registration_fee: n.registration_fee,
            default_score: n.default_score,
            reward_wallet: n.reward_wallet,
            pool: atonomi_primitives::Amount::ZERO,
            devices_registered: 0,
            metadata: n.metadata,
        };
        self.put_manufacturer(&m);
        self.emit(Event::ManufacturerAdded { id: m.id });
        Ok(())
    }

    fn change_manufacturer(&mut self, id: ManufacturerId, change: MemberChange) -> ExecResult {
        let mut m = self.manufacturer(id)?;
        m.status = change
            .apply(m.status)
            .ok_or(CallError::InvalidStatusChange)?;
        if m.status == MemberStatus::Removed && !m.pool.is_zero() {
            // Removal settles the pool to the manufacturer's reward wallet instead of
            // stranding it (weakness 6 of the original contracts).
            let amount = m.pool;
            m.pool = atonomi_primitives::Amount::ZERO;
            self.credit(m.reward_wallet, amount)?;
            self.emit(Event::PoolSettled {
                manufacturer: id,
                to: m.reward_wallet,
                amount,
            });
        }
        self.put_manufacturer(&m);
        self.emit(Event::ManufacturerStatusChanged {
            id,
            status: m.status,
        });
        Ok(())
    }

    fn add_auditor(&mut self, n: NewAuditor) -> ExecResult {
        check_member(&n.name, &n.keys, &n.metadata)?;
        if self.o.get::<Auditor>(&StateKey::Auditor(n.id))?.is_some() {
            return Err(CallError::AuditorExists.into());
        }
        let a = Auditor {
            id: n.id,
            name: n.name,
            keys: n.keys,
            status: MemberStatus::Active,
            reward_account: n.reward_account,
            metadata: n.metadata,
        };
        self.o.put(&StateKey::Auditor(a.id), &a);
        self.emit(Event::AuditorAdded { id: a.id });
        Ok(())
    }

    fn change_auditor(&mut self, id: AuditorId, change: MemberChange) -> ExecResult {
        let mut a = self.auditor(id)?;
        a.status = change
            .apply(a.status)
            .ok_or(CallError::InvalidStatusChange)?;
        self.o.put(&StateKey::Auditor(id), &a);
        self.emit(Event::AuditorStatusChanged {
            id,
            status: a.status,
        });
        Ok(())
    }

    /// Applies `f` to the next validator set (the pending one if a change is already
    /// scheduled) and schedules the result `VALIDATOR_SET_DELAY` blocks ahead.
    pub(crate) fn change_validators(
        &mut self,
        f: impl FnOnce(&mut ValidatorSet) -> Result<(), CallError>,
    ) -> ExecResult {
        let pending: Option<PendingValidatorSet> = self.o.get(&StateKey::PendingValidatorSet)?;
        let mut set = match pending {
            Some(p) => p.set,
            None => self.o.get(&StateKey::ValidatorSet)?.unwrap_or_default(),
        };
        f(&mut set)?;
        set.validators.sort_by_key(|v| v.consensus_key);
        validate_set(&set)?;
        let effective_height = Height::new(self.block.height.get() + VALIDATOR_SET_DELAY);
        let hash = set.hash();
        self.o.put(
            &StateKey::PendingValidatorSet,
            &PendingValidatorSet {
                effective_height,
                set,
            },
        );
        self.emit(Event::ValidatorSetChanged {
            effective_height,
            validator_set_hash: hash,
        });
        Ok(())
    }
}

/// Approvals that count: those of admins who are still admins.
fn current_approvals(p: &Proposal, g: &Governance) -> u32 {
    let n = p.approvals.iter().filter(|a| g.admins.contains(a)).count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn check_member(name: &str, keys: &[AccountId], metadata: &[u8]) -> Result<(), CallError> {
    if valid_member(name, keys, metadata) {
        Ok(())
    } else {
        Err(CallError::InvalidMember)
    }
}

/// A usable validator set: 1..=256 validators, each with power, keys valid ed25519,
/// and total power that fits comfortably in consensus arithmetic.
pub(crate) fn validate_set(set: &ValidatorSet) -> Result<(), CallError> {
    if set.validators.is_empty() || set.validators.len() > limits::VALIDATORS {
        return Err(CallError::InvalidValidatorSet);
    }
    for v in &set.validators {
        if v.power == 0 || atonomi_primitives::PublicKey::from_account(&v.consensus_key).is_err() {
            return Err(CallError::InvalidValidatorSet);
        }
    }
    if set.total_power() > u128::from(u64::MAX / 4) {
        return Err(CallError::InvalidValidatorSet);
    }
    // One bridge key counts once on Ethereum: a shared address would let one key's
    // signature carry several validators' power. (Zero means no bridge key.)
    let mut seen = std::collections::BTreeSet::new();
    for v in &set.validators {
        if v.bridge_address != [0u8; 20] && !seen.insert(v.bridge_address) {
            return Err(CallError::DuplicateBridgeAddress);
        }
    }
    Ok(())
}
