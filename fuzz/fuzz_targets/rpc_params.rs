//! JSON-RPC parameters as the server decodes them: each method's positional parameters
//! through serde into our types, and hex transactions. The first byte picks the method.
#![no_main]

use atonomi_api::rpc::{tx_bytes, BlockId, DiscoverParams, EventFilter, ValidateParams};
use atonomi_primitives::state::{StateKey, Subject};
use atonomi_primitives::{AccountId, DeviceId, Hash};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else { return };
    match kind % 10 {
        0 => {
            if let Ok((p,)) = serde_json::from_slice::<(ValidateParams,)>(body) {
                let _ = serde_json::to_string(&p);
            }
        }
        1 => {
            if let Ok((p,)) = serde_json::from_slice::<(DiscoverParams,)>(body) {
                let _ = p.check();
                assert!(p.limit() <= atonomi_api::rpc::MAX_DISCOVER);
            }
        }
        2 => {
            let _ = serde_json::from_slice::<(EventFilter,)>(body);
        }
        3 => {
            let _ = serde_json::from_slice::<(BlockId,)>(body);
        }
        4 => {
            if let Ok((k,)) = serde_json::from_slice::<(StateKey,)>(body) {
                let _ = k.to_bytes();
            }
        }
        5 => {
            let _ = serde_json::from_slice::<(Subject, String)>(body);
        }
        6 => {
            let _ = serde_json::from_slice::<(DeviceId,)>(body);
            let _ = serde_json::from_slice::<(AccountId,)>(body);
            let _ = serde_json::from_slice::<(Hash,)>(body);
        }
        7 => {
            if let Ok((t,)) = serde_json::from_slice::<(String,)>(body) {
                if let Ok(bytes) = tx_bytes(&t) {
                    assert!(bytes.len() <= atonomi_api::rpc::MAX_TX_HEX / 2);
                    let _ = atonomi_primitives::tx::SignedTransaction::from_bytes(&bytes);
                }
            }
        }
        8 => {
            if let Ok((txs,)) = serde_json::from_slice::<(Vec<String>,)>(body) {
                for t in txs.iter().take(atonomi_api::rpc::MAX_TX_BATCH) {
                    let _ = tx_bytes(t);
                }
            }
        }
        _ => {
            let _ = serde_json::from_slice::<(u32,)>(body);
            let _ = serde_json::from_slice::<serde_json::Value>(body);
        }
    }
});
