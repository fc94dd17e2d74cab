//! Runtime integration tests: every call's success and failures, the authorization
//! matrix, the weaknesses of the original contracts (SPEC section 11), property tests
//! and proofs, on the in-memory state and on RocksDB.

mod calls;
mod fixture;
mod matrix;
mod proofs;
mod props;
mod rotation;
mod upgrades;
mod weaknesses;
