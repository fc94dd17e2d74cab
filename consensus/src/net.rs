//! The peer-to-peer wire formats: what travels on the consensus gossip topic and on the
//! block-sync request-response protocol. They live here, beside the consensus messages
//! they carry, rather than in the node, so that fuzzers and tools decode them without
//! linking the node's storage.

use crate::message::ConsensusMessage;
use crate::CommitCertificate;
use atonomi_primitives::block::Block;
use atonomi_primitives::codec::{self, bounded};
use atonomi_primitives::{CodecError, Height};
use borsh::{BorshDeserialize, BorshSerialize};

/// Largest gossip message (a block with its transactions is the biggest).
pub const MAX_GOSSIP_BYTES: usize = 8 << 20;
/// Blocks per sync response.
pub const MAX_SYNC_BLOCKS: u32 = 16;
/// Largest encoded sync request.
pub const MAX_SYNC_REQUEST: usize = 64;
/// Largest encoded sync response.
pub const MAX_SYNC_RESPONSE: usize = 64 << 20;

/// Gossip on the consensus topic.
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
pub enum Gossip {
    /// `nonce` makes a re-sent message (Malachite rebroadcasts the last votes when a
    /// round stalls) a new gossip message: ids are content hashes, and gossipsub would
    /// otherwise drop the repeat as a duplicate for minutes — exactly when a healed
    /// partition needs it.
    Consensus { msg: ConsensusMessage, nonce: u64 },
    /// A proposed block's body; `nonce` as for votes (a proposer re-sends the body for
    /// a peer that restarted, which gossipsub would drop as a duplicate).
    Block { block: Block, nonce: u64 },
    /// The sender's committed height, every few seconds: how lagging nodes learn to sync.
    /// `seq` makes each one a new message (ids are content hashes).
    Status { height: Height, seq: u64 },
}

impl Gossip {
    pub fn to_bytes(&self) -> Vec<u8> {
        codec::encode(self)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Gossip, CodecError> {
        codec::decode(bytes, MAX_GOSSIP_BYTES)
    }
}

/// Transactions per gossip message on the transaction topic.
pub const MAX_GOSSIP_TXS: usize = 4096;

/// Gossip on the transaction topic: transactions a node admitted to its mempool, sent
/// together (one gossip message, one libp2p signature and one relay decision per
/// batch instead of per transaction).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct TxBatch {
    #[borsh(deserialize_with = "bounded::vec::<_, Vec<u8>, MAX_GOSSIP_TXS>")]
    pub txs: Vec<Vec<u8>>,
}

impl TxBatch {
    pub fn to_bytes(&self) -> Vec<u8> {
        codec::encode(self)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<TxBatch, CodecError> {
        codec::decode(bytes, MAX_GOSSIP_BYTES)
    }
}

/// Ask a peer for committed blocks from `from`, at most `max` of them.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SyncRequest {
    pub from: Height,
    pub max: u32,
}

/// Committed blocks with the certificates that prove them, in height order.
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
pub struct SyncResponse {
    #[borsh(deserialize_with = "bounded::vec::<_, (Block, CommitCertificate), 16>")]
    pub blocks: Vec<(Block, CommitCertificate)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_response_bound_matches_the_constant() {
        let mut bytes = codec::encode(&(MAX_SYNC_BLOCKS + 1));
        bytes.extend_from_slice(&[0u8; 32]);
        assert!(codec::decode::<SyncResponse>(&bytes, MAX_SYNC_RESPONSE).is_err());
        let empty = codec::encode(&SyncResponse { blocks: Vec::new() });
        assert!(codec::decode::<SyncResponse>(&empty, MAX_SYNC_RESPONSE).is_ok());
    }

    #[test]
    fn tx_batch_is_bounded_in_count_and_bytes() {
        let batch = TxBatch {
            txs: vec![vec![1, 2, 3], vec![]],
        };
        assert_eq!(TxBatch::from_bytes(&batch.to_bytes()), Ok(batch));
        let mut too_many = codec::encode(&((MAX_GOSSIP_TXS + 1) as u32));
        too_many.extend(std::iter::repeat_n(0u8, 4 * (MAX_GOSSIP_TXS + 1)));
        assert!(TxBatch::from_bytes(&too_many).is_err());
        assert!(matches!(
            TxBatch::from_bytes(&vec![0u8; MAX_GOSSIP_BYTES + 1]),
            Err(CodecError::TooLarge { .. })
        ));
    }

    #[test]
    fn gossip_rejects_trailing_bytes_and_oversize() {
        let mut bytes = Gossip::Status {
            height: Height(7),
            seq: 1,
        }
        .to_bytes();
        assert!(matches!(
            Gossip::from_bytes(&bytes),
            Ok(Gossip::Status {
                height: Height(7),
                seq: 1
            })
        ));
        bytes.push(0);
        assert!(Gossip::from_bytes(&bytes).is_err());
        assert!(matches!(
            Gossip::from_bytes(&vec![0u8; MAX_GOSSIP_BYTES + 1]),
            Err(CodecError::TooLarge { .. })
        ));
    }
}
