//! Ethereum checkpoints by epoch, and the validator set that voted on a height (whose
//! members sign its checkpoint).

use super::blocks::MetaU64;
use super::{corrupt, ChainError, ChainReader, Result};
use atonomi_consensus::validate::voting_set;
use atonomi_primitives::codec;
use atonomi_primitives::state::{PendingValidatorSet, StateKey, ValidatorSet};
use atonomi_primitives::Height;
use atonomi_storage::{tables, Cf, KvRead};

/// Ethereum checkpoints: epoch → height (epochs count checkpoint heights from 1), and
/// the last epoch. A height is a checkpoint when it is a multiple of the
/// `checkpoint_interval` parameter or when the next height's validator set differs
/// (so that the contract's trusted set rotates before the new set signs). Written in
/// the commit batch: every node derives the same epochs from the same chain.
pub(super) const CHECKPOINT_PREFIX: &[u8] = b"ckpt/e/";
pub(super) const META_CHECKPOINT_LAST: &str = "ckpt/last";

pub(super) fn checkpoint_key(epoch: u64) -> Vec<u8> {
    let mut k = CHECKPOINT_PREFIX.to_vec();
    k.extend_from_slice(&epoch.to_be_bytes());
    k
}

/// The validator set voting on `height`, from the state `read` sees (the set and the
/// pending change as of the height before it).
pub(crate) fn voting_set_in(
    height: Height,
    read: impl Fn(&StateKey) -> Result<Option<Vec<u8>>>,
) -> Result<ValidatorSet> {
    let current: ValidatorSet = match read(&StateKey::ValidatorSet)? {
        Some(b) => codec::decode(&b, 16 << 20).map_err(corrupt("the validator set record"))?,
        None => ValidatorSet::default(),
    };
    let pending: Option<PendingValidatorSet> = match read(&StateKey::PendingValidatorSet)? {
        Some(b) => {
            Some(codec::decode(&b, 16 << 20).map_err(corrupt("the pending validator set record"))?)
        }
        None => None,
    };
    Ok(voting_set(height, &current, pending.as_ref()).clone())
}

impl ChainReader {
    /// The last checkpoint epoch (0: none yet).
    pub fn last_checkpoint_epoch(&self) -> Result<u64> {
        Ok(tables::get::<MetaU64, _>(self.store.kv(), &META_CHECKPOINT_LAST)?.unwrap_or(0))
    }

    /// The last checkpoint epoch at or below `height`, with its height (0 and `None`
    /// before the first).
    pub fn checkpoint_epoch_at(&self, height: Height) -> Result<(u64, Option<Height>)> {
        let mut epoch = self.last_checkpoint_epoch()?;
        while epoch > 0 {
            match self.checkpoint_height(epoch)? {
                Some(h) if h <= height => return Ok((epoch, Some(h))),
                _ => epoch -= 1,
            }
        }
        Ok((0, None))
    }

    /// The height of checkpoint `epoch`.
    pub fn checkpoint_height(&self, epoch: u64) -> Result<Option<Height>> {
        let Some(v) = self.store.kv().get(Cf::Meta, &checkpoint_key(epoch))? else {
            return Ok(None);
        };
        let b: [u8; 8] = v.as_slice().try_into().map_err(|_| ChainError::Corrupt {
            what: format!("the checkpoint record of epoch {epoch}"),
            error: atonomi_primitives::codec::CodecError::Malformed(format!(
                "{} bytes, not 8",
                v.len()
            )),
        })?;
        Ok(Some(Height::new(u64::from_be_bytes(b))))
    }

    /// The validator set that voted (or votes) on `height` (≥ 1), from the state of
    /// `height - 1`.
    pub fn voting_set_at(&self, height: Height) -> Result<ValidatorSet> {
        let version = height.get().saturating_sub(1);
        voting_set_in(height, |k| Ok(self.store.get_at(&k.to_bytes(), version)?))
    }
}
