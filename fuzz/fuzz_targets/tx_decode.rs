//! Transaction bytes from the network or RPC: bounded borsh decoding, the canonical
//! encoding (one byte string per transaction: no malleable re-encodings), signature
//! checks (the single and the batch path must agree, and admission must agree with
//! them), the JSON form, and the runtime's stateless admission check.
#![no_main]

use atonomi_primitives::crypto::{self, SignatureCheck};
use atonomi_primitives::tx::SignedTransaction;
use atonomi_primitives::Keypair;
use atonomi_runtime::{precheck, MemoryState, SigCheck};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Each path decides for itself (no answers remembered from earlier inputs).
    crypto::bypass_verified_cache_on_this_thread();
    if let Ok(stx) = SignedTransaction::from_bytes(data) {
        // Canonical: decoding accepted these bytes, so they are the only encoding.
        assert_eq!(stx.to_bytes(), data, "a transaction decoded from non-canonical bytes");
        let single = stx.verify_signature().is_ok();
        // Settled inside a batch of honest signatures, the answer is the same.
        let mut batch = honest_checks().to_vec();
        batch.insert(2, stx.signature_check());
        assert_eq!(crypto::verify_each(&batch)[2], single, "batch and single disagree");
        assert_eq!(crypto::verify_all(&batch), single, "all-or-nothing batch disagrees");
        let _ = stx.hash();
        // JSON round trip of whatever decoded.
        let json = serde_json::to_vec(&stx).expect("serialising a decoded transaction");
        let back: SignedTransaction = serde_json::from_slice(&json).expect("reading back our own JSON");
        assert_eq!(back, stx);
    }
    let state = MemoryState::default();
    let chain = atonomi_primitives::ChainId::new("atonomi-dev").expect("dev chain id");
    if precheck(&state, &chain, data, SigCheck::Verify).is_ok() {
        let stx = SignedTransaction::from_bytes(data).expect("admitted bytes decode");
        assert!(stx.verify_signature().is_ok(), "admitted with a signature the rule refuses");
    }
    // JSON transactions (the RPC's and the CLI's form).
    let _ = serde_json::from_slice::<SignedTransaction>(data);
});

/// Four valid signatures to surround the fuzzed one (computed once).
fn honest_checks() -> &'static [SignatureCheck] {
    static CHECKS: std::sync::OnceLock<Vec<SignatureCheck>> = std::sync::OnceLock::new();
    CHECKS.get_or_init(|| {
        (0..4u8)
            .map(|i| {
                let k = Keypair::from_label(&format!("fuzz honest {i}"));
                let msg = [i; 8];
                SignatureCheck::new(&k.account(), "fuzz", &msg, &k.sign("fuzz", &msg))
            })
            .collect()
    })
}
