//! Light-client proof verification: arbitrary proof bytes against an arbitrary root,
//! key and value. Input: `[32-byte root][u8 key length][key][u8: 0 = absent, else
//! present][u16 value length][value][proof bytes]`.
//!
//! Checked: no panic; and soundness where the fuzzer can reach it — a proof that
//! verifies a key's absence must not also verify a value for it, and one that
//! verifies a value must not verify a different value.
#![no_main]

use atonomi_primitives::proof::{verify_raw, StateProof};
use atonomi_primitives::Hash;
use libfuzzer_sys::fuzz_target;

fn take<'a>(data: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if data.len() < n {
        return None;
    }
    let (a, b) = data.split_at(n);
    *data = b;
    Some(a)
}

fuzz_target!(|data: &[u8]| {
    let mut d = data;
    let Some(root) = take(&mut d, 32) else { return };
    let root = Hash(root.try_into().expect("32 bytes"));
    let Some(&[klen]) = take(&mut d, 1) else { return };
    let Some(key) = take(&mut d, usize::from(klen)) else { return };
    let Some(&[present]) = take(&mut d, 1) else { return };
    let Some(vlen) = take(&mut d, 2) else { return };
    let Some(value) = take(&mut d, usize::from(u16::from_le_bytes([vlen[0], vlen[1]]))) else { return };
    let Ok(proof) = StateProof::from_bytes(d) else { return };
    let value = (present != 0).then_some(value);
    if verify_raw(root, key, value, &proof).is_ok() {
        match value {
            None => assert!(verify_raw(root, key, Some(b"x"), &proof).is_err(), "absence and presence both proven"),
            Some(v) => {
                let mut other = v.to_vec();
                other.push(1);
                assert!(verify_raw(root, key, Some(&other), &proof).is_err(), "two values proven for one key");
                assert!(verify_raw(root, key, None, &proof).is_err(), "presence and absence both proven");
            }
        }
    }
});
