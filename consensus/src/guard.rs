//! The double-sign guard.
//!
//! Before signing a proposal or vote the validator calls [`SignGuard::authorize`]; the
//! returned state must be persisted (fsync) before the signed message is sent. Rules:
//! - never sign at a (height, round, step) below the last one signed;
//! - at the same (height, round, step), only the very same value again (an identical
//!   re-broadcast after a restart, never a conflicting one);
//! - after losing the guard state while blocks exist, refuse every height up to the
//!   highest one the node may have voted on (`floor`).

use crate::vote::Round;
use atonomi_primitives::{codec, CodecError, Hash, Height};
use borsh::{BorshDeserialize, BorshSerialize};

/// Steps in the order Tendermint takes them within a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, BorshSerialize, BorshDeserialize)]
pub enum Step {
    Propose,
    Prevote,
    Precommit,
}

/// The last signature made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct LastSigned {
    pub height: Height,
    pub round: Round,
    pub step: Step,
    /// The block signed for, `None` for a nil vote.
    pub value: Option<Hash>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignGuard {
    last: Option<LastSigned>,
    /// Heights at or below this are refused outright.
    floor: Option<Height>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error("refusing to sign at height {height}: the guard state was lost and this node may have signed up to height {floor}")]
    BelowFloor { height: Height, floor: Height },
    #[error("refusing to sign at {height}/{round}/{step:?}: already signed at {last:?}")]
    Regression {
        height: Height,
        round: Round,
        step: Step,
        last: LastSigned,
    },
    #[error("refusing to sign a second, different value at {height}/{round}/{step:?}")]
    Conflict {
        height: Height,
        round: Round,
        step: Step,
    },
}

impl SignGuard {
    /// A validator that never signed anything.
    pub fn new() -> SignGuard {
        SignGuard::default()
    }

    /// The guard of a node whose guard state is missing while its block store reaches
    /// `highest`: it may have voted at any height up to `highest + 1` (the height in
    /// progress when it stopped), so it refuses all of those.
    pub fn after_data_loss(highest: Height) -> SignGuard {
        SignGuard {
            last: None,
            floor: Some(highest.next()),
        }
    }

    pub fn last(&self) -> Option<LastSigned> {
        self.last
    }

    /// The highest height this guard knows the validator may have signed at: its last
    /// signature, or the floor it refuses up to, whichever is higher.
    pub fn highest(&self) -> Option<Height> {
        self.last.map(|l| l.height).max(self.floor)
    }

    /// Whether this guard never authorized a signature and has no floor: a new node, or
    /// one whose data directory was wiped.
    pub fn is_fresh(&self) -> bool {
        self.last.is_none() && self.floor.is_none()
    }

    /// Also refuses every height up to `committed + 1`: for a node that cannot tell
    /// whether it signed before (a wiped data directory) once it learns the network has
    /// committed `committed`.
    pub fn raise_floor(&self, committed: Height) -> SignGuard {
        let floor = committed.next();
        SignGuard {
            last: self.last,
            floor: Some(self.floor.map_or(floor, |f| f.max(floor))),
        }
    }

    /// Checks that signing `value` at (height, round, step) is safe, and returns the
    /// guard state to persist before the signature leaves the node.
    pub fn authorize(
        &self,
        height: Height,
        round: Round,
        step: Step,
        value: Option<Hash>,
    ) -> Result<SignGuard, GuardError> {
        if let Some(floor) = self.floor {
            if height <= floor {
                return Err(GuardError::BelowFloor { height, floor });
            }
        }
        if let Some(last) = self.last {
            let at = (height, round, step);
            let prev = (last.height, last.round, last.step);
            if at < prev {
                return Err(GuardError::Regression {
                    height,
                    round,
                    step,
                    last,
                });
            }
            if at == prev && value != last.value {
                return Err(GuardError::Conflict {
                    height,
                    round,
                    step,
                });
            }
        }
        Ok(SignGuard {
            last: Some(LastSigned {
                height,
                round,
                step,
                value,
            }),
            floor: self.floor,
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        codec::encode(self)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<SignGuard, CodecError> {
        codec::decode(bytes, 256)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: u64) -> Height {
        Height::new(n)
    }

    #[test]
    fn table() {
        let a = Some(Hash::of(b"a"));
        let b = Some(Hash::of(b"b"));
        let base = SignGuard::new()
            .authorize(h(5), 1, Step::Prevote, a)
            .unwrap();
        use Step::*;
        // (height, round, step, value, allowed)
        let cases = [
            (5, 1, Prevote, a, true),     // identical re-sign
            (5, 1, Prevote, b, false),    // conflicting prevote
            (5, 1, Prevote, None, false), // nil after a value
            (5, 1, Precommit, b, true),   // next step, any value
            (5, 2, Propose, b, true),     // next round
            (6, 0, Propose, a, true),     // next height
            (5, 0, Precommit, a, false),  // earlier round
            (5, 1, Propose, a, false),    // earlier step
            (4, 9, Precommit, a, false),  // earlier height
        ];
        for (i, (height, round, step, value, ok)) in cases.into_iter().enumerate() {
            let r = base.authorize(h(height), round, step, value);
            assert_eq!(r.is_ok(), ok, "case {i}: {r:?}");
        }
    }

    #[test]
    fn highest_is_the_last_signature_or_the_floor() {
        assert_eq!(SignGuard::new().highest(), None);
        let lost = SignGuard::after_data_loss(h(10));
        let floor = lost.highest().unwrap();
        assert!(floor >= h(10), "{floor}");
        let signed = SignGuard::new()
            .authorize(h(4), 0, Step::Prevote, None)
            .unwrap();
        assert_eq!(signed.highest(), Some(h(4)));
        let above = lost
            .authorize(floor.next(), 0, Step::Prevote, None)
            .unwrap();
        assert_eq!(above.highest(), Some(floor.next()));
    }

    #[test]
    fn floor_after_data_loss() {
        let g = SignGuard::after_data_loss(h(10));
        assert!(matches!(
            g.authorize(h(10), 0, Step::Prevote, None),
            Err(GuardError::BelowFloor { .. })
        ));
        assert!(matches!(
            g.authorize(h(11), 0, Step::Prevote, None),
            Err(GuardError::BelowFloor { .. })
        ));
        let next = g
            .authorize(h(12), 0, Step::Propose, Some(Hash::ZERO))
            .unwrap();
        // The floor survives persistence.
        let back = SignGuard::from_bytes(&next.to_bytes()).unwrap();
        assert!(back.authorize(h(11), 5, Step::Precommit, None).is_err());
    }

    #[test]
    fn a_fresh_guard_adopts_the_network_height_as_floor() {
        let g = SignGuard::new();
        assert!(g.is_fresh());
        let raised = g.raise_floor(h(40));
        assert!(!raised.is_fresh());
        assert!(
            raised.authorize(h(41), 0, Step::Prevote, None).is_err(),
            "the height in progress when wiped"
        );
        assert!(raised.authorize(h(42), 0, Step::Prevote, None).is_ok());
        // Raising never lowers.
        assert!(raised
            .raise_floor(h(10))
            .authorize(h(41), 3, Step::Precommit, None)
            .is_err());
    }

    #[test]
    fn persisted_state_round_trips_and_garbage_is_an_error() {
        let g = SignGuard::new()
            .authorize(h(3), 2, Step::Precommit, None)
            .unwrap();
        assert_eq!(SignGuard::from_bytes(&g.to_bytes()).unwrap(), g);
        assert!(SignGuard::from_bytes(&[7, 7, 7]).is_err());
        assert!(SignGuard::from_bytes(&[0u8; 1000]).is_err());
    }
}
