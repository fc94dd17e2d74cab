//! Network parameters: changed only by governance. Defaults follow the original
//! Atonomi mainnet contracts (fees, reward, split) and the whitepaper (1% payment fee).

use crate::ids::{Amount, Score};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// Declares [`Params`] and, from the same list, [`ParamChange`]: one variant per field,
/// so a parameter cannot be added to one and forgotten in the other.
macro_rules! network_params {
    ($( $(#[doc = $doc:literal])* $field:ident : $ty:ty, )*) => {
        /// Every tunable of the runtime. Basis points (`*_bps`) are out of 10,000.
        #[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Params {
            $( $(#[doc = $doc])* pub $field: $ty, )*
        }

        /// A new value for one network parameter, named as the field of [`Params`] it
        /// replaces (`{"registration_fee": "2000000000000000000"}` in JSON). A list of
        /// these is [`GovAction::UpdateParams`](crate::gov::GovAction::UpdateParams): the
        /// parameters it does not name keep the values in force when it executes.
        #[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
        #[allow(non_camel_case_types)]
        pub enum ParamChange {
            $( $(#[doc = $doc])* $field($ty), )*
        }

        impl ParamChange {
            /// The name of the parameter this changes (its field in [`Params`]).
            pub fn name(&self) -> &'static str {
                match self {
                    $( ParamChange::$field(_) => stringify!($field), )*
                }
            }
        }

        impl Params {
            /// The parameters' names, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$( stringify!($field) ),*];

            /// Sets the one parameter `change` names.
            pub fn apply(&mut self, change: ParamChange) {
                match change {
                    $( ParamChange::$field(v) => self.$field = v, )*
                }
            }
        }
    };
}

network_params! {
    /// Fee per registered device, paid by the manufacturer into its own pool, unless the
    /// manufacturer's entry overrides it.
    registration_fee: Amount,
    /// Fee per activation, paid by the new owner.
    activation_fee: Amount,
    /// Share of the activation fee that goes to the treasury; the rest goes to the
    /// manufacturer's pool.
    activation_treasury_bps: u16,
    /// Reward per accepted reputation write, paid from the device's manufacturer pool.
    reputation_reward: Amount,
    /// Share of that reward paid to the auditor; the rest goes to the manufacturer's
    /// reward wallet.
    auditor_reward_bps: u16,
    /// Rewrites by the same auditor for the same subject earn a reward that grows
    /// linearly with the elapsed time, reaching the full reward after this window.
    reward_decay_window_ms: u64,
    /// Commercial payment fee on device payments.
    payment_fee_bps: u16,
    /// Share of the payment fee that goes to the auditor pool; the rest to the treasury.
    payment_fee_auditor_bps: u16,
    /// Minimum reputation (aggregate of `payment_reputation_type`, or the manufacturer's
    /// default score while no auditor has written one) for a device to pay or be paid.
    min_reputation: Score,
    /// The reputation type that gates payments.
    payment_reputation_type: String,
    /// Fee per transaction (0 on a permissioned chain by default), charged up to the
    /// signer's `max_fee`, to the treasury.
    tx_fee: Amount,
    /// Every this many blocks the validators sign an Ethereum checkpoint.
    checkpoint_interval: u64,
    /// Most transactions in a block.
    max_block_txs: u32,
    /// Most encoded bytes in a block.
    max_block_bytes: u32,
    /// Most encoded bytes in one transaction (at most [`MAX_TX_BYTES_CEILING`]).
    max_tx_bytes: u32,
    /// Largest batch in `RegisterDevices` and `WriteReputation`.
    max_batch: u32,
    /// An upgrade is scheduled at least this many blocks after the block that
    /// schedules it, so that operators have time to install the new binary.
    upgrade_min_delay: u64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            registration_fee: Amount::new(Amount::ONE_ATMI),
            activation_fee: Amount::new(Amount::ONE_ATMI),
            activation_treasury_bps: 0,
            reputation_reward: Amount::new(Amount::ONE_ATMI / 8),
            auditor_reward_bps: 8_000,
            reward_decay_window_ms: 24 * 60 * 60 * 1000,
            payment_fee_bps: 100,
            payment_fee_auditor_bps: 5_000,
            min_reputation: Score::new(1_000).unwrap_or_default(),
            payment_reputation_type: "trust".to_string(),
            tx_fee: Amount::ZERO,
            checkpoint_interval: 100,
            max_block_txs: 10_000,
            max_block_bytes: 16 * 1024 * 1024,
            max_tx_bytes: 512 * 1024,
            max_batch: 2_000,
            upgrade_min_delay: 1_000,
        }
    }
}

/// Why a parameter set is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid parameter {field}: {reason}")]
pub struct InvalidParams {
    pub field: &'static str,
    pub reason: &'static str,
}

/// The hard ceiling on a transaction's encoded size, whatever the parameters say:
/// decoders bound their input with it before any parameter is known.
pub const MAX_TX_BYTES_CEILING: usize = 4 * 1024 * 1024;

impl Params {
    pub fn validate(&self) -> Result<(), InvalidParams> {
        let bps = |field, v: u16| {
            if v > 10_000 {
                Err(InvalidParams {
                    field,
                    reason: "basis points must be at most 10000",
                })
            } else {
                Ok(())
            }
        };
        bps("activation_treasury_bps", self.activation_treasury_bps)?;
        bps("auditor_reward_bps", self.auditor_reward_bps)?;
        bps("payment_fee_bps", self.payment_fee_bps)?;
        bps("payment_fee_auditor_bps", self.payment_fee_auditor_bps)?;
        let nonzero = |field, v: u64| {
            if v == 0 {
                Err(InvalidParams {
                    field,
                    reason: "must be greater than zero",
                })
            } else {
                Ok(())
            }
        };
        nonzero("reward_decay_window_ms", self.reward_decay_window_ms)?;
        nonzero("checkpoint_interval", self.checkpoint_interval)?;
        nonzero("max_block_txs", u64::from(self.max_block_txs))?;
        nonzero("max_batch", u64::from(self.max_batch))?;
        nonzero("upgrade_min_delay", self.upgrade_min_delay)?;
        if (self.max_tx_bytes as usize) > MAX_TX_BYTES_CEILING || self.max_tx_bytes < 1024 {
            return Err(InvalidParams {
                field: "max_tx_bytes",
                reason: "must be between 1 KiB and 4 MiB",
            });
        }
        if self.max_block_bytes < self.max_tx_bytes {
            return Err(InvalidParams {
                field: "max_block_bytes",
                reason: "must be at least max_tx_bytes",
            });
        }
        if self.payment_reputation_type.is_empty() || self.payment_reputation_type.len() > 32 {
            return Err(InvalidParams {
                field: "payment_reputation_type",
                reason: "must be 1..=32 bytes",
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_original_contracts() {
        let p = Params::default();
        assert_eq!(p.registration_fee.to_string(), "1");
        assert_eq!(p.activation_fee.to_string(), "1");
        assert_eq!(p.reputation_reward.to_string(), "0.125");
        assert_eq!(p.auditor_reward_bps, 8_000);
        assert_eq!(p.payment_fee_bps, 100);
        assert_eq!(p.reward_decay_window_ms, 86_400_000);
        p.validate().unwrap();
    }

    #[test]
    fn validation_names_the_field() {
        let p = Params {
            payment_fee_bps: 10_001,
            ..Params::default()
        };
        assert_eq!(p.validate().unwrap_err().field, "payment_fee_bps");
    }

    #[test]
    fn a_change_names_one_parameter_and_sets_only_it() {
        let change: ParamChange =
            serde_json::from_str(r#"{"registration_fee":"2000000000000000000"}"#).unwrap();
        assert_eq!(change.name(), "registration_fee");
        let mut p = Params::default();
        p.apply(change);
        assert_eq!(p.registration_fee.to_string(), "2");
        assert_eq!(
            p,
            Params {
                registration_fee: p.registration_fee,
                ..Params::default()
            }
        );
        assert!(Params::NAMES.contains(&"max_batch"));
        assert_eq!(Params::NAMES.len(), 17);
    }
}
