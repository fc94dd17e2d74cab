//! The ATMI ledger: ERC-20 semantics with a fixed supply (burn only).

use crate::ctx::Ctx;
use crate::error::{ExecError, ExecResult, Fatal};
use crate::state::StateReader;
use atonomi_primitives::event::Event;
use atonomi_primitives::state::{MemberStatus, StateKey, TokenInfo};
use atonomi_primitives::{AccountId, Amount, CallError, ManufacturerId};

fn nonzero(amount: Amount) -> Result<(), CallError> {
    if amount.is_zero() {
        Err(CallError::ZeroAmount)
    } else {
        Ok(())
    }
}

impl<R: StateReader + ?Sized> Ctx<'_, '_, R> {
    pub fn transfer(&mut self, to: AccountId, amount: Amount) -> ExecResult {
        nonzero(amount)?;
        self.move_tokens(self.signer, to, amount)?;
        self.emit(Event::Transferred {
            from: self.signer,
            to,
            amount,
        });
        Ok(())
    }

    pub fn approve(&mut self, spender: AccountId, amount: Amount) -> ExecResult {
        if spender == self.signer {
            return Err(CallError::SelfTransfer.into());
        }
        let key = StateKey::Allowance {
            owner: self.signer,
            spender,
        };
        if amount.is_zero() {
            self.o.delete(&key);
        } else {
            self.o.put(&key, &amount);
        }
        self.emit(Event::Approved {
            owner: self.signer,
            spender,
            amount,
        });
        Ok(())
    }

    pub fn transfer_from(&mut self, from: AccountId, to: AccountId, amount: Amount) -> ExecResult {
        nonzero(amount)?;
        let key = StateKey::Allowance {
            owner: from,
            spender: self.signer,
        };
        let allowance: Amount = self.o.get(&key)?.unwrap_or_default();
        let left = allowance
            .checked_sub(amount)
            .ok_or(CallError::InsufficientAllowance)?;
        self.move_tokens(from, to, amount)?;
        if left.is_zero() {
            self.o.delete(&key);
        } else {
            self.o.put(&key, &left);
        }
        self.emit(Event::Transferred { from, to, amount });
        Ok(())
    }

    pub fn burn(&mut self, amount: Amount) -> ExecResult {
        nonzero(amount)?;
        self.debit(self.signer, amount)?;
        let mut token: TokenInfo = self
            .o
            .get(&StateKey::Token)?
            .ok_or_else(|| ExecError::Fatal(Fatal::InvalidBlock("token info missing".into())))?;
        // The burnt amount was in a balance, so it is within the supply; a failure here
        // means state was corrupted outside the runtime.
        token.total_supply = token
            .total_supply
            .checked_sub(amount)
            .ok_or_else(|| ExecError::Fatal(Fatal::InvalidBlock("supply below balances".into())))?;
        self.o.put(&StateKey::Token, &token);
        self.emit(Event::Burned {
            from: self.signer,
            amount,
        });
        Ok(())
    }

    pub fn deposit_to_pool(&mut self, id: ManufacturerId, amount: Amount) -> ExecResult {
        nonzero(amount)?;
        let mut m = self.manufacturer(id)?;
        if m.status == MemberStatus::Removed {
            return Err(CallError::ManufacturerNotActive.into());
        }
        self.debit(self.signer, amount)?;
        m.pool = m.pool.checked_add(amount).ok_or(CallError::Overflow)?;
        self.put_manufacturer(&m);
        self.emit(Event::PoolDeposited {
            manufacturer: id,
            from: self.signer,
            amount,
        });
        Ok(())
    }
}
