//! What `/health` and `/ready` on the metrics port answer, for load balancers and
//! orchestrators (Kubernetes-style probes).
//!
//! - **Health**: the process is alive and its parts are running. Each part registers
//!   a check: the mempool actor must answer, the JSON-RPC server must not have
//!   stopped, and a task (the consensus host, the network) holds an [`Alive`] token
//!   for as long as it runs. 200, or 503 naming each failing part.
//! - **Readiness**: healthy, started, synced (the committed height within
//!   `ready_max_lag` of the best height a peer reported) and the data directory
//!   writable (a small file written, synced and removed). 200, or 503 with the
//!   reasons.

use crate::metrics::Metrics;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

type Check = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Held by a task for as long as it runs (see [`Health::task`]).
#[derive(Debug)]
pub struct Alive(#[allow(dead_code)] Arc<()>);

/// The node's parts and what readiness reads.
pub struct Health {
    checks: Mutex<Vec<(&'static str, Check)>>,
    started: AtomicBool,
    data_dir: PathBuf,
    max_lag: u64,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("data_dir", &self.data_dir)
            .field("max_lag", &self.max_lag)
            .finish_non_exhaustive()
    }
}

/// The `/health` answer.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HealthReport {
    pub healthy: bool,
    /// Every registered part, in registration order.
    pub parts: Vec<String>,
    /// Each failing part with why.
    pub failing: Vec<Failing>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Failing {
    pub part: String,
    pub why: String,
}

/// The `/ready` answer.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReadyReport {
    pub ready: bool,
    pub height: u64,
    /// The highest committed height a connected peer reported (0: none yet).
    pub best_peer_height: u64,
    pub max_lag: u64,
    /// Why not, when not.
    pub reasons: Vec<String>,
}

impl Health {
    pub fn new(data_dir: PathBuf, max_lag: u64, metrics: Arc<Metrics>) -> Health {
        Health {
            checks: Mutex::new(Vec::new()),
            started: AtomicBool::new(false),
            data_dir,
            max_lag,
            metrics,
        }
    }

    /// Registers a part whose `check` says whether it runs.
    pub fn add(
        &self,
        part: &'static str,
        check: impl Fn() -> Result<(), String> + Send + Sync + 'static,
    ) {
        self.checks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((part, Arc::new(check)));
    }

    /// Registers a task: it is running while the returned token lives.
    pub fn task(&self, part: &'static str) -> Alive {
        let token = Arc::new(());
        let weak: Weak<()> = Arc::downgrade(&token);
        self.add(part, move || match weak.upgrade() {
            Some(_) => Ok(()),
            None => Err("the task has stopped".into()),
        });
        Alive(token)
    }

    /// Every part has started (the node serves); readiness waits for it.
    pub fn set_started(&self) {
        self.started.store(true, Ordering::Release);
    }

    /// Runs every check (they may block briefly: call off the async threads).
    pub fn health(&self) -> HealthReport {
        let checks = self
            .checks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut failing = Vec::new();
        for (part, check) in &checks {
            if let Err(why) = check() {
                failing.push(Failing {
                    part: part.to_string(),
                    why,
                });
            }
        }
        HealthReport {
            healthy: failing.is_empty(),
            parts: checks.iter().map(|(p, _)| p.to_string()).collect(),
            failing,
        }
    }

    /// Health, then the rest of readiness (blocks briefly, like [`Health::health`]).
    pub fn ready(&self) -> ReadyReport {
        let health = self.health();
        let height = self.metrics.height.get().max(0) as u64;
        let best_peer_height = self.metrics.best_peer_height.get().max(0) as u64;
        let reasons = readiness(
            self.started.load(Ordering::Acquire),
            &health,
            height,
            best_peer_height,
            self.max_lag,
            self.probe_storage(),
        );
        ReadyReport {
            ready: reasons.is_empty(),
            height,
            best_peer_height,
            max_lag: self.max_lag,
            reasons,
        }
    }

    /// Writes, syncs and removes a small file in the data directory.
    fn probe_storage(&self) -> Result<(), String> {
        let path = self.data_dir.join(".ready-probe");
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&path)?;
            f.write_all(b"probe")?;
            f.sync_all()?;
            std::fs::remove_file(&path)
        };
        write().map_err(|e| format!("{}: {e}", self.data_dir.display()))
    }
}

/// Why a node is not ready (empty: it is).
pub fn readiness(
    started: bool,
    health: &HealthReport,
    height: u64,
    best_peer_height: u64,
    max_lag: u64,
    storage: Result<(), String>,
) -> Vec<String> {
    let mut reasons = Vec::new();
    if !started {
        reasons.push("starting: not every part serves yet".to_string());
    }
    for f in &health.failing {
        reasons.push(format!("{} is failing: {}", f.part, f.why));
    }
    if best_peer_height > height.saturating_add(max_lag) {
        reasons.push(format!(
            "syncing: at height {height}, a peer is at {best_peer_height} (ready within {max_lag})"
        ));
    }
    if let Err(e) = storage {
        reasons.push(format!("storage is not writable: {e}"));
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> HealthReport {
        HealthReport {
            healthy: true,
            parts: vec!["mempool".into()],
            failing: vec![],
        }
    }

    /// Each condition on its own makes a node not ready, and says so; within the lag
    /// it is ready.
    #[test]
    fn each_reason_is_named() {
        assert!(readiness(true, &healthy(), 10, 12, 2, Ok(())).is_empty());
        assert!(readiness(true, &healthy(), 10, 0, 2, Ok(())).is_empty());
        let one = |r: Vec<String>, says: &str| {
            assert_eq!(r.len(), 1, "{r:?}");
            assert!(r[0].contains(says), "{r:?}");
        };
        one(readiness(false, &healthy(), 10, 10, 2, Ok(())), "starting");
        one(
            readiness(true, &healthy(), 10, 13, 2, Ok(())),
            "a peer is at 13",
        );
        one(
            readiness(true, &healthy(), 10, 10, 2, Err("disk full".into())),
            "disk full",
        );
        let sick = HealthReport {
            healthy: false,
            parts: vec!["mempool".into()],
            failing: vec![Failing {
                part: "mempool".into(),
                why: "stopped".into(),
            }],
        };
        one(
            readiness(true, &sick, 10, 10, 2, Ok(())),
            "mempool is failing",
        );
    }

    /// A task's token marks it running until it is dropped; the part is named.
    #[test]
    fn a_task_is_running_while_it_holds_its_token() {
        let dir = tempfile::tempdir().unwrap();
        let health = Health::new(dir.path().to_path_buf(), 2, Arc::new(Metrics::default()));
        let alive = health.task("consensus");
        health.add("rpc", || Ok(()));
        assert!(health.health().healthy);
        drop(alive);
        let report = health.health();
        assert!(!report.healthy);
        assert_eq!(report.parts, ["consensus", "rpc"]);
        assert_eq!(report.failing[0].part, "consensus");
        assert!(health
            .ready()
            .reasons
            .iter()
            .any(|r| r.contains("starting")));
        health.set_started();
        let ready = health.ready();
        assert_eq!(ready.reasons.len(), 1, "{ready:?}");
        assert!(health.probe_storage().is_ok());
    }
}
