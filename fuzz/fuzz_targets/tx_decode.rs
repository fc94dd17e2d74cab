//! Transaction bytes from the network or RPC: bounded borsh decoding, the canonical
//! encoding (one byte string per transaction: no malleable re-encodings), signature
//! checks, the JSON form, and the runtime's stateless admission check.
#![no_main]

use atonomi_primitives::tx::SignedTransaction;
use atonomi_runtime::{precheck, MemoryState, SigCheck};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(stx) = SignedTransaction::from_bytes(data) {
        // Canonical: decoding accepted these bytes, so they are the only encoding.
        assert_eq!(stx.to_bytes(), data, "a transaction decoded from non-canonical bytes");
        let _ = stx.verify_signature();
        let _ = stx.hash();
        // JSON round trip of whatever decoded.
        let json = serde_json::to_vec(&stx).expect("serialising a decoded transaction");
        let back: SignedTransaction = serde_json::from_slice(&json).expect("reading back our own JSON");
        assert_eq!(back, stx);
    }
    let state = MemoryState::default();
    let chain = atonomi_primitives::ChainId::new("atonomi-dev").expect("dev chain id");
    let _ = precheck(&state, &chain, data, SigCheck::Verify);
    // JSON transactions (the RPC's and the CLI's form).
    let _ = serde_json::from_slice::<SignedTransaction>(data);
});
