//! Snapshots every `[storage] snapshot_interval` heights: after a commit passes a
//! multiple of the interval, a background task writes the state of that height into
//! `HOME/snapshots/snapshot-HEIGHT/` (the format of `atonomi snapshot export`, through
//! a `.tmp` directory renamed when complete) and deletes all but the newest
//! `snapshot_keep`. It reads a kept height through a chain reader on a blocking
//! thread: a commit never waits for it.

use crate::chain::ChainReader;
use crate::ingress::NodeEvent;
use crate::metrics::Metrics;
use atonomi_genesis::Genesis;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::broadcast;

const PREFIX: &str = "snapshot-";
const TMP: &str = ".tmp";

/// When and where snapshots are taken.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub interval: u64,
    pub keep: usize,
    pub dir: PathBuf,
}

/// The finished snapshots in `dir`, oldest first, by height.
pub fn list(dir: &Path) -> Vec<(u64, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(u64, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let height = name.strip_prefix(PREFIX)?.parse::<u64>().ok()?;
            Some((height, e.path()))
        })
        .collect();
    out.sort();
    out
}

fn name(height: u64) -> String {
    format!("{PREFIX}{height:012}")
}

/// The height a snapshot is due at after `committed` (0: none yet).
fn due(committed: u64, interval: u64) -> u64 {
    committed - committed % interval
}

/// Publishes the newest snapshot's height and when it was written.
fn note(metrics: &Metrics, height: u64, path: &Path) {
    metrics.snapshot_height.set(height as i64);
    let written = std::fs::metadata(path.join("manifest.json"))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64());
    metrics.snapshot_timestamp_seconds.set(written);
}

/// Writes the snapshot of `height` and deletes the ones past `keep`.
fn take(
    s: &Schedule,
    chain: &ChainReader,
    genesis: &Genesis,
    height: u64,
) -> Result<PathBuf, String> {
    std::fs::create_dir_all(&s.dir).map_err(|e| format!("creating {}: {e}", s.dir.display()))?;
    let done = s.dir.join(name(height));
    let tmp = s.dir.join(format!("{}{TMP}", name(height)));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| format!("removing {}: {e}", tmp.display()))?;
    }
    crate::snapshot::export_at(chain, genesis, height, &tmp).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, &done).map_err(|e| format!("renaming {}: {e}", tmp.display()))?;
    let all = list(&s.dir);
    for (_, old) in &all[..all.len().saturating_sub(s.keep)] {
        if let Err(e) = std::fs::remove_dir_all(old) {
            tracing::warn!(path = %old.display(), "removing an old snapshot: {e}");
        }
    }
    Ok(done)
}

/// Takes the snapshots `schedule` asks for as the chain commits, until the event bus
/// closes.
pub async fn run(
    schedule: Schedule,
    chain: ChainReader,
    genesis: Arc<Genesis>,
    events: broadcast::Sender<NodeEvent>,
    metrics: Arc<Metrics>,
) {
    let mut rx = events.subscribe();
    // Left by a node killed while writing one: never complete, never served.
    if let Ok(entries) = std::fs::read_dir(&schedule.dir) {
        for e in entries.filter_map(Result::ok) {
            if e.file_name().to_string_lossy().ends_with(TMP) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let mut last = 0;
    if let Some((height, path)) = list(&schedule.dir).pop() {
        note(&metrics, height, &path);
        last = height;
    }
    loop {
        match rx.recv().await {
            Ok(NodeEvent::Committed { .. }) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Ok(_) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        }
        let height = due(chain.height().get(), schedule.interval);
        if height == 0 || height <= last {
            continue;
        }
        last = height;
        let (s, c, g) = (schedule.clone(), chain.clone(), genesis.clone());
        let started = std::time::Instant::now();
        match tokio::task::spawn_blocking(move || take(&s, &c, &g, height)).await {
            Ok(Ok(path)) => {
                note(&metrics, height, &path);
                tracing::info!(height, path = %path.display(), secs = started.elapsed().as_secs_f64(), "snapshot taken");
            }
            Ok(Err(e)) => tracing::warn!(height, "snapshot not taken: {e}"),
            Err(e) => tracing::warn!(height, "snapshot task failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_heights_are_multiples_of_the_interval() {
        assert_eq!(due(0, 10), 0);
        assert_eq!(due(9, 10), 0);
        assert_eq!(due(10, 10), 10);
        assert_eq!(due(27, 10), 20);
    }

    #[test]
    fn finished_snapshots_are_listed_by_height_and_unfinished_ones_are_not() {
        let dir = tempfile::tempdir().unwrap();
        for n in [
            name(30),
            name(100),
            format!("{}{TMP}", name(200)),
            "other".into(),
        ] {
            std::fs::create_dir(dir.path().join(n)).unwrap();
        }
        let heights: Vec<u64> = list(dir.path()).into_iter().map(|(h, _)| h).collect();
        assert_eq!(heights, [30, 100]);
    }
}
