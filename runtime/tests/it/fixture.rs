//! A chain in memory driven block by block.

use atonomi_genesis::dev;
use atonomi_primitives::event::{Event, Receipt, TxStatus};
use atonomi_primitives::gov::{GovAction, NewAuditor, NewManufacturer};
use atonomi_primitives::state::{Account, Device, Manufacturer, StateKey};
use atonomi_primitives::tx::{sign_activation, Call, DeviceRegistration};
use atonomi_primitives::{
    codec, AccountId, Amount, AuditorId, CallError, ChainId, DeviceId, Height, Keypair,
    ManufacturerId, Score, SignedTransaction, Timestamp, Transaction,
};
use atonomi_runtime::{execute_block, genesis_diff, BlockContext, MemoryState, SigCheck};
use borsh::BorshDeserialize;

pub fn atmi(n: u128) -> Amount {
    Amount::new(n * Amount::ONE_ATMI)
}

#[derive(Clone)]
pub struct Chain {
    pub state: MemoryState,
    pub height: u64,
    pub time_ms: u64,
    pub chain_id: ChainId,
}

impl Chain {
    /// The dev genesis.
    pub fn dev() -> Chain {
        let g = dev::genesis();
        let mut state = MemoryState::default();
        state.apply(&genesis_diff(&g.state()).unwrap());
        Chain {
            state,
            height: 0,
            time_ms: g.genesis_time_ms,
            chain_id: g.chain_id,
        }
    }

    pub fn ctx(&self) -> BlockContext {
        BlockContext {
            chain_id: self.chain_id.clone(),
            height: Height::new(self.height + 1),
            timestamp: Timestamp::new(self.time_ms + 1_000),
            upgrades: Default::default(),
        }
    }

    /// Executes one block of raw transactions, one second after the previous block.
    pub fn block_raw(&mut self, txs: Vec<Vec<u8>>) -> Vec<Receipt> {
        let ctx = self.ctx();
        let out = execute_block(&self.state, &ctx, &txs, SigCheck::Verify).unwrap();
        self.state.apply(&out.diff);
        self.height += 1;
        self.time_ms += 1_000;
        out.receipts
    }

    pub fn block(&mut self, txs: Vec<SignedTransaction>) -> Vec<Receipt> {
        self.block_raw(txs.iter().map(|t| t.to_bytes()).collect())
    }

    pub fn advance_ms(&mut self, ms: u64) {
        self.time_ms += ms;
    }

    pub fn nonce(&self, a: AccountId) -> u64 {
        self.account(a).nonce
    }

    pub fn tx(&self, key: &Keypair, call: Call) -> SignedTransaction {
        Transaction {
            chain_id: self.chain_id.clone(),
            signer: key.account(),
            nonce: self.nonce(key.account()),
            max_fee: None,
            call,
        }
        .sign(key)
    }

    /// Signs and executes `call` alone in a block.
    pub fn send(&mut self, key: &Keypair, call: Call) -> Receipt {
        let tx = self.tx(key, call);
        self.block(vec![tx]).remove(0)
    }

    pub fn ok(&mut self, key: &Keypair, call: Call) -> Receipt {
        let name = call.name();
        let r = self.send(key, call);
        assert_eq!(r.status, TxStatus::Success, "{name} should succeed");
        r
    }

    pub fn fails(&mut self, key: &Keypair, call: Call, err: CallError) {
        let name = call.name();
        let before_nonce = self.nonce(key.account());
        let before = self.state.clone();
        let r = self.send(key, call);
        assert_eq!(
            r.status,
            TxStatus::Failed(err),
            "{name} should fail with {err:?}"
        );
        // Only the nonce changed.
        let mut expected = before;
        let acct = Account {
            nonce: before_nonce + 1,
            ..self.account(key.account())
        };
        expected.0.insert(
            StateKey::Account(key.account()).to_bytes(),
            codec::encode(&acct),
        );
        assert_eq!(self.state.0, expected.0, "{name} failed but changed state");
    }

    pub fn get<T: BorshDeserialize>(&self, key: StateKey) -> Option<T> {
        self.state
            .0
            .get(&key.to_bytes())
            .map(|b| codec::decode(b, usize::MAX).unwrap())
    }

    pub fn account(&self, a: AccountId) -> Account {
        self.get(StateKey::Account(a)).unwrap_or_default()
    }

    pub fn balance(&self, a: AccountId) -> Amount {
        self.account(a).balance
    }

    pub fn device(&self, d: DeviceId) -> Device {
        self.get(StateKey::Device(d)).expect("device exists")
    }

    pub fn manufacturer(&self, m: ManufacturerId) -> Manufacturer {
        self.get(StateKey::Manufacturer(m))
            .expect("manufacturer exists")
    }

