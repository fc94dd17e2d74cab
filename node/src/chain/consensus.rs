//! The consensus store (what Malachite's WAL actor owns): the write-ahead log of the
//! height in progress, the double-sign guard, block bodies of that height, and the
//! equivocation evidence seen.

use super::{corrupt, Chain, ChainReader, Result, MAX_BLOCK_BYTES};
use atonomi_consensus::message::WalRecord;
use atonomi_consensus::SignGuard;
use atonomi_primitives::block::Block;
use atonomi_primitives::codec;
use atonomi_primitives::{Hash, Height};
use atonomi_storage::{tables, Cf, KvRead, KvStore, WriteBatch};
use std::collections::BTreeMap;

/// Consensus column family layout: the guard, WAL records by (height, sequence), and
/// block bodies of the height in progress by hash.
pub(super) const GUARD_KEY: &[u8] = b"guard";
pub(super) const WAL_PREFIX: u8 = b'w';
pub(super) const BODY_PREFIX: u8 = b'b';

pub(super) fn wal_key(height: Height, seq: u32) -> Vec<u8> {
    let mut k = vec![WAL_PREFIX];
    k.extend_from_slice(&height.get().to_be_bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

pub(super) fn body_key(hash: &Hash) -> Vec<u8> {
    let mut k = vec![BODY_PREFIX];
    k.extend_from_slice(hash.as_bytes());
    k
}

pub(super) const EVIDENCE_PREFIX: &[u8] = b"evidence/";

/// Two conflicting signed messages of one validator, as stored and served.
#[derive(Debug, Clone, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct StoredEvidence {
    pub double_votes: Vec<(
        atonomi_consensus::message::WireVote,
        atonomi_consensus::message::WireVote,
    )>,
    pub double_proposals: Vec<(
        atonomi_consensus::message::WireProposal,
        atonomi_consensus::message::WireProposal,
    )>,
}

impl Chain {
    /// Appends WAL records and replaces the guard, durably, in one batch.
    pub fn persist_consensus(
        &self,
        records: &[WalRecord],
        guard: Option<&SignGuard>,
        bodies: &[Block],
    ) -> Result<()> {
        let mut batch = WriteBatch::new();
        for (seq, r) in (self.next_wal_seq()?..).zip(records) {
            batch.put(Cf::Consensus, wal_key(r.height, seq), r.to_bytes());
        }
        if let Some(g) = guard {
            batch.put(Cf::Consensus, GUARD_KEY.to_vec(), g.to_bytes());
        }
        for b in bodies {
            batch.put(Cf::Consensus, body_key(&b.hash()), codec::encode(b));
        }
        if !batch.is_empty() {
            self.store().kv().write(batch)?;
        }
        Ok(())
    }

    pub(super) fn next_wal_seq(&self) -> Result<u32> {
        let last = self.db().kv().get_at_or_before(
            Cf::Consensus,
            &wal_key(Height::new(u64::MAX), u32::MAX),
            &[WAL_PREFIX],
        )?;
        Ok(match last {
            Some((k, _)) if k.len() == 13 => {
                u32::from_be_bytes([k[9], k[10], k[11], k[12]]).saturating_add(1)
            }
            _ => 0,
        })
    }

    /// The stored guard, or the data-loss guard when it is missing.
    pub fn guard(&self) -> Result<SignGuard> {
        match self.db().kv().get(Cf::Consensus, GUARD_KEY)? {
            Some(b) => {
                Ok(SignGuard::from_bytes(&b).map_err(corrupt("the double-sign guard on disk"))?)
            }
            None => {
                tracing::warn!(height = %self.height(), "double-sign guard missing: refusing to sign up to the next height");
                Ok(SignGuard::after_data_loss(self.height()))
            }
        }
    }

    /// The WAL records of the height in progress, in order (undecodable ones, a torn
    /// tail, end the replay).
    pub fn wal(&self) -> Result<Vec<WalRecord>> {
        let mut out = Vec::new();
        for (_, v) in self
            .db()
            .kv()
            .scan(Cf::Consensus, &[WAL_PREFIX], &[], usize::MAX)?
        {
            match WalRecord::from_bytes(&v) {
                Ok(r) => out.push(r),
                Err(e) => {
                    tracing::warn!("WAL record does not decode ({e}); replaying up to it");
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Block bodies stored for the height in progress.
    pub fn bodies(&self) -> Result<BTreeMap<Hash, Block>> {
        let mut out = BTreeMap::new();
        for (_, v) in self
            .db()
            .kv()
            .scan(Cf::Consensus, &[BODY_PREFIX], &[], usize::MAX)?
        {
            if let Ok(b) = Block::from_bytes(&v, MAX_BLOCK_BYTES) {
                out.insert(b.hash(), b);
            }
        }
        Ok(out)
    }

    /// Stores equivocation evidence seen while deciding `height`.
    pub fn record_evidence(
        &self,
        height: Height,
        evidence: &atonomi_consensus::engine::Evidence,
    ) -> Result<()> {
        let record = StoredEvidence {
            double_votes: evidence.double_votes.clone(),
            double_proposals: evidence.double_proposals.clone(),
        };
        let mut batch = WriteBatch::new();
        let mut key = EVIDENCE_PREFIX.to_vec();
        key.extend_from_slice(&height.get().to_be_bytes());
        batch.put(Cf::Meta, key, codec::encode(&record));
        Ok(self.store().kv().write(batch)?)
    }
}

impl ChainReader {
    /// Evidence recorded at heights `from..`, at most `limit` heights.
    pub fn evidence(&self, from: Height, limit: usize) -> Result<Vec<(Height, StoredEvidence)>> {
        let mut start = EVIDENCE_PREFIX.to_vec();
        start.extend_from_slice(&from.get().to_be_bytes());
        let mut out = Vec::new();
        for (k, v) in self
            .db()
            .kv()
            .scan(Cf::Meta, EVIDENCE_PREFIX, &start, limit)?
        {
            let Some(h) = k
                .get(EVIDENCE_PREFIX.len()..)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
            else {
                continue;
            };
            out.push((
                Height::new(u64::from_be_bytes(h)),
                codec::decode(&v, tables::MAX_VALUE).map_err(corrupt("an evidence record"))?,
            ));
        }
        Ok(out)
    }
}
