//! Device owners: activation with the device's consent, ownership transfer, policy
//! attributes, the payment wallet and service offers.

use crate::ctx::{check_text, require_active, Ctx};
use crate::error::ExecResult;
use crate::state::StateReader;
use atonomi_primitives::event::Event;
use atonomi_primitives::hash::domain;
use atonomi_primitives::state::{
    limits, Attributes, Device, DeviceStatus, GeoArea, MemberStatus, ServiceOffer, StateKey,
};
use atonomi_primitives::tx::activation_message;
use atonomi_primitives::{
    crypto, AccountId, Amount, CallError, DeviceId, Height, PublicKey, Signature,
};
use std::collections::BTreeSet;

impl<R: StateReader + ?Sized> Ctx<'_, '_, R> {
    pub fn activate_device(&mut self, id: DeviceId, device_signature: Signature) -> ExecResult {
        let d = self.device(id)?;
        self.activate(d, self.signer, device_signature, self.signer)
    }

    /// Activates `d` for `owner`, `payer` paying the activation fee. The device must
    /// have signed (chain id, device id, owner) with its registered key: knowing a
    /// device id is not enough to take the device (weaknesses 1 and 2 of the original
    /// contracts).
    pub(crate) fn activate(
        &mut self,
        mut d: Device,
        owner: AccountId,
        device_signature: Signature,
        payer: AccountId,
    ) -> ExecResult {
        match d.status {
            DeviceStatus::Registered => {}
            DeviceStatus::Revoked => return Err(CallError::DeviceRevoked.into()),
            _ => return Err(CallError::DeviceNotRegistered.into()),
        }
        let mut m = self.manufacturer(d.manufacturer)?;
        if m.status == MemberStatus::Removed {
            return Err(CallError::ManufacturerNotActive.into());
        }
        // Registration takes any 32 bytes as the key; a key that is no valid ed25519
        // point (or a weak one) stops here, with its own error.
        if PublicKey::from_account(&d.public_key).is_err() {
            return Err(CallError::InvalidDeviceKey.into());
        }
        let msg = activation_message(&self.block.chain_id, &d.id, &owner);
        crypto::verify(&d.public_key, domain::ACTIVATION, &msg, &device_signature)
            .map_err(|_| CallError::BadDeviceSignature)?;

        let fee = self.params.activation_fee;
        let to_treasury = fee
            .bps(self.params.activation_treasury_bps)
            .ok_or(CallError::Overflow)?;
        let to_pool = fee.checked_sub(to_treasury).ok_or(CallError::Overflow)?;
        self.debit(payer, fee)?;
        self.credit(AccountId::treasury(), to_treasury)?;
        m.pool = m.pool.checked_add(to_pool).ok_or(CallError::Overflow)?;
        self.put_manufacturer(&m);

        d.status = DeviceStatus::Active;
        d.owner = Some(owner);
        d.activated_at = Some(self.block.height);
        self.put_device(&d);
        self.emit(Event::DeviceActivated {
            device: d.id,
            owner,
        });
        Ok(())
    }

    pub fn transfer_device(
        &mut self,
        id: DeviceId,
        to: AccountId,
        with_wallet: bool,
    ) -> ExecResult {
        let mut d = self.device_as_owner(id)?;
        if to == self.signer {
            return Err(CallError::SelfTransfer.into());
        }
        d.owner = Some(to);
        if !with_wallet {
            d.wallet = None;
        }
        self.put_device(&d);
        self.emit(Event::DeviceTransferred {
            device: id,
            from: self.signer,
            to,
            with_wallet,
        });
        Ok(())
    }

    pub fn set_attributes(&mut self, id: DeviceId, attributes: Attributes) -> ExecResult {
        let mut d = self.device_as_owner(id)?;
        check_attributes(&attributes)?;
        // A new window limit starts a fresh window.
        if attributes.window_limit != d.attributes.window_limit {
            d.window_start = self.block.timestamp;
            d.window_spent = Amount::ZERO;
        }
        d.attributes = attributes;
        self.put_device(&d);
        self.emit(Event::AttributesSet { device: id });
        Ok(())
    }

    pub fn set_wallet(&mut self, id: DeviceId, wallet: Option<AccountId>) -> ExecResult {
        let mut d = self.device_as_owner(id)?;
        // Only the owner's own account: nobody can make a device spend someone else's
        // tokens.
        if wallet.is_some_and(|w| w != self.signer) {
            return Err(CallError::InvalidWallet.into());
        }
        d.wallet = wallet;
        self.put_device(&d);
        self.emit(Event::WalletSet { device: id, wallet });
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub fn register_service(
        &mut self,
        id: DeviceId,
        service_type: String,
        price: Amount,
        unit: String,
        area: Option<GeoArea>,
        metadata: Vec<u8>,
        expiry: Height,
    ) -> ExecResult {
        let d = self.device_as_owner(id)?;
        require_active(&d)?;
        check_text(&service_type, limits::TYPE_NAME, CallError::InvalidService)?;
        if expiry <= self.block.height || area.is_some_and(|a| !area_ok(&a)) {
            return Err(CallError::InvalidService.into());
        }
        let offer = ServiceOffer {
            device: id,
            service_type: service_type.clone(),
            price,
            unit,
            area,
            metadata,
            expiry,
        };
        self.o.put(
            &StateKey::Service {
                service_type: service_type.clone(),
                device: id,
            },
            &offer,
        );
        self.emit(Event::ServiceRegistered {
            device: id,
            service_type,
        });
        Ok(())
    }

    pub fn withdraw_service(&mut self, id: DeviceId, service_type: String) -> ExecResult {
        self.device_as_owner(id)?;
        let key = StateKey::Service {
            service_type: service_type.clone(),
            device: id,
        };
        if self.o.get::<ServiceOffer>(&key)?.is_none() {
            return Err(CallError::ServiceNotFound.into());
        }
        self.o.delete(&key);
        self.emit(Event::ServiceWithdrawn {
            device: id,
            service_type,
        });
        Ok(())
    }
}

fn area_ok(a: &GeoArea) -> bool {
    a.min.lat_e6 <= a.max.lat_e6 && a.min.lon_e6 <= a.max.lon_e6
}

fn check_attributes(a: &Attributes) -> Result<(), CallError> {
    if a.window_limit.is_some_and(|w| w.window_ms == 0) {
        return Err(CallError::InvalidAttributes);
    }
    if a.geo_area.is_some_and(|g| !area_ok(&g)) {
        return Err(CallError::InvalidAttributes);
    }
    if let Some(list) = &a.payee_allowlist {
        let unique: BTreeSet<_> = list.iter().collect();
        if unique.len() != list.len() {
            return Err(CallError::InvalidAttributes);
        }
    }
    Ok(())
}
