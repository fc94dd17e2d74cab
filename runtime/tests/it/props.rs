//! Property tests: token supply is conserved, a device id is never registered twice,
//! and the same blocks give the same root on memory and on RocksDB.

use crate::fixture::*;
use atonomi_genesis::dev;
use atonomi_primitives::event::{Event, TxStatus};
use atonomi_primitives::gov::{GovAction, PoolAccount};
use atonomi_primitives::state::{Direction, Subject};
use atonomi_primitives::tx::{Call, ReputationWrite};
use atonomi_primitives::{
    Amount, DeviceId, Hash, Height, Keypair, SignedTransaction, Timestamp, Transaction,
};
use atonomi_runtime::{execute_block, genesis_diff, BlockContext, SigCheck};
use atonomi_storage::{KvStore, MemoryStore, RocksConfig, RocksStore, StateDb};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// One random operation: (kind, actor, other, amount).
type Op = (u8, u8, u8, u16);

struct Sim {
    keys: Vec<Keypair>,
    devices: Vec<TestDevice>,
    nonces: BTreeMap<atonomi_primitives::AccountId, u64>,
}

impl Sim {
    fn new() -> Sim {
        let a = Actors::new();
        let keys = vec![a.admin, a.maker, a.auditor, a.alice, a.bob, a.stranger];
        let devices = (0..6)
            .map(|i| TestDevice::new(&format!("prop{i}")))
            .collect();
        Sim {
            keys,
            devices,
            nonces: BTreeMap::new(),
        }
    }

    fn call(&self, chain: &Chain, (kind, actor, other, amount): Op) -> (usize, Call) {
        let n = self.keys.len();
        let who = actor as usize % n;
        let to = self.keys[other as usize % n].account();
        let amt = Amount::new(u128::from(amount) * Amount::ONE_ATMI / 100);
        let dev = &self.devices[other as usize % self.devices.len()];
        let call = match kind % 12 {
            0 => Call::Transfer { to, amount: amt },
            1 => Call::Approve {
                spender: to,
                amount: amt,
            },
            2 => Call::TransferFrom {
                from: to,
                to: self.keys[who].account(),
                amount: amt,
            },
            3 => Call::Burn { amount: amt },
            4 => Call::DepositToPool {
                manufacturer: M,
                amount: amt,
            },
            5 => {
                return (
                    1,
                    Call::RegisterDevices {
                        manufacturer: M,
                        devices: vec![dev.registration()],
                    },
                )
            }
            6 => {
                let owner = self.keys[who].account();
                return (
                    who,
                    Call::ActivateDevice {
                        device: dev.id,
                        device_signature: dev.consent(chain, owner),
                    },
                );
            }
            7 => {
                let w = ReputationWrite {
                    subject: Subject::Device(dev.id),
                    rep_type: "trust".into(),
                    score: score(u32::from(amount)),
                    direction: Direction::Up,
                };
                return (
                    2,
                    Call::WriteReputation {
                        auditor: A,
                        entries: vec![w],
                    },
                );
            }
            8 => {
                // Devices pay each other (signed by the device key, index n + d).
                let payee = &self.devices[actor as usize % self.devices.len()];
                return (
                    n + other as usize % self.devices.len(),
                    Call::Pay {
                        from_device: dev.id,
                        to_device: payee.id,
                        amount: amt,
                        memo: vec![],
                    },
                );
            }
            9 => return (1, Call::RevokeDevice { device: dev.id }),
            10 => Call::Transfer {
                to: dev.key.account(),
                amount: amt,
            },
            _ => {
                return (
                    0,
                    Call::Propose {
                        action: GovAction::TreasuryPayout {
                            from: PoolAccount::Treasury,
                            to,
                            amount: amt,
                        },
                    },
                )
            }
        };
        (who, call)
    }

    fn key(&self, i: usize) -> &Keypair {
        if i < self.keys.len() {
            &self.keys[i]
        } else {
            &self.devices[i - self.keys.len()].key
        }
    }

    /// Builds a block of signed transactions for `ops`, tracking nonces.
    fn block(&mut self, chain: &Chain, ops: &[Op]) -> Vec<SignedTransaction> {
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            let (who, call) = self.call(chain, *op);
            let signer = self.key(who).account();
            let nonce = *self
                .nonces
                .entry(signer)
                .or_insert_with(|| chain.nonce(signer));
            self.nonces.insert(signer, nonce + 1);
            out.push(
                Transaction {
                    chain_id: chain.chain_id.clone(),
                    signer,
                    nonce,
                    max_fee: None,
                    call,
                }
                .sign(self.key(who)),
            );
        }
        out
    }
}

