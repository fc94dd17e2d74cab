//! Auditors' reputation writes and their rewards.
//!
//! Each accepted entry is stored per (subject, type, auditor) with its direction and
//! history count, and the (subject, type) aggregate (median) is updated. The reward is
//! paid from the subject's manufacturer pool *as far as the pool allows*: a write never
//! fails for lack of reward (weakness 4). The reward decays by the time elapsed since
//! the same auditor's previous write about the same subject, so a rewrite in the same
//! block earns nothing (weakness 5).

use crate::ctx::{check_text, Ctx};
use crate::error::ExecResult;
use crate::state::StateReader;
use atonomi_primitives::event::Event;
use atonomi_primitives::state::{
    limits, MemberStatus, ReputationAggregate, ReputationEntry, StateKey, Subject,
};
use atonomi_primitives::tx::ReputationWrite;
use atonomi_primitives::{Amount, AuditorId, CallError, ManufacturerId, Score, Timestamp};

impl<R: StateReader + ?Sized> Ctx<'_, '_, R> {
    pub fn write_reputation(&mut self, id: AuditorId, entries: Vec<ReputationWrite>) -> ExecResult {
        let auditor = self.auditor(id)?;
        if !auditor.keys.contains(&self.signer) {
            return Err(CallError::NotAuditorKey.into());
        }
        if auditor.status != MemberStatus::Active {
            return Err(CallError::AuditorNotActive.into());
        }
        if entries.is_empty() {
            return Err(CallError::EmptyBatch.into());
        }
        if entries.len() > self.params.max_batch as usize {
            return Err(CallError::BatchTooLarge.into());
        }
        for w in entries {
            check_text(
                &w.rep_type,
                limits::TYPE_NAME,
                CallError::InvalidReputationType,
            )?;
            let pool_owner = self.subject_pool(&w.subject)?;
            let aggregate = self.store_entry(id, &w)?;
            let reward = self.reward(id, &w.subject, pool_owner, auditor.reward_account)?;
            self.emit(Event::ReputationWritten {
                subject: w.subject,
                auditor: id,
                rep_type: w.rep_type,
                score: w.score,
                direction: w.direction,
                aggregate,
                reward,
            });
        }
        Ok(())
    }

    /// Checks the subject exists; returns the manufacturer whose pool pays rewards for
    /// it (none for plain accounts).
    fn subject_pool(&self, s: &Subject) -> ExecResult<Option<ManufacturerId>> {
        match s {
            Subject::Device(d) => match self
                .o
                .get::<atonomi_primitives::state::Device>(&StateKey::Device(*d))?
            {
                Some(dev) => Ok(Some(dev.manufacturer)),
                None => Err(CallError::InvalidSubject.into()),
            },
            Subject::Manufacturer(m) => match self
                .o
                .get::<atonomi_primitives::state::Manufacturer>(&StateKey::Manufacturer(*m))?
            {
                Some(_) => Ok(Some(*m)),
                None => Err(CallError::InvalidSubject.into()),
            },
            Subject::Account(_) => Ok(None),
        }
    }

    fn store_entry(&mut self, auditor: AuditorId, w: &ReputationWrite) -> ExecResult<Score> {
        let key = StateKey::Reputation {
            subject: w.subject,
            rep_type: w.rep_type.clone(),
            auditor,
        };
        let prev: Option<ReputationEntry> = self.o.get(&key)?;
        let entry = ReputationEntry {
            subject: w.subject,
            auditor,
            rep_type: w.rep_type.clone(),
            score: w.score,
            direction: w.direction,
            height: self.block.height,
            timestamp: self.block.timestamp,
            writes: prev.map_or(1, |p| p.writes.saturating_add(1)),
        };
        self.o.put(&key, &entry);

        let agg_key = StateKey::ReputationAggregate {
            subject: w.subject,
            rep_type: w.rep_type.clone(),
        };
        let mut agg: ReputationAggregate = self.o.get(&agg_key)?.unwrap_or(ReputationAggregate {
            subject: w.subject,
            rep_type: w.rep_type.clone(),
            scores: Vec::new(),
            median: w.score,
        });
        match agg.scores.binary_search_by_key(&auditor, |(a, _)| *a) {
            Ok(i) => agg.scores[i].1 = w.score,
            Err(i) => agg.scores.insert(i, (auditor, w.score)),
        }
        agg.median = ReputationAggregate::median_of(&agg.scores).unwrap_or(w.score);
        let median = agg.median;
        self.o.put(&agg_key, &agg);
        Ok(median)
    }

    /// Computes, pays and returns the reward of one write.
    fn reward(
        &mut self,
        auditor: AuditorId,
        subject: &Subject,
        pool_owner: Option<ManufacturerId>,
        auditor_account: atonomi_primitives::AccountId,
    ) -> ExecResult<Amount> {
        let last_key = StateKey::ReputationLastWrite {
            auditor,
            subject: *subject,
        };
        let last: Option<Timestamp> = self.o.get(&last_key)?;
        self.o.put(&last_key, &self.block.timestamp);
        let Some(mid) = pool_owner else {
            return Ok(Amount::ZERO);
        };
        let full = self.params.reputation_reward;
        let due = match last {
            None => full,
            Some(t) => decayed(
                full,
                self.block.timestamp.get().saturating_sub(t.get()),
                self.params.reward_decay_window_ms,
            ),
        };
        let mut m = self.manufacturer(mid)?;
        let paid = due.min(m.pool);
        if paid.is_zero() {
            return Ok(Amount::ZERO);
        }
        m.pool = m.pool.checked_sub(paid).ok_or(CallError::Overflow)?;
        let to_auditor = paid
            .bps(self.params.auditor_reward_bps)
            .ok_or(CallError::Overflow)?;
        let to_manufacturer = paid.checked_sub(to_auditor).ok_or(CallError::Overflow)?;
        let wallet = m.reward_wallet;
        self.put_manufacturer(&m);
        self.credit(auditor_account, to_auditor)?;
        self.credit(wallet, to_manufacturer)?;
        self.emit(Event::RewardPaid {
            to: auditor_account,
            amount: to_auditor,
            manufacturer: mid,
        });
        if !to_manufacturer.is_zero() {
            self.emit(Event::RewardPaid {
                to: wallet,
                amount: to_manufacturer,
                manufacturer: mid,
            });
        }
        Ok(paid)
    }
}

/// `full * min(elapsed, window) / window`, in integers.
fn decayed(full: Amount, elapsed_ms: u64, window_ms: u64) -> Amount {
    if window_ms == 0 || elapsed_ms >= window_ms {
        return full;
    }
    // full < 2^128 and elapsed < window < 2^64: split to avoid overflow.
    let f = full.get();
    let (e, w) = (u128::from(elapsed_ms), u128::from(window_ms));
    let q = f / w;
    let r = f % w;
    Amount::new(q * e + r * e / w)
}

#[cfg(test)]
mod tests {
    use super::decayed;
    use atonomi_primitives::Amount;

    #[test]
    fn decay_is_linear_and_capped() {
        let full = Amount::new(1_000);
        assert_eq!(decayed(full, 0, 100), Amount::ZERO);
        assert_eq!(decayed(full, 50, 100), Amount::new(500));
        assert_eq!(decayed(full, 100, 100), full);
        assert_eq!(decayed(full, 1_000, 100), full);
        // Huge rewards and windows do not overflow.
        let big = Amount::new(u128::MAX);
        let half = decayed(big, u64::MAX / 2, u64::MAX);
        assert!(half < big && half > Amount::new(u128::MAX / 2 - u128::from(u64::MAX)));
    }
}
