//! Files an operator hands the node: a genesis file (parsed, validated and turned into
//! the initial state) and `config.toml`. The first byte picks which; errors must be
//! typed, never a panic, and a genesis that validates must build its state.
#![no_main]

use atonomi_api::config::Config;
use atonomi_genesis::Genesis;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else { return };
    if kind % 2 == 0 {
        if let Ok(g) = Genesis::from_json(body) {
            let state = g.state();
            let _ = atonomi_runtime::genesis_diff(&state);
            // What we write reads back the same.
            let again = Genesis::from_json(g.to_json().as_bytes()).expect("a valid genesis re-reads");
            assert_eq!(again.to_json(), g.to_json());
        }
    } else if let Ok(text) = std::str::from_utf8(body) {
        let _ = Config::parse(text);
    }
});
