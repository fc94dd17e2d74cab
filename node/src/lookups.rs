//! The node's lookup log: how often each device asked `atonomi_validateDevice` about
//! others (as `requester`) and was asked about. Node-local and in memory — it is an
//! input of the auditor (a device flooding lookups is anomalous), not consensus state.
//! Bounded: at most [`MAX_DEVICES`] devices; when full, the least-active half is
//! dropped (the counts are cumulative per node run, so an auditor diffs them and
//! notices a new run by its `run` id).

use atonomi_primitives::DeviceId;
use std::collections::BTreeMap;

pub const MAX_DEVICES: usize = 100_000;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub as_requester: u64,
    pub as_target: u64,
}

#[derive(Debug)]
pub struct LookupLog {
    /// Random per process start: counts restart from zero with it.
    pub run: u64,
    counts: BTreeMap<DeviceId, Counts>,
}

impl LookupLog {
    pub fn new(run: u64) -> LookupLog {
        LookupLog {
            run,
            counts: BTreeMap::new(),
        }
    }

    pub fn record(&mut self, target: DeviceId, requester: Option<DeviceId>) {
        if self.counts.len() >= MAX_DEVICES {
            self.shed();
        }
        self.counts.entry(target).or_default().as_target += 1;
        if let Some(r) = requester {
            self.counts.entry(r).or_default().as_requester += 1;
        }
    }

    /// Drops the less active half.
    fn shed(&mut self) {
        let mut totals: Vec<u64> = self
            .counts
            .values()
            .map(|c| c.as_requester + c.as_target)
            .collect();
        totals.sort_unstable();
        let median = totals.get(totals.len() / 2).copied().unwrap_or(0);
        self.counts
            .retain(|_, c| c.as_requester + c.as_target > median);
    }

    /// The `limit` most active requesters first, then targets.
    pub fn top(&self, limit: usize) -> Vec<(DeviceId, Counts)> {
        let mut all: Vec<(DeviceId, Counts)> = self.counts.iter().map(|(d, c)| (*d, *c)).collect();
        all.sort_by(|a, b| {
            (b.1.as_requester, b.1.as_target, a.0).cmp(&(a.1.as_requester, a.1.as_target, b.0))
        });
        all.truncate(limit);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_sort_and_stay_bounded() {
        let mut log = LookupLog::new(1);
        let (a, b) = (DeviceId::new([1; 32]), DeviceId::new([2; 32]));
        for _ in 0..5 {
            log.record(b, Some(a));
        }
        log.record(a, None);
        assert_eq!(
            log.top(10),
            vec![
                (
                    a,
                    Counts {
                        as_requester: 5,
                        as_target: 1
                    }
                ),
                (
                    b,
                    Counts {
                        as_requester: 0,
                        as_target: 5
                    }
                )
            ]
        );
        for i in 0..(MAX_DEVICES as u32 + 10) {
            let mut id = [0u8; 32];
            id[..4].copy_from_slice(&i.to_le_bytes());
            id[31] = 9;
            log.record(DeviceId::new(id), None);
        }
        assert!(log.counts.len() <= MAX_DEVICES);
        assert_eq!(log.top(1)[0].0, a, "the busiest survive shedding");
    }
}
