//! Calls a device signs with its own key: payments, log anchors and interaction
//! reports.

use crate::ctx::{check_text, require_active, Ctx};
use crate::error::ExecResult;
use crate::query;
use crate::state::StateReader;
use atonomi_primitives::event::Event;
use atonomi_primitives::state::{limits, Device};
use atonomi_primitives::tx::Outcome;
use atonomi_primitives::{AccountId, Amount, CallError, DeviceId, Hash};

impl<R: StateReader + ?Sized> Ctx<'_, '_, R> {
    pub fn pay(
        &mut self,
        from: DeviceId,
        to: DeviceId,
        amount: Amount,
        _memo: Vec<u8>,
    ) -> ExecResult {
        let mut payer = self.device_as_itself(from)?;
        if from == to {
            return Err(CallError::SamePayerPayee.into());
        }
        if amount.is_zero() {
            return Err(CallError::ZeroAmount.into());
        }
        let payee = self.device(to)?;
        require_active(&payee)?;

        // Reputation: both sides meet the network minimum; the payee also meets the
        // payer's own counterparty minimum.
        let min = self.params.min_reputation;
        if self.device_reputation(&payer)? < min {
            return Err(CallError::BelowMinReputation.into());
        }
        let payee_min = payer
            .attributes
            .counterparty_min_reputation
            .map_or(min, |m| m.max(min));
        if self.device_reputation(&payee)? < payee_min {
            return Err(CallError::BelowMinReputation.into());
        }

        // The payer's policy.
        let attrs = &payer.attributes;
        if attrs.per_tx_limit.is_some_and(|l| amount > l) {
            return Err(CallError::PerTxLimitExceeded.into());
        }
        if attrs
            .payee_allowlist
            .as_ref()
            .is_some_and(|l| !l.contains(&to))
        {
            return Err(CallError::PayeeNotAllowed.into());
        }
        if let Some(area) = attrs.geo_area {
            if !payee.attributes.location.is_some_and(|p| area.contains(&p)) {
                return Err(CallError::OutsideArea.into());
            }
        }
        if let Some(w) = attrs.window_limit {
            let now = self.block.timestamp;
            if now.get() >= payer.window_start.get().saturating_add(w.window_ms) {
                payer.window_start = now;
                payer.window_spent = Amount::ZERO;
            }
            let spent = payer
                .window_spent
                .checked_add(amount)
                .ok_or(CallError::Overflow)?;
            if spent > w.amount {
                return Err(CallError::WindowLimitExceeded.into());
            }
            payer.window_spent = spent;
            self.put_device(&payer);
        }

        let fee = amount
            .bps(self.params.payment_fee_bps)
            .ok_or(CallError::Overflow)?;
        let to_auditors = fee
            .bps(self.params.payment_fee_auditor_bps)
            .ok_or(CallError::Overflow)?;
        let to_treasury = fee.checked_sub(to_auditors).ok_or(CallError::Overflow)?;
        let payer_account = payer.wallet.unwrap_or(payer.public_key);
        let payee_account = payee.wallet.unwrap_or(payee.public_key);
        self.debit(
            payer_account,
            amount.checked_add(fee).ok_or(CallError::Overflow)?,
        )?;
        self.credit(payee_account, amount)?;
        self.credit(AccountId::auditor_pool(), to_auditors)?;
        self.credit(AccountId::treasury(), to_treasury)?;
        self.emit(Event::Paid {
            from_device: from,
            to_device: to,
            payer: payer_account,
            amount,
            fee,
        });
        Ok(())
    }

    /// A device's reputation for payments: the aggregate of the payment reputation
    /// type, or its manufacturer's default score while no auditor has written one.
    fn device_reputation(&self, d: &Device) -> ExecResult<atonomi_primitives::Score> {
        query::device_reputation_in(self.o, d, &self.params.payment_reputation_type)
    }

    pub fn anchor_log(
        &mut self,
        id: DeviceId,
        hash: Hash,
        kind: String,
        parties: Vec<DeviceId>,
    ) -> ExecResult {
        self.device_as_itself(id)?;
        check_text(&kind, limits::TYPE_NAME, CallError::InvalidKind)?;
        for p in &parties {
            self.device(*p)?;
        }
        self.emit(Event::LogAnchored {
            device: id,
            hash,
            kind,
            parties,
        });
        Ok(())
    }

    pub fn report_interaction(
        &mut self,
        id: DeviceId,
        peer: DeviceId,
        outcome: Outcome,
        receipt: Hash,
    ) -> ExecResult {
        self.device_as_itself(id)?;
        if peer == id {
            return Err(CallError::SamePayerPayee.into());
        }
        self.device(peer)?;
        self.emit(Event::InteractionReported {
            device: id,
            peer,
            outcome,
            receipt,
        });
        Ok(())
    }
}
