//! Buffered state access during block execution.
//!
//! Reads fall through a stack of write layers to the committed state. Each transaction
//! runs in its own layer, and governance actions in one more, so a failed call is
//! undone by dropping its layer. Layers are `BTreeMap`s: the block's diff comes out in
//! key order, never in hash-map order.

use crate::error::{ExecError, Fatal};
use crate::state::StateReader;
use atonomi_primitives::codec;
use atonomi_primitives::state::StateKey;
use borsh::{BorshDeserialize, BorshSerialize};
use std::collections::BTreeMap;

/// Largest record the runtime decodes from state.
const MAX_RECORD: usize = 16 << 20;

type Layer = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

pub struct Overlay<'r, R: ?Sized> {
    reader: &'r R,
    /// `layers[0]` is the block's accumulated diff.
    layers: Vec<Layer>,
}

impl<'r, R: StateReader + ?Sized> Overlay<'r, R> {
    pub fn new(reader: &'r R) -> Self {
        Overlay {
            reader,
            layers: vec![Layer::new()],
        }
    }

    pub fn get_raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Fatal> {
        for layer in self.layers.iter().rev() {
            if let Some(v) = layer.get(key) {
                return Ok(v.clone());
            }
        }
        self.reader.get(key).map_err(|e| Fatal::Read(e.to_string()))
    }

    pub fn get<T: BorshDeserialize>(&self, key: &StateKey) -> Result<Option<T>, ExecError> {
        let k = key.to_bytes();
        match self.get_raw(&k)? {
            None => Ok(None),
            Some(bytes) => codec::decode(&bytes, MAX_RECORD).map(Some).map_err(|e| {
                ExecError::Fatal(Fatal::Corrupt {
                    key: k,
                    reason: e.to_string(),
                })
            }),
        }
    }

    pub fn put<T: BorshSerialize>(&mut self, key: &StateKey, value: &T) {
        self.top()
            .insert(key.to_bytes(), Some(codec::encode(value)));
    }

    pub fn delete(&mut self, key: &StateKey) {
        self.top().insert(key.to_bytes(), None);
    }

    fn top(&mut self) -> &mut Layer {
        // `layers` is never empty: `new` creates the base layer and `pop` keeps it.
        if self.layers.is_empty() {
            self.layers.push(Layer::new());
        }
        let last = self.layers.len() - 1;
        &mut self.layers[last]
    }

    /// Opens a layer that can be dropped as a unit.
    pub fn push(&mut self) {
        self.layers.push(Layer::new());
    }

    /// Merges the top layer into the one below.
    pub fn commit(&mut self) {
        if self.layers.len() > 1 {
            if let Some(top) = self.layers.pop() {
                self.top().extend(top);
            }
        }
    }

    /// Drops the top layer's writes.
    pub fn discard(&mut self) {
        if self.layers.len() > 1 {
            self.layers.pop();
        }
    }

    /// The block's diff. Open layers are discarded.
    pub fn into_diff(mut self) -> Layer {
        self.layers.truncate(1);
        self.layers.pop().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::MemoryState;
    use atonomi_primitives::state::Account;
    use atonomi_primitives::{AccountId, Amount};

    #[test]
    fn layers_commit_and_discard() {
        let base = MemoryState::default();
        let mut o = Overlay::new(&base);
        let k = StateKey::Account(AccountId::new([1; 32]));
        let acct = |n| Account {
            nonce: n,
            balance: Amount::ZERO,
        };
        o.push();
        o.put(&k, &acct(1));
        o.push();
        o.put(&k, &acct(2));
        assert_eq!(o.get::<Account>(&k).unwrap(), Some(acct(2)));
        o.discard();
        assert_eq!(o.get::<Account>(&k).unwrap(), Some(acct(1)));
        o.commit();
        let diff = o.into_diff();
        assert_eq!(diff.len(), 1);
    }
}
