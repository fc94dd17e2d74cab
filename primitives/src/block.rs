//! Blocks and headers.
//!
//! `state_root` in the header of block `h` is the root *after* executing block `h`, so a
//! header plus its commit certifies the state that block produced, and a proof against
//! it needs no later block.

use crate::codec::{self, bounded, CodecError};
use crate::hash::{domain, Hash};
use crate::ids::{AccountId, ChainId, Height, Timestamp};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct BlockHeader {
    pub chain_id: ChainId,
    pub height: Height,
    pub parent_hash: Hash,
    pub timestamp: Timestamp,
    pub proposer: AccountId,
    /// Root over the transaction hashes in order.
    pub tx_root: Hash,
    /// State root after executing this block.
    pub state_root: Hash,
    /// Root over the receipts of this block.
    pub receipts_root: Hash,
    /// Hash of the validator set that votes on this block.
    pub validator_set_hash: Hash,
    /// Hash of the validator set that votes on the next block.
    pub next_validator_set_hash: Hash,
}

impl BlockHeader {
    pub fn hash(&self) -> Hash {
        Hash::with_domain(domain::BLOCK_HASH, &codec::encode(self))
    }
}

/// A block: header and the signed transactions, each kept as its exact bytes so that
/// a transaction's hash never depends on re-encoding.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Block {
    pub header: BlockHeader,
    #[borsh(deserialize_with = "bounded::vec::<_, Vec<u8>, 100_000>")]
    pub txs: Vec<Vec<u8>>,
}

impl Block {
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    pub fn from_bytes(bytes: &[u8], max: usize) -> Result<Block, CodecError> {
        codec::decode(bytes, max)
    }
}

/// The transaction root of a block: the Merkle root of the transactions' hashes, each
/// hashed from its exact bytes.
pub fn tx_root(txs: &[Vec<u8>]) -> Hash {
    let leaves: Vec<Hash> = txs
        .iter()
        .map(|tx| crate::tx::SignedTransaction::hash_of(tx))
        .collect();
    merkle_root(&leaves)
}

/// The receipts root of a block: the Merkle root of each receipt's borsh bytes, hashed.
pub fn receipts_root(receipts: &[crate::event::Receipt]) -> Hash {
    let leaves: Vec<Hash> = receipts
        .iter()
        .map(|r| Hash::with_domain(domain::RECEIPT, &codec::encode(r)))
        .collect();
    merkle_root(&leaves)
}

/// A binary Merkle root over a list of 32-byte leaves (the transaction or receipt
/// hashes). An empty list has the zero root; an odd node is promoted unchanged.
pub fn merkle_root(leaves: &[Hash]) -> Hash {
    if leaves.is_empty() {
        return Hash::ZERO;
    }
    let mut level: Vec<Hash> = leaves.to_vec();
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        for pair in level.chunks(2) {
            match pair {
                [a, b] => {
                    let mut buf = [0u8; 64];
                    buf[..32].copy_from_slice(&a.0);
                    buf[32..].copy_from_slice(&b.0);
                    next.push(Hash::with_domain(domain::TX_ROOT, &buf));
                }
                [a] => next.push(*a),
                _ => {}
            }
        }
        level = next;
    }
    level[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merkle_root_depends_on_order_and_content() {
        let a = Hash::of(b"a");
        let b = Hash::of(b"b");
        let c = Hash::of(b"c");
        assert_eq!(merkle_root(&[]), Hash::ZERO);
        assert_eq!(merkle_root(&[a]), a);
        assert_ne!(merkle_root(&[a, b]), merkle_root(&[b, a]));
        assert_ne!(merkle_root(&[a, b, c]), merkle_root(&[a, b]));
    }
}
