//! The node's secondary indexes: the devices of each manufacturer and the reputation
//! writes about each subject, in their own column family and written in the batch of
//! the block they come from (so they are exactly as far as the chain, crash or not).
//!
//! They are not part of the authenticated state: a second state entry per device would
//! double the work of registering one. What they return is checkable all the same —
//! each device is a state record `atonomi_getProof` proves, each reputation record an
//! event of a committed block's receipts.
//!
//! Layout (`Cf::Index`):
//! - `d` ‖ manufacturer (u32 BE) ‖ device id → nothing
//! - `r` ‖ subject ([`Subject::key_bytes`]) ‖ height (u64 BE) ‖ tx (u32 BE) ‖ event
//!   (u32 BE) → [`ReputationRecord`]
//! - `since` → the first height indexed (0 from genesis; a snapshot's height after an
//!   import, whose devices are indexed from its state but whose history starts there).

use atonomi_api::rpc::HistoryPosition as Position;
use atonomi_primitives::block::BlockHeader;
use atonomi_primitives::event::ReputationRecord;
use atonomi_primitives::state::{tag, Device, Subject};
use atonomi_primitives::{codec, DeviceId, Event, Height, ManufacturerId, Receipt, Timestamp};
use atonomi_storage::{Cf, KvRead, KvStore, StateDb, WriteBatch};
use atonomi_storage::{Result, StorageError};

const DEVICE: u8 = b'd';
const REPUTATION: u8 = b'r';
const SINCE: &[u8] = b"since";

/// `d` ‖ manufacturer: where a manufacturer's devices start.
fn manufacturer_prefix(manufacturer: ManufacturerId) -> Vec<u8> {
    let mut k = Vec::with_capacity(37);
    k.push(DEVICE);
    k.extend_from_slice(&manufacturer.get().to_be_bytes());
    k
}

fn device_key(manufacturer: ManufacturerId, device: &DeviceId) -> Vec<u8> {
    let mut k = manufacturer_prefix(manufacturer);
    k.extend_from_slice(&device.0);
    k
}

fn subject_prefix(subject: &Subject) -> Vec<u8> {
    let mut k = vec![REPUTATION];
    subject.key_bytes(&mut k);
    k
}

fn position_key(subject: &Subject, p: Position) -> Vec<u8> {
    let mut k = subject_prefix(subject);
    k.extend_from_slice(&p.height.to_be_bytes());
    k.extend_from_slice(&p.tx.to_be_bytes());
    k.extend_from_slice(&p.event.to_be_bytes());
    k
}

fn position_of(key: &[u8]) -> Option<Position> {
    let tail = key.get(key.len().checked_sub(16)?..)?;
    Some(Position {
        height: u64::from_be_bytes(tail.get(..8)?.try_into().ok()?),
        tx: u32::from_be_bytes(tail.get(8..12)?.try_into().ok()?),
        event: u32::from_be_bytes(tail.get(12..)?.try_into().ok()?),
    })
}

/// Adds to `batch` what the block's receipts add to the indexes.
pub fn add_block(batch: &mut WriteBatch, header: &BlockHeader, receipts: &[Receipt]) {
    add_receipts(batch, header.height, header.timestamp, receipts)
}

fn add_receipts(
    batch: &mut WriteBatch,
    height: Height,
    timestamp: Timestamp,
    receipts: &[Receipt],
) {
    for r in receipts {
        for (e, event) in r.events.iter().enumerate() {
            match event {
                Event::DeviceRegistered {
                    device,
                    manufacturer,
                } => batch.put(Cf::Index, device_key(*manufacturer, device), Vec::new()),
                Event::ReputationWritten {
                    subject,
                    auditor,
                    rep_type,
                    score,
                    direction,
                    aggregate,
                    ..
                } => {
                    let at = Position {
                        height: height.get(),
                        tx: r.index,
                        event: e as u32,
                    };
                    let record = ReputationRecord {
                        height,
                        timestamp,
                        tx_index: r.index,
                        auditor: *auditor,
                        rep_type: rep_type.clone(),
                        score: *score,
                        direction: *direction,
                        aggregate: *aggregate,
                    };
                    batch.put(Cf::Index, position_key(subject, at), codec::encode(&record));
                }
                _ => {}
            }
        }
    }
}