    /// Sum of all balances and manufacturer pools.
    pub fn tokens_in_existence(&self) -> u128 {
        let mut sum = 0u128;
        for (k, v) in &self.state.0 {
            match k[0] {
                atonomi_primitives::state::tag::ACCOUNT => {
                    sum += codec::decode::<Account>(v, usize::MAX)
                        .unwrap()
                        .balance
                        .get()
                }
                atonomi_primitives::state::tag::MANUFACTURER => {
                    sum += codec::decode::<Manufacturer>(v, usize::MAX)
                        .unwrap()
                        .pool
                        .get()
                }
                _ => {}
            }
        }
        sum
    }

    pub fn total_supply(&self) -> u128 {
        let t: atonomi_primitives::state::TokenInfo = self.get(StateKey::Token).unwrap();
        t.total_supply.get()
    }

    /// Runs a governance action through the dev admin (threshold 1).
    pub fn govern(&mut self, action: GovAction) -> Receipt {
        let r = self.ok(&dev::key("admin"), Call::Propose { action });
        assert!(
            r.events
                .iter()
                .any(|e| matches!(e, Event::ProposalExecuted { .. })),
            "action failed: {:?}",
            r.events
        );
        r
    }

    /// An admin's proposal whose action fails with `err` (the proposal stays, failed).
    pub fn govern_fails(&mut self, action: GovAction, err: CallError) {
        let r = self.ok(&dev::key("admin"), Call::Propose { action });
        assert!(
            r.events
                .iter()
                .any(|e| matches!(e, Event::ProposalFailed { error, .. } if *error == err)),
            "expected {err:?}, got {:?}",
            r.events
        );
    }
}

/// Named actors on top of the dev genesis.
pub struct Actors {
    pub admin: Keypair,
    pub maker: Keypair,
    pub auditor: Keypair,
    pub alice: Keypair,
    pub bob: Keypair,
    pub stranger: Keypair,
}

impl Actors {
    pub fn new() -> Actors {
        Actors {
            admin: dev::key("admin"),
            maker: dev::key("manufacturer"),
            auditor: dev::key("auditor"),
            alice: dev::key("alice"),
            bob: dev::key("bob"),
            stranger: Keypair::from_label("stranger"),
        }
    }
}

pub const M: ManufacturerId = dev::MANUFACTURER;

/// A validator to add to the dev set (power 5, operated by the dev manufacturer), with
/// its consensus key.
pub fn second_validator() -> (Keypair, atonomi_primitives::state::Validator) {
    let vkey = Keypair::from_label("validator2");
    let v = atonomi_primitives::state::Validator {
        consensus_key: vkey.account(),
        peer_id: vec![2],
        bridge_address: [2; 20],
        power: 5,
        operator: M,
    };
    (vkey, v)
}
pub const A: AuditorId = dev::AUDITOR;

/// A device with its key, derived from a label.
pub struct TestDevice {
    pub key: Keypair,
    pub id: DeviceId,
}

impl TestDevice {
    pub fn new(label: &str) -> TestDevice {
        TestDevice {
            key: Keypair::from_label(&format!("device {label}")),
            id: DeviceId::derive(b"salt", label.as_bytes()),
        }
    }

    pub fn registration(&self) -> DeviceRegistration {
        DeviceRegistration {
            device_id: self.id,
            public_key: self.key.account(),
            protocols: vec!["mqtt".into()],
            metadata: vec![],
        }
    }

    pub fn consent(&self, chain: &Chain, owner: AccountId) -> atonomi_primitives::Signature {
        sign_activation(&self.key, &chain.chain_id, &self.id, &owner)
    }
}

/// Registers `dev` with the demo manufacturer and activates it for `owner`.
pub fn registered_active(chain: &mut Chain, a: &Actors, d: &TestDevice, owner: &Keypair) {
    chain.ok(
        &a.maker,
        Call::RegisterDevices {
            manufacturer: M,
            devices: vec![d.registration()],
        },
    );
    let sig = d.consent(chain, owner.account());
    chain.ok(
        owner,
        Call::ActivateDevice {
            device: d.id,
            device_signature: sig,
        },
    );
}

pub fn score(v: u32) -> Score {
    Score::new(v).unwrap()
}

pub fn new_manufacturer(id: u32, key: &Keypair) -> NewManufacturer {
    NewManufacturer {
        id: ManufacturerId::new(id),
        name: format!("maker {id}"),
        keys: vec![key.account()],
        registration_fee: None,
        default_score: score(5_000),
        reward_wallet: key.account(),
        metadata: vec![],
    }
}

pub fn new_auditor(id: u32, key: &Keypair) -> NewAuditor {
    NewAuditor {
        id: AuditorId::new(id),
        name: format!("auditor {id}"),
        keys: vec![key.account()],
        reward_account: key.account(),
        metadata: vec![],
    }
}