fn ops() -> impl Strategy<Value = Vec<Vec<Op>>> {
    prop::collection::vec(
        prop::collection::vec((any::<u8>(), any::<u8>(), any::<u8>(), any::<u16>()), 1..8),
        1..12,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn supply_is_conserved(blocks in ops()) {
        let mut chain = Chain::dev();
        let mut sim = Sim::new();
        let mut supply = chain.total_supply();
        for ops in blocks {
            let txs = sim.block(&chain, &ops);
            let receipts = chain.block(txs);
            let burnt: u128 = receipts.iter().flat_map(|r| &r.events).map(|e| match e {
                Event::Burned { amount, .. } => amount.get(),
                _ => 0,
            }).sum();
            supply -= burnt;
            prop_assert_eq!(chain.total_supply(), supply);
            prop_assert_eq!(chain.tokens_in_existence(), supply);
            // Nonces only move on included transactions.
            sim.nonces.clear();
        }
    }

    #[test]
    fn a_device_id_is_never_registered_twice(blocks in ops()) {
        let mut chain = Chain::dev();
        let mut sim = Sim::new();
        let mut registered: BTreeMap<DeviceId, u32> = BTreeMap::new();
        for ops in blocks {
            // Bias towards registrations and revocations.
            let ops: Vec<Op> = ops.iter().map(|(k, a, o, m)| (if k % 2 == 0 { 5 } else { 9 }, *a, *o, *m)).collect();
            let txs = sim.block(&chain, &ops);
            for r in chain.block(txs) {
                for e in &r.events {
                    if let Event::DeviceRegistered { device, .. } = e {
                        *registered.entry(*device).or_default() += 1;
                    }
                }
            }
            sim.nonces.clear();
        }
        prop_assert!(registered.values().all(|n| *n == 1), "{:?}", registered);
    }
}

/// Runs blocks against an authenticated store, committing each.
fn run_on<S: KvStore>(db: &StateDb<S>, blocks: &[Vec<Vec<u8>>]) -> Vec<Hash> {
    let g = dev::genesis();
    let mut roots = vec![db.commit(&genesis_diff(&g.state()).unwrap(), 0).unwrap()];
    for (i, txs) in blocks.iter().enumerate() {
        let h = i as u64 + 1;
        let ctx = BlockContext {
            chain_id: g.chain_id.clone(),
            height: Height::new(h),
            timestamp: Timestamp::new(g.genesis_time_ms + h * 1_000),
            upgrades: Default::default(),
        };
        let reader = |k: &[u8]| db.get(k);
        let out = execute_block(&reader, &ctx, txs, SigCheck::Verify).unwrap();
        roots.push(db.commit(&out.diff, h).unwrap());
    }
    roots
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn memory_and_rocksdb_agree_on_roots(blocks in ops()) {
        // Build the blocks once against the in-memory chain (for nonces and consents).
        let mut chain = Chain::dev();
        let mut sim = Sim::new();
        let mut raw = Vec::new();
        for ops in &blocks {
            let txs = sim.block(&chain, ops);
            let bytes: Vec<Vec<u8>> = txs.iter().map(|t| t.to_bytes()).collect();
            chain.block_raw(bytes.clone());
            raw.push(bytes);
            sim.nonces.clear();
        }
        let mem = StateDb::open(MemoryStore::new()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let rocks = StateDb::open(RocksStore::open(dir.path(), &RocksConfig { sync_writes: false, ..RocksConfig::default() }).unwrap()).unwrap();
        let a = run_on(&mem, &raw);
        let b = run_on(&rocks, &raw);
        prop_assert_eq!(&a, &b);
        // And the flat state equals the in-memory chain's state.
        for (k, v) in &chain.state.0 {
            let stored = rocks.get(k).unwrap();
            prop_assert_eq!(stored.as_ref(), Some(v));
        }
    }
}

#[test]
fn roots_change_with_state_and_only_with_state() {
    let mut chain = Chain::dev();
    let a = Actors::new();
    let mem = StateDb::open(MemoryStore::new()).unwrap();
    let transfer = chain.tx(
        &a.alice,
        atonomi_primitives::tx::Call::Transfer {
            to: a.bob.account(),
            amount: atmi(1),
        },
    );
    chain.block(vec![transfer.clone()]);
    let bad = vec![0xffu8; 10];
    let roots = run_on(&mem, &[vec![bad], vec![transfer.to_bytes()]]);
    assert_eq!(
        roots[0], roots[1],
        "a block of invalid transactions keeps the root"
    );
    assert_ne!(roots[1], roots[2]);
    let _ = TxStatus::Success;
}
