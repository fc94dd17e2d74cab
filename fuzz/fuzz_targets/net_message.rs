//! Every message a peer can send: consensus gossip (votes, proposals, certificates,
//! blocks, status), transaction batches (the other gossip topic, tried on the same bytes), block-sync requests and responses, and the WAL records a node
//! reads back from its own disk. The first byte picks the type, the rest is the
//! message. Decoding is bounded; whatever decodes is checked the way the node checks it
//! (signatures against the dev validator set, certificates, conversion into the
//! engine's types) and must re-encode to the same bytes.
#![no_main]

use atonomi_consensus::message::{ConsensusMessage, WalRecord, MAX_MESSAGE_BYTES};
use atonomi_consensus::net::{Gossip, SyncRequest, SyncResponse, TxBatch, MAX_SYNC_REQUEST, MAX_SYNC_RESPONSE};
use atonomi_consensus::CommitCertificate;
use atonomi_primitives::block::Block;
use atonomi_primitives::codec;
use atonomi_primitives::state::ValidatorSet;
use atonomi_primitives::ChainId;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn dev() -> &'static (ChainId, ValidatorSet) {
    static D: OnceLock<(ChainId, ValidatorSet)> = OnceLock::new();
    D.get_or_init(|| {
        let g = atonomi_genesis::dev::genesis();
        (g.chain_id.clone(), g.state().validators)
    })
}

fn check_consensus(m: &ConsensusMessage) {
    let (chain, set) = dev();
    match m {
        ConsensusMessage::Vote(v) => {
            let _ = atonomi_consensus::message::verify_vote_parts(chain, v.height, v.round, v.vote_type, v.block, &v.validator, &v.signature);
            let _ = v.to_mc();
        }
        ConsensusMessage::Proposal(p) => {
            let _ = p.to_mc();
        }
        ConsensusMessage::Polka(c) => {
            let _ = c.to_mc();
        }
        ConsensusMessage::RoundCertificate(c) => {
            let _ = c.to_mc();
        }
    }
    let _ = set.total_power();
}

fn check_certificate(b: &Block, c: &CommitCertificate) {
    let (chain, set) = dev();
    let _ = c.verify(chain, set);
    let _ = b.hash();
    let _ = b.header.tx_root;
}

fn roundtrip<T: borsh::BorshSerialize>(v: &T, bytes: &[u8]) {
    assert_eq!(codec::encode(v), bytes, "decoded from non-canonical bytes");
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else { return };
    match kind % 5 {
        0 => {
            if let Ok(g) = Gossip::from_bytes(body) {
                roundtrip(&g, body);
                match &g {
                    Gossip::Consensus { msg, .. } => check_consensus(msg),
                    Gossip::Block { block: b, .. } => {
                        let _ = b.hash();
                    }
                    Gossip::Status { .. } => {}
                }
            }
            if let Ok(b) = TxBatch::from_bytes(body) {
                roundtrip(&b, body);
                for t in &b.txs {
                    if let Ok(stx) = atonomi_primitives::SignedTransaction::from_bytes(t) {
                        let _ = stx.verify_signature();
                        assert_eq!(stx.hash(), atonomi_primitives::SignedTransaction::hash_of(t), "hash of the bytes is the hash of what they decode to");
                    }
                }
            }
        }
        1 => {
            if let Ok(m) = ConsensusMessage::from_bytes(body) {
                roundtrip(&m, body);
                let _ = m.height();
                check_consensus(&m);
            }
        }
        2 => {
            if let Ok(r) = codec::decode::<SyncRequest>(body, MAX_SYNC_REQUEST) {
                roundtrip(&r, body);
            }
        }
        3 => {
            if let Ok(r) = codec::decode::<SyncResponse>(body, MAX_SYNC_RESPONSE) {
                roundtrip(&r, body);
                for (b, c) in &r.blocks {
                    check_certificate(b, c);
                }
            }
        }
        _ => {
            if let Ok(w) = WalRecord::from_bytes(body) {
                roundtrip(&w, body);
                let _ = w.entry.to_input();
            }
            let _ = codec::decode::<WalRecord>(body, MAX_MESSAGE_BYTES);
        }
    }
});
