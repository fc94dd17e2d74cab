//! The block store: committed blocks by height and by hash, their commit certificates,
//! receipts and the transaction index, and the node's meta records (genesis, height).

use super::{corrupt, ChainReader, Result};
use atonomi_consensus::CommitCertificate;
use atonomi_primitives::block::Block;
use atonomi_primitives::codec;
use atonomi_primitives::event::Receipt;
use atonomi_primitives::{Hash, Height};
use atonomi_storage::tables::{self, Table};
use atonomi_storage::{Cf, KvRead};

pub(super) struct Blocks;
impl Table for Blocks {
    const CF: Cf = Cf::Blocks;
    type Key = u64;
    type Value = Block;
}

pub(super) struct BlockIndex;
impl Table for BlockIndex {
    const CF: Cf = Cf::BlockIndex;
    type Key = [u8; 32];
    type Value = u64;
}

pub(super) struct Commits;
impl Table for Commits {
    const CF: Cf = Cf::Commits;
    type Key = u64;
    type Value = CommitCertificate;
}

pub(super) struct Receipts;
impl Table for Receipts {
    const CF: Cf = Cf::Receipts;
    type Key = (u64, u32);
    type Value = Receipt;
}

pub(super) struct TxIndex;
impl Table for TxIndex {
    const CF: Cf = Cf::TxIndex;
    type Key = [u8; 32];
    type Value = (u64, u32);
}

/// Keys in the meta column family.
pub(super) const META_GENESIS_HASH: &str = "node/genesis_hash";
pub(super) const META_HEIGHT: &str = "node/height";

pub(super) struct MetaU64;
impl Table for MetaU64 {
    const CF: Cf = Cf::Meta;
    type Key = &'static str;
    type Value = u64;
}

pub(super) struct MetaHash;
impl Table for MetaHash {
    const CF: Cf = Cf::Meta;
    type Key = &'static str;
    type Value = Hash;
}

impl ChainReader {
    pub fn block(&self, height: Height) -> Result<Option<Block>> {
        Ok(tables::get::<Blocks, _>(self.store.kv(), &height.get())?)
    }

    pub fn block_by_hash(&self, hash: &Hash) -> Result<Option<Block>> {
        match tables::get::<BlockIndex, _>(self.store.kv(), &hash.0)? {
            Some(h) => self.block(Height::new(h)),
            None => Ok(None),
        }
    }

    pub fn certificate(&self, height: Height) -> Result<Option<CommitCertificate>> {
        Ok(tables::get::<Commits, _>(self.store.kv(), &height.get())?)
    }

    pub fn receipt(&self, tx_hash: &Hash) -> Result<Option<Receipt>> {
        match tables::get::<TxIndex, _>(self.store.kv(), &tx_hash.0)? {
            Some(loc) => Ok(tables::get::<Receipts, _>(self.store.kv(), &loc)?),
            None => Ok(None),
        }
    }

    /// The receipts of a committed block, in order.
    pub fn receipts(&self, height: Height) -> Result<Vec<Receipt>> {
        let prefix = height.get().to_be_bytes();
        let mut out = Vec::new();
        for (_, v) in self
            .store
            .kv()
            .scan(Cf::Receipts, &prefix, &[], usize::MAX)?
        {
            out.push(codec::decode(&v, tables::MAX_VALUE).map_err(corrupt("a receipt"))?);
        }
        Ok(out)
    }
}
