//! The wall clock, read in one place: block timestamps a proposer sets and checks,
//! relay timing, and gossip nonces. Nothing hashed or signed reads it except a
//! proposal's timestamp, which validators bound (`MAX_CLOCK_DRIFT_MS`).

/// Milliseconds since the Unix epoch (0 for a clock before 1970).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Nanoseconds since the Unix epoch (0 for a clock before 1970), for nonces that
/// must differ across restarts.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
