//! Manufacturers: device whitelists and the device lifecycle they control.

use crate::ctx::Ctx;
use crate::error::ExecResult;
use crate::state::StateReader;
use atonomi_primitives::event::Event;
use atonomi_primitives::state::{limits, Attributes, Device, DeviceStatus, Manufacturer, StateKey};
use atonomi_primitives::tx::DeviceRegistration;
use atonomi_primitives::{
    AccountId, Amount, CallError, DeviceId, ManufacturerId, Signature, Timestamp,
};
use std::collections::BTreeSet;

impl<R: StateReader + ?Sized> Ctx<'_, '_, R> {
    pub fn register_devices(
        &mut self,
        id: ManufacturerId,
        devices: Vec<DeviceRegistration>,
    ) -> ExecResult {
        let mut m = self.manufacturer_as_signer(id, true)?;
        if devices.is_empty() {
            return Err(CallError::EmptyBatch.into());
        }
        if devices.len() > self.params.max_batch as usize {
            return Err(CallError::BatchTooLarge.into());
        }
        let mut seen = BTreeSet::new();
        for d in &devices {
            if !seen.insert(d.device_id) {
                return Err(CallError::DuplicateInBatch.into());
            }
        }
        let fee = self.registration_fee(&m, devices.len())?;
        let n = devices.len() as u64;
        for reg in devices {
            self.insert_device(&m, reg)?;
        }
        self.collect_registration_fee(&mut m, fee)?;
        m.devices_registered = m
            .devices_registered
            .checked_add(n)
            .ok_or(CallError::Overflow)?;
        self.put_manufacturer(&m);
        Ok(())
    }

    fn registration_fee(&self, m: &Manufacturer, n: usize) -> ExecResult<Amount> {
        let per_device = m.registration_fee.unwrap_or(self.params.registration_fee);
        Ok(per_device
            .checked_mul(n as u128)
            .ok_or(CallError::Overflow)?)
    }

    /// The signer pays the registration fee into the manufacturer's own pool.
    fn collect_registration_fee(&mut self, m: &mut Manufacturer, fee: Amount) -> ExecResult {
        self.debit(self.signer, fee)?;
        m.pool = m.pool.checked_add(fee).ok_or(CallError::Overflow)?;
        Ok(())
    }

    /// Writes a new device in the Registered state. An id is registered once, ever:
    /// revoked devices keep their record, so their ids stay taken. The device key is
    /// not decoded here (point decompression was most of a registration's cost): a key
    /// that is not a valid ed25519 point is refused at activation, which checks the
    /// device's signature under it anyway, and such a device can do nothing before.
    fn insert_device(&mut self, m: &Manufacturer, reg: DeviceRegistration) -> ExecResult<Device> {
        if reg
            .protocols
            .iter()
            .any(|p| p.is_empty() || p.len() > limits::PROTOCOL)
        {
            return Err(CallError::InvalidMember.into());
        }
        if self
            .o
            .get_raw(&StateKey::Device(reg.device_id).to_bytes())?
            .is_some()
        {
            return Err(CallError::DeviceExists.into());
        }
        let d = Device {
            id: reg.device_id,
            manufacturer: m.id,
            public_key: reg.public_key,
            protocols: reg.protocols,
            metadata: reg.metadata,
            status: DeviceStatus::Registered,
            owner: None,
            wallet: None,
            attributes: Attributes::default(),
            registered_at: self.block.height,
            activated_at: None,
            window_start: Timestamp::new(0),
            window_spent: Amount::ZERO,
        };
        self.put_device(&d);
        self.emit(Event::DeviceRegistered {
            device: d.id,
            manufacturer: m.id,
        });
        Ok(d)
    }

    pub fn register_and_activate(
        &mut self,
        id: ManufacturerId,
        reg: DeviceRegistration,
        owner: AccountId,
        device_signature: Signature,
    ) -> ExecResult {
        let mut m = self.manufacturer_as_signer(id, true)?;
        let fee = self.registration_fee(&m, 1)?;
        let d = self.insert_device(&m, reg)?;
        self.collect_registration_fee(&mut m, fee)?;
        m.devices_registered = m
            .devices_registered
            .checked_add(1)
            .ok_or(CallError::Overflow)?;
        self.put_manufacturer(&m);
        // The device consents to this owner exactly as in a normal activation, and the
        // manufacturer (the signer) pays the activation fee.
        self.activate(d, owner, device_signature, self.signer)
    }

    fn device_as_manufacturer(&self, id: DeviceId) -> ExecResult<Device> {
        let d = self.device(id)?;
        let m = self.manufacturer_as_signer(d.manufacturer, false)?;
        if m.id != d.manufacturer {
            return Err(CallError::WrongManufacturer.into());
        }
        Ok(d)
    }

    fn set_device_status(&mut self, mut d: Device, status: DeviceStatus) -> ExecResult {
        d.status = status;
        self.put_device(&d);
        self.emit(Event::DeviceStatusChanged {
            device: d.id,
            status,
        });
        Ok(())
    }

    pub fn suspend_device(&mut self, id: DeviceId) -> ExecResult {
        let d = self.device_as_manufacturer(id)?;
        match d.status {
            DeviceStatus::Active => self.set_device_status(d, DeviceStatus::Suspended),
            DeviceStatus::Revoked => Err(CallError::DeviceRevoked.into()),
            _ => Err(CallError::InvalidStatusChange.into()),
        }
    }

    pub fn resume_device(&mut self, id: DeviceId) -> ExecResult {
        let d = self.device_as_manufacturer(id)?;
        match d.status {
            DeviceStatus::Suspended => self.set_device_status(d, DeviceStatus::Active),
            DeviceStatus::Revoked => Err(CallError::DeviceRevoked.into()),
            _ => Err(CallError::InvalidStatusChange.into()),
        }
    }

    pub fn revoke_device(&mut self, id: DeviceId) -> ExecResult {
        let d = self.device_as_manufacturer(id)?;
        if d.status == DeviceStatus::Revoked {
            return Err(CallError::DeviceRevoked.into());
        }
        self.set_device_status(d, DeviceStatus::Revoked)
    }
}
