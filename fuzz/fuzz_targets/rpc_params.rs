//! JSON-RPC parameters as the server decodes them: every declared method's parameter
//! check (`check_params`, which runs before any method), each parameter type through
//! serde, and hex transactions. The first byte picks the case.
#![no_main]

use atonomi_api::rpc::{tx_bytes, BlockId, DiscoverParams, EventFilter, ValidateParams};
use atonomi_primitives::state::{StateKey, Subject};
use atonomi_primitives::{AccountId, DeviceId, Hash};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else { return };
    match kind % 11 {
        10 => {
            // The check the server runs on every call: any method, any parameters.
            let methods = atonomi_api::rpc::METHODS;
            let Some((&m, params)) = body.split_first() else { return };
            let name = methods[usize::from(m) % methods.len()].name;
            if let Ok(text) = std::str::from_utf8(params) {
                if let Ok(raw) = serde_json::from_str::<&serde_json::value::RawValue>(text) {
                    assert!(atonomi_api::rpc::check_params(name, Some(raw)).is_some());
                }
            }
            assert!(atonomi_api::rpc::check_params(name, None).is_some());
        }
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
