//! `atonomi demo`: the runtime end to end on RocksDB, without the network.

use crate::error::{Result, ToolError};
use atonomi_api::file::FileError;
use atonomi_genesis::dev;
use atonomi_primitives::event::TxStatus;
use atonomi_primitives::proof;
use atonomi_primitives::state::{Attributes, Device, Direction, StateKey, Subject};
use atonomi_primitives::tx::{sign_activation, Call, DeviceRegistration, ReputationWrite};
use atonomi_primitives::{Amount, DeviceId, Height, Keypair, Score, Timestamp, Transaction};
use atonomi_runtime::{execute_block, genesis_diff, query, BlockContext, SigCheck};
use atonomi_storage::{RocksConfig, RocksStore, StateDb, StorageError};
use serde_json::json;
use std::path::PathBuf;

struct DemoChain {
    db: StateDb<RocksStore>,
    genesis: atonomi_genesis::Genesis,
    height: u64,
}

impl DemoChain {
    fn reader(&self) -> impl Fn(&[u8]) -> Result<Option<Vec<u8>>, StorageError> + '_ {
        |k: &[u8]| self.db.get(k)
    }

    fn nonce(&self, key: &Keypair) -> Result<u64> {
        let acct: Option<atonomi_primitives::state::Account> =
            match self.db.get(&StateKey::Account(key.account()).to_bytes())? {
                Some(b) => Some(atonomi_primitives::codec::decode(&b, 1 << 20)?),
                None => None,
            };
        Ok(acct.map_or(0, |a| a.nonce))
    }

    /// Executes `call` signed by `key` as the next block and prints its receipt.
    fn step(&mut self, title: &'static str, key: &Keypair, call: Call) -> Result<()> {
        let tx = Transaction {
            chain_id: self.genesis.chain_id.clone(),
            signer: key.account(),
            nonce: self.nonce(key)?,
            max_fee: None,
            call,
        }
        .sign(key);
        let height = self.height + 1;
        let ctx = BlockContext {
            chain_id: self.genesis.chain_id.clone(),
            height: Height::new(height),
            timestamp: Timestamp::new(self.genesis.genesis_time_ms + height * 1_000),
            upgrades: Default::default(),
        };
        let out = execute_block(&self.reader(), &ctx, &[tx.to_bytes()], SigCheck::Verify)?;
        let root = self.db.commit(&out.diff, height)?;
        self.height = height;
        let receipt = &out.receipts[0];
        println!(
            "{}",
            json!({ "step": title, "height": height, "state_root": root, "receipt": receipt })
        );
        if receipt.status != TxStatus::Success {
            return Err(ToolError::StepFailed {
                title,
                status: receipt.status.clone(),
            });
        }
        Ok(())
    }
}

pub fn run(home: Option<PathBuf>) -> Result<()> {
    let _tmp;
    let home = match home {
        Some(h) => h,
        None => {
            let dir = tempfile::Builder::new()
                .prefix("atonomi-demo-")
                .tempdir()
                .map_err(FileError::at(
                    "creating a directory in",
                    &std::env::temp_dir(),
                ))?;
            let path = dir.path().to_path_buf();
            _tmp = dir;
            path
        }
    };
    let path = home.join("demo-db");
    if path.exists() {
        std::fs::remove_dir_all(&path).map_err(FileError::at("clearing", &path))?;
    }
    std::fs::create_dir_all(&path).map_err(FileError::at("creating", &path))?;
    let db = StateDb::open(RocksStore::open(&path, &RocksConfig::default())?)?;
    let genesis = dev::genesis();
    let root = db.commit(&genesis_diff(&genesis.state())?, 0)?;
    println!(
        "{}",
        json!({ "step": "genesis", "chain_id": genesis.chain_id, "state_root": root, "db": path })
    );
    let mut chain = DemoChain {
        db,
        genesis,
        height: 0,
    };

    let maker = dev::key("manufacturer");
    let auditor = dev::key("auditor");
    let alice = dev::key("alice");
    let bob = dev::key("bob");
    let sensor = (
        Keypair::from_label("demo sensor"),
        DeviceId::derive(b"demo salt", b"SN-0001"),
    );
    let meter = (
        Keypair::from_label("demo meter"),
        DeviceId::derive(b"demo salt", b"SN-0002"),
    );
    let reg = |d: &(Keypair, DeviceId)| DeviceRegistration {
        device_id: d.1,
        public_key: d.0.account(),
        protocols: vec!["mqtt".into()],
        metadata: vec![],
    };
    let chain_id = chain.genesis.chain_id.clone();

    chain.step(
        "register a whitelist of two devices",
        &maker,
        Call::RegisterDevices {
            manufacturer: dev::MANUFACTURER,
            devices: vec![reg(&sensor), reg(&meter)],
        },
    )?;
    let sig = sign_activation(&sensor.0, &chain_id, &sensor.1, &alice.account());
    chain.step(
        "alice activates the sensor with its signature",
        &alice,
        Call::ActivateDevice {
            device: sensor.1,
            device_signature: sig,
        },
    )?;
    let sig = sign_activation(&meter.0, &chain_id, &meter.1, &bob.account());
    chain.step(
        "bob activates the meter",
        &bob,
        Call::ActivateDevice {
            device: meter.1,
            device_signature: sig,
        },
    )?;
    let score = Score::new(8_000).ok_or(ToolError::Broken("8,000 is a score"))?;
    let w = ReputationWrite {
        subject: Subject::Device(meter.1),
        rep_type: "trust".into(),
        score,
        direction: Direction::Up,
    };
    chain.step(
        "the auditor rates the meter",
        &auditor,
        Call::WriteReputation {
            auditor: dev::AUDITOR,
            entries: vec![w],
        },
    )?;
    let v = query::validate_device(&chain.reader(), meter.1, Some(sensor.1), None)?;
    println!(
        "{}",
        json!({ "step": "the sensor validates the meter before trading", "answer": v })
    );
    chain.step(
        "alice funds the sensor",
        &alice,
        Call::Transfer {
            to: sensor.0.account(),
            amount: Amount::new(10 * Amount::ONE_ATMI),
        },
    )?;
    chain.step(
        "alice limits the sensor to 5 ATMI per payment",
        &alice,
        Call::SetAttributes {
            device: sensor.1,
            attributes: Attributes {
                per_tx_limit: Some(Amount::new(5 * Amount::ONE_ATMI)),
                ..Attributes::default()
            },
        },
    )?;
    chain.step(
        "the sensor pays the meter 2 ATMI (1% fee)",
        &sensor.0,
        Call::Pay {
            from_device: sensor.1,
            to_device: meter.1,
            amount: Amount::new(2 * Amount::ONE_ATMI),
            memo: b"kwh".to_vec(),
        },
    )?;

    let key = StateKey::Device(meter.1);
    let height = chain.height;
    let root = chain.db.root_at(height)?;
    let (value, p) = chain.db.prove(&key.to_bytes(), height)?;
    let device: Device = proof::verify(root, &key, value.as_deref(), &p)?
        .ok_or(ToolError::Missing("the meter's record"))?;
    println!(
        "{}",
        json!({ "step": "prove the meter's record against the state root", "height": height, "state_root": root, "proof_bytes": p.to_bytes().len(), "verified_device": device })
    );
    eprintln!(
        "demo finished: {} blocks on RocksDB at {}",
        chain.height,
        path.display()
    );
    Ok(())
}
