//! Typed tables: each names its column family, key and value types. Keys are
//! big-endian so RocksDB orders them numerically.

use crate::error::{Result, StorageError};
use crate::kv::{Cf, KvStore, WriteBatch};
use atonomi_primitives::codec;
use borsh::{BorshDeserialize, BorshSerialize};

/// Largest value a typed table decodes from disk.
pub const MAX_VALUE: usize = 64 << 20;

/// A key that encodes to bytes preserving order.
pub trait TableKey {
    fn encode_key(&self) -> Vec<u8>;
}

impl TableKey for u64 {
    fn encode_key(&self) -> Vec<u8> {
        self.to_be_bytes().to_vec()
    }
}

impl TableKey for (u64, u32) {
    fn encode_key(&self) -> Vec<u8> {
        let mut k = self.0.to_be_bytes().to_vec();
        k.extend_from_slice(&self.1.to_be_bytes());
        k
    }
}

impl TableKey for [u8; 32] {
    fn encode_key(&self) -> Vec<u8> {
        self.to_vec()
    }
}

impl TableKey for &'static str {
    fn encode_key(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
}

/// A typed table.
pub trait Table {
    const CF: Cf;
    type Key: TableKey;
    type Value: BorshSerialize + BorshDeserialize;
}

/// Reads a typed value.
pub fn get<T: Table, S: KvStore + ?Sized>(kv: &S, key: &T::Key) -> Result<Option<T::Value>> {
    match kv.get(T::CF, &key.encode_key())? {
        None => Ok(None),
        Some(bytes) => codec::decode(&bytes, MAX_VALUE)
            .map(Some)
            .map_err(|source| StorageError::Corrupt {
                cf: T::CF.name(),
                source,
            }),
    }
}

/// Adds a typed write to a batch.
pub fn put<T: Table>(batch: &mut WriteBatch, key: &T::Key, value: &T::Value) {
    batch.put(T::CF, key.encode_key(), codec::encode(value));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;

    struct Heights;
    impl Table for Heights {
        const CF: Cf = Cf::Meta;
        type Key = u64;
        type Value = String;
    }

    #[test]
    fn typed_round_trip_and_corruption() {
        let kv = MemoryStore::new();
        let mut b = WriteBatch::new();
        put::<Heights>(&mut b, &7, &"seven".to_string());
        b.put(Cf::Meta, 8u64.encode_key(), vec![0xff, 0xff, 0xff, 0xff]);
        kv.write(b).unwrap();
        assert_eq!(
            get::<Heights, _>(&kv, &7).unwrap().as_deref(),
            Some("seven")
        );
        assert_eq!(get::<Heights, _>(&kv, &9).unwrap(), None);
        assert!(matches!(
            get::<Heights, _>(&kv, &8),
            Err(StorageError::Corrupt { .. })
        ));
        assert!(1u64.encode_key() < 256u64.encode_key());
    }
}