/// The first height whose blocks the indexes hold (0 unless the home was imported).
pub fn since<S: KvRead + ?Sized>(kv: &S) -> Result<u64> {
    Ok(match kv.get(Cf::Index, SINCE)? {
        Some(b) => u64::from_be_bytes(
            b.as_slice()
                .try_into()
                .map_err(|_| StorageError::Invalid("index start height is not 8 bytes".into()))?,
        ),
        None => 0,
    })
}

/// Up to `limit` device ids of `manufacturer` from `from` on, in id order, and the id
/// to ask for next.
pub fn devices_of<S: KvRead + ?Sized>(
    kv: &S,
    manufacturer: ManufacturerId,
    from: Option<DeviceId>,
    limit: usize,
) -> Result<(Vec<DeviceId>, Option<DeviceId>)> {
    let prefix = manufacturer_prefix(manufacturer);
    let start = from
        .map(|d| device_key(manufacturer, &d))
        .unwrap_or_default();
    let rows = kv.scan(Cf::Index, &prefix, &start, limit.saturating_add(1))?;
    let mut ids = Vec::with_capacity(rows.len());
    for (k, _) in rows {
        let id: [u8; 32] = k
            .get(5..)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| StorageError::Invalid("a device index key is not 37 bytes".into()))?;
        ids.push(DeviceId(id));
    }
    let next = if ids.len() > limit { ids.pop() } else { None };
    Ok((ids, next))
}

/// Up to `limit` reputation records about `subject` from `from` on, oldest first, and
/// where to ask for next.
pub fn reputation_of<S: KvRead + ?Sized>(
    kv: &S,
    subject: &Subject,
    from: Option<Position>,
    limit: usize,
) -> Result<(Vec<ReputationRecord>, Option<Position>)> {
    let prefix = subject_prefix(subject);
    let start = from.map(|p| position_key(subject, p)).unwrap_or_default();
    let rows = kv.scan(Cf::Index, &prefix, &start, limit.saturating_add(1))?;
    let mut records = Vec::with_capacity(rows.len());
    let mut next = None;
    for (i, (k, v)) in rows.into_iter().enumerate() {
        if i == limit {
            next = position_of(&k);
            break;
        }
        records.push(
            codec::decode::<ReputationRecord>(&v, 4096).map_err(|source| {
                StorageError::Corrupt {
                    cf: Cf::Index.name(),
                    source,
                }
            })?,
        );
    }
    Ok((records, next))
}

