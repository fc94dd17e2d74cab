//! Writes the seed corpus of each fuzz target (`scripts/fuzz.sh` runs it first): real
//! encodings of every message type, the dev genesis, the config template, RPC
//! parameters and signed calls, so the fuzzers start from valid inputs.
//! Usage: cargo run --example seeds -- DIR

use atonomi_consensus::message::{ConsensusMessage, WireVote};
use atonomi_consensus::net::{Gossip, SyncRequest, SyncResponse};
use atonomi_consensus::vote::VoteType;
use atonomi_consensus::CommitCertificate;
use atonomi_genesis::dev;
use atonomi_primitives::codec;
use atonomi_primitives::tx::{Call, Outcome, Transaction};
use atonomi_primitives::{Amount, DeviceId, Hash, Height};
use std::path::Path;

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let d = dir.join(target);
    std::fs::create_dir_all(&d).expect("creating the seed directory");
    std::fs::write(d.join(name), bytes).expect("writing a seed");
}

fn tagged(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(body);
    v
}

fn main() {
    let dir = std::env::args().nth(1).expect("usage: seeds DIR");
    let dir = Path::new(&dir);
    let g = dev::genesis();
    let admin = dev::key("admin");
    let alice = dev::key("alice");
    let d1 = DeviceId::new([0xD1; 32]);
    let d2 = DeviceId::new([0xD2; 32]);

    // Transactions, signed, as bytes and JSON.
    let calls = vec![
        Call::Transfer { to: alice.account(), amount: Amount::new(5) },
        Call::Pay { from_device: d1, to_device: d2, amount: Amount::new(1), memo: b"m".to_vec() },
        Call::ReportInteraction { device: d1, peer: d2, outcome: Outcome::Failure, receipt: Hash([7; 32]) },
        Call::AnchorLog { device: d1, hash: Hash([9; 32]), kind: "log".into(), parties: vec![d2] },
        Call::SuspendDevice { device: d2 },
        Call::TransferDevice { device: d1, to: admin.account(), with_wallet: false },
    ];
    for (i, call) in calls.iter().enumerate() {
        let tx = Transaction { chain_id: g.chain_id.clone(), signer: admin.account(), nonce: 0, max_fee: None, call: call.clone() }.sign(&admin);
        write(dir, "tx_decode", &format!("tx{i}"), &tx.to_bytes());
        write(dir, "tx_decode", &format!("json{i}"), serde_json::to_string(&tx).expect("json").as_bytes());
        // tx_execute: [selector][borsh call], with aliases (0xA4 = alice, 0xB1 = device 1).
        let mut rec = vec![u8::try_from(i).expect("small") % 9];
        rec.extend(codec::encode(call));
        write(dir, "tx_execute", &format!("call{i}"), &rec);
        write(dir, "rpc_params", &format!("tx{i}"), &tagged(7, format!("[\"{}\"]", hex_of(&tx.to_bytes())).as_bytes()));
    }
    let mut seq = Vec::new();
    for (sel, call) in [(6u8, calls[1].clone()), (7, Call::Pay { from_device: d2, to_device: d1, amount: Amount::new(2), memo: vec![] }), (0xFF, calls[0].clone()), (6, calls[2].clone())] {
        seq.push(sel);
        if sel != 0xFF {
            seq.extend(codec::encode(&call));
        }
    }
    write(dir, "tx_execute", "sequence", &seq);

    // Network messages.
    let vote = WireVote { height: Height::new(1), round: 0, vote_type: VoteType::Precommit, block: Some(Hash([1; 32])), validator: admin.account(), signature: atonomi_primitives::Signature([0; 64]) };
    let msg = ConsensusMessage::Vote(vote);
    write(dir, "net_message", "gossip_vote", &tagged(0, &Gossip::Consensus { msg: msg.clone(), nonce: 3 }.to_bytes()));
    write(dir, "net_message", "gossip_status", &tagged(0, &Gossip::Status { height: Height::new(9), seq: 1 }.to_bytes()));
    write(dir, "net_message", "vote", &tagged(1, &msg.to_bytes()));
    let transfer = Transaction { chain_id: g.chain_id.clone(), signer: admin.account(), nonce: 0, max_fee: None, call: Call::Transfer { to: admin.account(), amount: Amount::new(1) } }.sign(&admin);
    write(dir, "net_message", "tx_batch", &tagged(0, &atonomi_consensus::net::TxBatch { txs: vec![transfer.to_bytes(), vec![1, 2, 3]] }.to_bytes()));
    write(dir, "net_message", "sync_request", &tagged(2, &codec::encode(&SyncRequest { from: Height::new(1), max: 16 })));
    let cert = CommitCertificate { height: Height::new(1), round: 0, block: Hash([1; 32]), signatures: vec![(admin.account(), atonomi_primitives::Signature([0; 64]))] };
    write(dir, "net_message", "sync_response_empty", &tagged(3, &codec::encode(&SyncResponse { blocks: vec![] })));
    write(dir, "net_message", "certificate", &codec::encode(&cert));

    // Operator files.
    write(dir, "genesis_config", "genesis", &tagged(0, g.to_json().as_bytes()));
    write(dir, "genesis_config", "config", &tagged(1, atonomi_api::config::CONFIG_TEMPLATE.as_bytes()));

    // RPC parameters.
    let dev_hex = hex_of(&[0xD1; 32]);
    write(dir, "rpc_params", "validate", &tagged(0, format!("[{{\"device\":\"{dev_hex}\",\"min_reputation\":10}}]").as_bytes()));
    write(dir, "rpc_params", "discover", &tagged(1, br#"[{"service_type":"charging","area":{"min":{"lat_e6":1,"lon_e6":2},"max":{"lat_e6":3,"lon_e6":4}},"limit":5}]"#));
    write(dir, "rpc_params", "filter", &tagged(2, br#"[{"events":["device_activated"],"involving":"ab"}]"#));
    write(dir, "rpc_params", "block", &tagged(3, b"[12]"));
    // The declared-parameter check: method 5 with a good and a bad account.
    write(dir, "rpc_params", "check-good", &tagged(10, &[&[5u8][..], format!("[\"{dev_hex}\"]").as_bytes()].concat()));
    write(dir, "rpc_params", "check-bad", &tagged(10, &[&[7u8][..], br#"{"owner":1,"x":[]}"#].concat()));
    write(dir, "rpc_params", "state_key", &tagged(4, serde_json::to_string(&(atonomi_primitives::state::StateKey::Device(d1),)).expect("json").as_bytes()));

    // Proofs: a genesis state with nothing but the sentinel proves any key absent.
    use atonomi_primitives::statelog as sl;
    let mut bits = [0u8; sl::BITMAP_BYTES];
    bits[0] = 1;
    let proof = sl::LogProof {
        serial: 0,
        key: Vec::new(),
        next: Vec::new(),
        value_hash: sl::value_hash(&[]),
        twig: std::array::from_fn(|i| sl::null_twig_node(i as u32)),
        bits,
        null_upper: (1 << sl::UPPER_DEPTH) - 1,
        upper: Vec::new(),
    };
    let mut p = proof.root().expect("a well-formed proof").0.to_vec();
    p.extend([3, b'k', b'e', b'y', 0, 0, 0]);
    p.extend(proof.to_bytes());
    write(dir, "state_proof", "sentinel", &p);
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
