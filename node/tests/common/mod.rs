//! Helpers shared by the process-level tests: the `atonomi` binary, free ports and its
//! JSON output.
#![allow(dead_code)]

use serde_json::Value;
use std::net::TcpListener;
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_atonomi");

/// A port the kernel just handed out for listening (bind(0) prefers even ports and
/// keeps odd ones for outgoing connections, so a neighbour `p + 1` is not safe).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `atonomi ARGS` to completion (warnings only on stderr).
pub fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("ATONOMI_LOG", "warn")
        .output()
        .unwrap()
}

/// The JSON a successful command printed, or its stderr.
pub fn json_out(o: &Output) -> Result<Value, String> {
    if !o.status.success() {
        return Err(String::from_utf8_lossy(&o.stderr).into_owned());
    }
    serde_json::from_slice(&o.stdout)
        .map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}
