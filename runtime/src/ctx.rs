//! Execution context of one call and the helpers every module shares.

use crate::error::{ExecError, ExecResult};
use crate::overlay::Overlay;
use crate::state::StateReader;
use atonomi_primitives::event::Event;
use atonomi_primitives::state::{
    Account, Auditor, Device, DeviceStatus, Manufacturer, MemberStatus, StateKey,
};
use atonomi_primitives::tx::Call;
use atonomi_primitives::{
    AccountId, Amount, AuditorId, CallError, ChainId, DeviceId, Height, ManufacturerId, Params,
    Timestamp,
};

/// What the block gives every call: agreed by consensus, never read from a clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockContext {
    pub chain_id: ChainId,
    pub height: Height,
    pub timestamp: Timestamp,
    /// The upgrades this node's binary implements (see [`crate::upgrade`]): not
    /// consensus data, but a node that lacks the scheduled one stops at its height.
    pub upgrades: crate::known_upgrades::KnownUpgrades,
}

pub(crate) struct Ctx<'a, 'r, R: StateReader + ?Sized> {
    pub o: &'a mut Overlay<'r, R>,
    pub block: &'a BlockContext,
    pub params: Params,
    pub signer: AccountId,
    pub events: Vec<Event>,
}

impl<R: StateReader + ?Sized> Ctx<'_, '_, R> {
    pub fn dispatch(&mut self, call: Call) -> ExecResult {
        match call {
            Call::Transfer { to, amount } => self.transfer(to, amount),
            Call::Approve { spender, amount } => self.approve(spender, amount),
            Call::TransferFrom { from, to, amount } => self.transfer_from(from, to, amount),
            Call::Burn { amount } => self.burn(amount),
            Call::DepositToPool {
                manufacturer,
                amount,
            } => self.deposit_to_pool(manufacturer, amount),
            Call::Propose { action } => self.propose(action),
            Call::ApproveProposal { id } => self.approve_proposal(id),
            Call::RegisterDevices {
                manufacturer,
                devices,
            } => self.register_devices(manufacturer, devices),
            Call::RegisterAndActivate {
                manufacturer,
                device,
                owner,
                device_signature,
            } => self.register_and_activate(manufacturer, device, owner, device_signature),
            Call::SuspendDevice { device } => self.suspend_device(device),
            Call::ResumeDevice { device } => self.resume_device(device),
            Call::RevokeDevice { device } => self.revoke_device(device),
            Call::ActivateDevice {
                device,
                device_signature,
            } => self.activate_device(device, device_signature),
            Call::TransferDevice {
                device,
                to,
                with_wallet,
            } => self.transfer_device(device, to, with_wallet),
            Call::SetAttributes { device, attributes } => self.set_attributes(device, attributes),
            Call::SetWallet { device, wallet } => self.set_wallet(device, wallet),
            Call::RegisterService {
                device,
                service_type,
                price,
                unit,
                area,
                metadata,
                expiry,
            } => self.register_service(device, service_type, price, unit, area, metadata, expiry),
            Call::WithdrawService {
                device,
                service_type,
            } => self.withdraw_service(device, service_type),
            Call::WriteReputation { auditor, entries } => self.write_reputation(auditor, entries),
            Call::Pay {
                from_device,
                to_device,
                amount,
                memo,
            } => self.pay(from_device, to_device, amount, memo),
            Call::AnchorLog {
                device,
                hash,
                kind,
                parties,
            } => self.anchor_log(device, hash, kind, parties),
            Call::ReportInteraction {
                device,
                peer,
                outcome,
                receipt,
            } => self.report_interaction(device, peer, outcome, receipt),
            Call::RotateConsensusKey {
                validator,
                new_key,
                height,
                proof,
            } => self.rotate_consensus_key(validator, new_key, height, proof),
            Call::SignCheckpoint {
                epoch,
                height,
                block_hash,
                state_root,
                next_set_hash,
                signature,
            } => self.sign_checkpoint(
                epoch,
                atonomi_primitives::state::CheckpointSignature {
                    height,
                    block_hash,
                    state_root,
                    next_set_hash,
                    signature,
                },
            ),
        }
    }

    pub fn emit(&mut self, e: Event) {
        self.events.push(e);
    }

    // ---- accounts ----

