//! The committed state as the runtime sees it: read by raw key ([`StateReader`]), and a
//! block's effect on it ([`StateDiff`]).

use std::collections::BTreeMap;

/// Read access to committed state by raw key. `Error` is the storage engine's own: the
/// runtime does not look into it, it stops the block with [`Fatal::Read`].
pub trait StateReader {
    type Error: std::fmt::Display;
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Self::Error>;
}

impl<F, E> StateReader for F
where
    F: Fn(&[u8]) -> Result<Option<Vec<u8>>, E>,
    E: std::fmt::Display,
{
    type Error = E;
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, E> {
        self(key)
    }
}

/// Committed state held in memory (unit tests, simulations).
#[derive(Debug, Default, Clone)]
pub struct MemoryState(pub BTreeMap<Vec<u8>, Vec<u8>>);

impl StateReader for MemoryState {
    type Error = std::convert::Infallible;
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Self::Error> {
        Ok(self.0.get(key).cloned())
    }
}

impl MemoryState {
    pub fn apply(&mut self, diff: &StateDiff) {
        for (k, v) in diff {
            match v {
                Some(v) => {
                    self.0.insert(k.clone(), v.clone());
                }
                None => {
                    self.0.remove(k);
                }
            }
        }
    }
}

/// A block's effect on state: raw key → new value (`None` deletes), in key order.
pub type StateDiff = BTreeMap<Vec<u8>, Option<Vec<u8>>>;
