//! Transactions through the runtime: sequences of calls, signed by the dev genesis
//! accounts and three registered, activated devices, executed in blocks against the
//! dev genesis state.
//!
//! Input: records `[signer selector][borsh Call]`, a selector of 0xFF ends a block.
//! To let the fuzzer name real parties, a 32-byte run of 0xA0..=0xA5 in the input is
//! replaced by the account of the dev key with that index, and 0xB1..=0xB3 by a
//! device's key; the devices' ids are the runs of 0xD1..=0xD3 themselves.
//!
//! Checked: no panic; execution is deterministic (twice, the same output); the token
//! supply is conserved (account balances and manufacturer pools sum to the total
//! supply).
#![no_main]

use atonomi_genesis::dev;
use atonomi_primitives::state::{Account, Manufacturer, StateKey, TokenInfo};
use atonomi_primitives::tx::{sign_activation, Call, DeviceRegistration, Transaction};
use atonomi_primitives::{AccountId, ChainId, DeviceId, Height, Keypair, Timestamp};
use atonomi_runtime::BlockContext;
use atonomi_runtime::{execute_block, genesis_diff, MemoryState, SigCheck, StateReader};
use borsh::BorshDeserialize;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

struct Fixture {
    chain: ChainId,
    signers: Vec<Keypair>,
    state: MemoryState,
}

fn device_key(i: u8) -> Keypair {
    Keypair::from_seed([0xB0 + i; 32])
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let g = dev::genesis();
        let chain = g.chain_id.clone();
        let mut state = MemoryState::default();
        state.apply(&genesis_diff(&g.state()).expect("dev genesis"));
        let mut signers: Vec<Keypair> = dev::NAMES.iter().map(|n| dev::key(n)).collect();
        let maker = dev::key("manufacturer");
        let alice = dev::key("alice").account();
        let mut txs = Vec::new();
        let nonce = account(&state, &maker.account()).nonce;
        for i in 1..=3u8 {
            let key = device_key(i);
            let device = DeviceId::new([0xD0 + i; 32]);
            let call = Call::RegisterAndActivate {
                manufacturer: dev::MANUFACTURER,
                device: DeviceRegistration { device_id: device, public_key: key.account(), protocols: vec![], metadata: vec![] },
                owner: alice,
                device_signature: sign_activation(&key, &chain, &device, &alice),
            };
            let tx = Transaction { chain_id: chain.clone(), signer: maker.account(), nonce: nonce + u64::from(i) - 1, max_fee: None, call };
            txs.push(tx.sign(&maker).to_bytes());
            signers.push(key);
        }
        let out = execute_block(&state, &block(&chain, 1), &txs, SigCheck::Verify).expect("setup block");
        for r in &out.receipts {
            assert_eq!(r.status, atonomi_primitives::event::TxStatus::Success, "setup: {r:?}");
        }
        state.apply(&out.diff);
        Fixture { chain, signers, state }
    })
}

fn block(chain: &ChainId, h: u64) -> BlockContext {
    BlockContext { chain_id: chain.clone(), height: Height::new(h), timestamp: Timestamp::new(1_800_000_000_000 + h * 1000), upgrades: Default::default() }
}

fn account(state: &MemoryState, a: &AccountId) -> Account {
    state
        .get(&StateKey::Account(*a).to_bytes())
        .expect("memory state")
        .map(|v| borsh::from_slice(&v).expect("account record"))
        .unwrap_or_default()
}

fn supply_holds(state: &MemoryState) {
    let prefix = StateKey::Account(AccountId::new([0; 32])).to_bytes()[0];
    let info: TokenInfo = borsh::from_slice(&state.get(&StateKey::Token.to_bytes()).expect("read").expect("token info")).expect("token info");
    let maker_prefix = StateKey::Manufacturer(dev::MANUFACTURER).to_bytes()[0];
    let mut sum: u128 = 0;
    for (k, v) in &state.0 {
        let held = if k.first() == Some(&prefix) && k.len() == 33 {
            borsh::from_slice::<Account>(v).expect("account record").balance
        } else if k.first() == Some(&maker_prefix) {
            // Registration and activation fees sit in the manufacturer's pool.
            borsh::from_slice::<Manufacturer>(v).expect("manufacturer record").pool
        } else {
            continue;
        };
        sum = sum.checked_add(held.get()).expect("holdings overflow u128");
    }
    assert_eq!(sum, info.total_supply.get(), "token supply not conserved");
}

/// Replaces 32-byte runs of alias bytes by the parties they stand for.
fn resolve_aliases(f: &Fixture, data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    let mut i = 0;
    while i + 32 <= out.len() {
        let b = out[i];
        let target = match b {
            0xA0..=0xA5 => Some(f.signers[usize::from(b - 0xA0)].account()),
            0xB1..=0xB3 => Some(device_key(b - 0xB0).account()),
            _ => None,
        };
        if let Some(t) = target {
            if out[i..i + 32].iter().all(|&x| x == b) {
                out[i..i + 32].copy_from_slice(t.as_bytes());
                i += 32;
                continue;
            }
        }
        i += 1;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let data = resolve_aliases(f, data);
    let mut rest: &[u8] = &data;
    let mut state = f.state.clone();
    let mut height = 2;
    let mut nonces: std::collections::BTreeMap<AccountId, u64> = Default::default();
    let mut txs: Vec<Vec<u8>> = Vec::new();
    let mut blocks = 0;
    loop {
        let selector = rest.first().copied();
        let end_block = selector.is_none() || selector == Some(0xFF) || txs.len() >= 32;
        if end_block && !txs.is_empty() {
            let ctx = block(&f.chain, height);
            let a = execute_block(&state, &ctx, &txs, SigCheck::Trusted).expect("execution of well-formed state");
            let b = execute_block(&state, &ctx, &txs, SigCheck::Verify).expect("execution of well-formed state");
            assert_eq!(a, b, "execution is not deterministic (or trusted/verified signatures differ)");
            state.apply(&a.diff);
            supply_holds(&state);
            txs.clear();
            nonces.clear();
            height += 1;
            blocks += 1;
        }
        let Some(sel) = selector else { break };
        rest = &rest[1..];
        if sel == 0xFF || blocks >= 4 {
            if blocks >= 4 {
                break;
            }
            continue;
        }
        let Ok(call) = Call::deserialize(&mut rest) else { break };
        let key = &f.signers[usize::from(sel) % f.signers.len()];
        let signer = key.account();
        let nonce = *nonces.entry(signer).or_insert_with(|| account(&state, &signer).nonce);
        nonces.insert(signer, nonce + 1);
        let tx = Transaction { chain_id: f.chain.clone(), signer, nonce, max_fee: None, call };
        txs.push(tx.sign(key).to_bytes());
    }
});