    pub fn account(&self, a: AccountId) -> ExecResult<Account> {
        Ok(self.o.get(&StateKey::Account(a))?.unwrap_or_default())
    }

    pub fn credit(&mut self, a: AccountId, amount: Amount) -> ExecResult {
        if amount.is_zero() {
            return Ok(());
        }
        let mut acct = self.account(a)?;
        acct.balance = acct
            .balance
            .checked_add(amount)
            .ok_or(CallError::Overflow)?;
        self.o.put(&StateKey::Account(a), &acct);
        Ok(())
    }

    pub fn debit(&mut self, a: AccountId, amount: Amount) -> ExecResult {
        if amount.is_zero() {
            return Ok(());
        }
        let mut acct = self.account(a)?;
        acct.balance = acct
            .balance
            .checked_sub(amount)
            .ok_or(CallError::InsufficientBalance)?;
        self.o.put(&StateKey::Account(a), &acct);
        Ok(())
    }

    /// Moves tokens between accounts (debit first: a failed debit writes nothing).
    pub fn move_tokens(&mut self, from: AccountId, to: AccountId, amount: Amount) -> ExecResult {
        self.debit(from, amount)?;
        self.credit(to, amount)
    }

    // ---- members ----

    pub fn manufacturer(&self, id: ManufacturerId) -> ExecResult<Manufacturer> {
        self.o
            .get(&StateKey::Manufacturer(id))?
            .ok_or(ExecError::Call(CallError::ManufacturerNotFound))
    }

    pub fn put_manufacturer(&mut self, m: &Manufacturer) {
        self.o.put(&StateKey::Manufacturer(m.id), m);
    }

    /// The manufacturer, checked: the signer is one of its keys and it is not removed;
    /// with `need_active`, also not suspended.
    pub fn manufacturer_as_signer(
        &self,
        id: ManufacturerId,
        need_active: bool,
    ) -> ExecResult<Manufacturer> {
        let m = self.manufacturer(id)?;
        if !m.keys.contains(&self.signer) {
            return Err(CallError::NotManufacturerKey.into());
        }
        match m.status {
            MemberStatus::Active => Ok(m),
            MemberStatus::Suspended if !need_active => Ok(m),
            _ => Err(CallError::ManufacturerNotActive.into()),
        }
    }

    pub fn auditor(&self, id: AuditorId) -> ExecResult<Auditor> {
        self.o
            .get(&StateKey::Auditor(id))?
            .ok_or(ExecError::Call(CallError::AuditorNotFound))
    }

    // ---- devices ----

    pub fn device(&self, id: DeviceId) -> ExecResult<Device> {
        self.o
            .get(&StateKey::Device(id))?
            .ok_or(ExecError::Call(CallError::DeviceNotFound))
    }

    pub fn put_device(&mut self, d: &Device) {
        self.o.put(&StateKey::Device(d.id), d);
    }

    /// The device, checked: the signer owns it and it is not revoked.
    pub fn device_as_owner(&self, id: DeviceId) -> ExecResult<Device> {
        let d = self.device(id)?;
        if d.owner != Some(self.signer) {
            return Err(CallError::NotOwner.into());
        }
        if d.status == DeviceStatus::Revoked {
            return Err(CallError::DeviceRevoked.into());
        }
        Ok(d)
    }

    /// The device, checked: the signer is the device key and the device is active.
    pub fn device_as_itself(&self, id: DeviceId) -> ExecResult<Device> {
        let d = self.device(id)?;
        if d.public_key != self.signer {
            return Err(CallError::NotDeviceKey.into());
        }
        require_active(&d)?;
        Ok(d)
    }
}

/// A device that can transact: active (suspended, revoked and not-yet-activated
/// devices each get their own error).
pub(crate) fn require_active(d: &Device) -> Result<(), CallError> {
    match d.status {
        DeviceStatus::Active => Ok(()),
        DeviceStatus::Suspended => Err(CallError::DeviceSuspended),
        DeviceStatus::Revoked => Err(CallError::DeviceRevoked),
        DeviceStatus::Registered => Err(CallError::DeviceNotActive),
    }
}

/// A text field within bounds (non-empty, at most `max` bytes).
pub(crate) fn check_text(s: &str, max: usize, err: CallError) -> Result<(), CallError> {
    if s.is_empty() || s.len() > max {
        Err(err)
    } else {
        Ok(())
    }
}