/// After a snapshot import: the devices index from the imported state (every device
/// record, a page at a time), and the height the history starts at.
pub fn rebuild_from_state<S: KvStore>(db: &StateDb<S>, height: u64) -> Result<()> {
    const PAGE: usize = 10_000;
    let mut start = Vec::new();
    loop {
        let rows = db.scan(&[tag::DEVICE], &start, PAGE + 1)?;
        let mut batch = WriteBatch::new();
        for (_, v) in rows.iter().take(PAGE) {
            let d: Device = codec::decode(v, 1 << 20).map_err(|source| StorageError::Corrupt {
                cf: Cf::State.name(),
                source,
            })?;
            batch.put(Cf::Index, device_key(d.manufacturer, &d.id), Vec::new());
        }
        if rows.len() <= PAGE {
            batch.put(Cf::Index, SINCE, height.to_be_bytes().to_vec());
            return db.kv().write(batch);
        }
        db.kv().write(batch)?;
        start = rows[PAGE].0.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atonomi_primitives::state::Direction;
    use atonomi_primitives::{AuditorId, Hash, Score, TxStatus};
    use atonomi_storage::MemoryStore;

    fn receipt(index: u32, events: Vec<Event>) -> Receipt {
        Receipt {
            tx_hash: Hash::of(&index.to_be_bytes()),
            height: Height::new(5),
            index,
            status: TxStatus::Success,
            events,
        }
    }

    #[test]
    fn devices_page_by_manufacturer_and_history_by_subject() {
        let kv = MemoryStore::default();
        let (m1, m2) = (ManufacturerId::new(1), ManufacturerId::new(2));
        let registered = |m, i: u8| Event::DeviceRegistered {
            device: DeviceId([i; 32]),
            manufacturer: m,
        };
        let d = Subject::Device(DeviceId([3; 32]));
        let wrote = |s: u32| Event::ReputationWritten {
            subject: d,
            auditor: AuditorId::new(1),
            rep_type: "trust".into(),
            score: Score::new(s).unwrap(),
            direction: Direction::Up,
            aggregate: Score::new(s).unwrap(),
            reward: atonomi_primitives::Amount::ZERO,
        };
        let mut batch = WriteBatch::new();
        add_receipts(
            &mut batch,
            Height::new(5),
            Timestamp::default(),
            &[
                receipt(
                    0,
                    vec![registered(m1, 3), registered(m2, 1), registered(m1, 2)],
                ),
                receipt(1, vec![wrote(10), wrote(20)]),
                receipt(2, vec![wrote(30)]),
            ],
        );
        kv.write(batch).unwrap();

        let (page, next) = devices_of(&kv, m1, None, 1).unwrap();
        assert_eq!(
            (page, next),
            (vec![DeviceId([2; 32])], Some(DeviceId([3; 32])))
        );
        let (page, next) = devices_of(&kv, m1, next, 10).unwrap();
        assert_eq!((page, next), (vec![DeviceId([3; 32])], None));
        assert_eq!(
            devices_of(&kv, m2, None, 10).unwrap().0,
            vec![DeviceId([1; 32])]
        );
        assert!(devices_of(&kv, ManufacturerId::new(3), None, 10)
            .unwrap()
            .0
            .is_empty());

        let (first, next) = reputation_of(&kv, &d, None, 2).unwrap();
        let scores = |r: &[ReputationRecord]| r.iter().map(|r| r.score.get()).collect::<Vec<_>>();
        assert_eq!(scores(&first), vec![10, 20]);
        assert_eq!(first[1].tx_index, 1);
        assert_eq!(
            next,
            Some(Position {
                height: 5,
                tx: 2,
                event: 0
            })
        );
        let (rest, next) = reputation_of(&kv, &d, next, 2).unwrap();
        assert_eq!((scores(&rest), next), (vec![30], None));
        let other = Subject::Device(DeviceId([4; 32]));
        assert!(reputation_of(&kv, &other, None, 2).unwrap().0.is_empty());
        assert_eq!(since(&kv).unwrap(), 0);
    }

    #[test]
    fn an_imported_state_indexes_its_devices_and_starts_the_history_at_its_height() {
        use atonomi_primitives::state::{Attributes, DeviceStatus, StateKey};
        let mut diff = atonomi_storage::StateDiff::new();
        for (i, m) in [(1u8, 7u32), (2, 8), (3, 7)] {
            let d = Device {
                id: DeviceId([i; 32]),
                manufacturer: ManufacturerId::new(m),
                public_key: atonomi_primitives::AccountId([i; 32]),
                protocols: vec![],
                metadata: vec![],
                status: DeviceStatus::Registered,
                owner: None,
                wallet: None,
                attributes: Attributes::default(),
                registered_at: Height::new(1),
                activated_at: None,
                window_start: Timestamp::default(),
                window_spent: atonomi_primitives::Amount::ZERO,
            };
            diff.insert(StateKey::Device(d.id).to_bytes(), Some(codec::encode(&d)));
        }
        // Another record type under a neighbouring tag is not taken for a device.
        diff.insert(
            StateKey::Manufacturer(ManufacturerId::new(7)).to_bytes(),
            Some(vec![1, 2, 3]),
        );
        let db = StateDb::open(MemoryStore::new()).unwrap();
        db.commit(&diff, 0).unwrap();
        rebuild_from_state(&db, 42).unwrap();
        let ids = devices_of(db.kv(), ManufacturerId::new(7), None, 10)
            .unwrap()
            .0;
        assert_eq!(ids, vec![DeviceId([1; 32]), DeviceId([3; 32])]);
        assert_eq!(since(db.kv()).unwrap(), 42);
    }
}
