//! `atonomi devices register --csv FILE`: an OEM's whitelist from a CSV file.
//!
//! The whole file is read and checked first (errors name their line) and nothing is
//! sent unless every line is good. Devices the chain already holds are skipped, so an
//! interrupted run is simply run again: it never registers (or pays for) a device
//! twice. The rest go in batches of `--batch`, signed with consecutive nonces and up
//! to `--concurrency` in flight; the run ends with one JSON summary line and a results
//! CSV with one row per device.

use super::RpcArg;
use anyhow::{bail, Context, Result};
use atonomi_api::keyfile as keys;
use atonomi_client::{Answered, AtonomiApiClient, Node};
use atonomi_primitives::event::TxStatus;
use atonomi_primitives::state::limits;
use atonomi_primitives::tx::{Call, DeviceRegistration};
use atonomi_primitives::{AccountId, DeviceId, Hash, Keypair, ManufacturerId, Transaction};
use clap::Subcommand;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Most lines a whitelist file may hold (one run; split larger lists).
const MAX_LINES: usize = 10_000_000;
/// Existence checks in flight at once.
const LOOKUPS_IN_FLIGHT: usize = 32;

#[derive(Debug, Subcommand)]
pub enum DevicesCommand {
    /// Register a manufacturer's device whitelist from a CSV file with a header line:
    /// `device_id` (64 hex digits) or `salt` and `hardware_id` (the id is derived as
    /// `atonomi device-id` does), `public_key` (64 hex digits), and optionally
    /// `protocols` (separated by `;`) and `metadata` (hex). The whole file is checked
    /// first; devices already registered are skipped, so an interrupted run can be run
    /// again. Prints one JSON summary line and writes a results CSV.
    ///
    /// Example: atonomi devices register --key maker.json --manufacturer 1 --csv
    /// whitelist.csv
    Register(RegisterArgs),
}

#[derive(Debug, clap::Args)]
pub struct RegisterArgs {
    #[command(flatten)]
    rpc: RpcArg,
    /// The manufacturer's key file (it signs and pays the registration fees).
    #[arg(long, env = "ATONOMI_KEY")]
    key: PathBuf,
    /// The manufacturer's number.
    #[arg(long)]
    manufacturer: u32,
    /// The whitelist (CSV with a header line; see above).
    #[arg(long)]
    csv: PathBuf,
    /// Devices per transaction (at most the chain's `max_batch` parameter).
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    batch: u64,
    /// Transactions in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=64))]
    concurrency: u64,
    /// Where to write the results CSV (default: the input's name with
    /// `.results.csv`).
    #[arg(long)]
    results: Option<PathBuf>,
    /// Seconds to wait for each transaction's finality.
    #[arg(long, default_value_t = 60)]
    wait: u64,
}

pub fn run(cmd: DevicesCommand) -> Result<()> {
    match cmd {
        DevicesCommand::Register(args) => super::runtime()?.block_on(register(args)),
    }
}

/// One good line of the file.
#[derive(Debug, Clone)]
struct Line {
    number: usize,
    device: DeviceRegistration,
}

/// Reads and checks the whole file; every problem names its line.
fn read_whitelist(path: &Path) -> Result<Vec<Line>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .with_context(|| format!("reading {}", path.display()))?;
    let headers = reader
        .headers()
        .with_context(|| format!("{}: the header line", path.display()))?
        .clone();
    let column = |name: &str| headers.iter().position(|h| h == name);
    let (id, salt, hw) = (column("device_id"), column("salt"), column("hardware_id"));
    let Some(public_key) = column("public_key") else {
        bail!("{}: no public_key column", path.display());
    };
    if id.is_none() && (salt.is_none() || hw.is_none()) {
        bail!(
            "{}: a device_id column, or salt and hardware_id columns, are needed",
            path.display()
        );
    }
    let (protocols, metadata) = (column("protocols"), column("metadata"));
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    let mut seen: BTreeMap<DeviceId, usize> = BTreeMap::new();
    for (i, record) in reader.records().enumerate() {
        let number = i + 2; // the header is line 1
        if lines.len() + errors.len() >= MAX_LINES {
            bail!("{}: more than {MAX_LINES} lines", path.display());
        }
        let line = record
            .map_err(|e| anyhow::anyhow!("{e}"))
            .and_then(|r| parse_line(&r, id, salt, hw, public_key, protocols, metadata));
        match line {
            Ok(device) => match seen.insert(device.device_id, number) {
                Some(first) => errors.push(format!(
                    "line {number}: device {} is also on line {first}",
                    device.device_id
                )),
                None => lines.push(Line { number, device }),
            },
            Err(e) => errors.push(format!("line {number}: {e}")),
        }
    }
    if !errors.is_empty() {
        let shown: Vec<&str> = errors.iter().take(20).map(String::as_str).collect();
        bail!(
            "{}: {} bad line(s), nothing was sent:\n{}{}",
            path.display(),
            errors.len(),
            shown.join("\n"),
            if errors.len() > shown.len() {
                "\n…"
            } else {
                ""
            }
        );
    }
    Ok(lines)
}

fn parse_line(
    r: &csv::StringRecord,
    id: Option<usize>,
    salt: Option<usize>,
    hw: Option<usize>,
    public_key: usize,
    protocols: Option<usize>,
    metadata: Option<usize>,
) -> Result<DeviceRegistration> {
    let field = |i: usize| r.get(i).unwrap_or("");
    let device_id = match (id.map(field).filter(|s| !s.is_empty()), salt, hw) {
        (Some(text), _, _) => text
            .parse::<DeviceId>()
            .with_context(|| format!("device_id {text:?} is not 64 hex digits"))?,
        (None, Some(s), Some(h)) if !field(s).is_empty() && !field(h).is_empty() => {
            DeviceId::derive(field(s).as_bytes(), field(h).as_bytes())
        }
        _ => bail!("no device_id, and no salt and hardware_id"),
    };
    let key = field(public_key);
    let public_key = key
        .parse::<AccountId>()
        .with_context(|| format!("public_key {key:?} is not 64 hex digits"))?;
    let protocols: Vec<String> = protocols
        .map(field)
        .unwrap_or("")
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    if protocols.len() > limits::PROTOCOLS {
        bail!("at most {} protocols", limits::PROTOCOLS);
    }
    if let Some(p) = protocols.iter().find(|p| p.len() > limits::PROTOCOL) {
        bail!("protocol {p:?} is longer than {} bytes", limits::PROTOCOL);
    }
    let metadata = match metadata.map(field).filter(|s| !s.is_empty()) {
        Some(text) => hex::decode(text.trim_start_matches("0x"))
            .with_context(|| format!("metadata {text:?} is not hex"))?,
        None => Vec::new(),
    };
    if metadata.len() > limits::METADATA {
        bail!("metadata is over {} bytes", limits::METADATA);
    }
    Ok(DeviceRegistration {
        device_id,
        public_key,
        protocols,
        metadata,
    })
}

/// What became of one line.
#[derive(Debug, Clone)]
enum Outcome {
    Registered { tx: Hash, height: u64 },
    AlreadyRegistered,
    Failed { tx: Option<Hash>, error: String },
}

/// Which of `lines` the chain already holds (by any manufacturer).
async fn registered(node: &Node, lines: &[Line]) -> Result<Vec<bool>> {
    let mut out = vec![false; lines.len()];
    let mut tasks = tokio::task::JoinSet::new();
    let mut next = 0;
    let mut done = 0;
    while done < lines.len() {
        while next < lines.len() && tasks.len() < LOOKUPS_IN_FLIGHT {
            let (i, id) = (next, lines[next].device.device_id);
            let rpc = node.rpc().clone();
            tasks.spawn(async move { (i, rpc.get_device(id).await) });
            next += 1;
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        let (i, answer) = joined.context("a lookup task")?;
        out[i] = match answer.or_node(node) {
            Ok(_) => true,
            Err(e) if e.code() == Some(atonomi_api::rpc::code::NOT_FOUND) => false,
            Err(e) => return Err(e).context("checking which devices are registered"),
        };
        done += 1;
    }
    Ok(out)
}

/// Progress on stderr: one line rewritten in place on a terminal, plain lines
/// otherwise.
struct Progress {
    total: usize,
    done: usize,
    started: Instant,
    terminal: bool,
}

impl Progress {
    fn advance(&mut self, devices: usize) {
        self.done += devices;
        let rate = self.done as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        let text = format!("{}/{} devices, {rate:.0} devices/s", self.done, self.total);
        let mut err = std::io::stderr();
        if self.terminal {
            let _ = write!(err, "\r{text}   ");
            if self.done >= self.total {
                let _ = writeln!(err);
            }
        } else {
            let _ = writeln!(err, "{text}");
        }
    }
}

async fn register(args: RegisterArgs) -> Result<()> {
    let lines = read_whitelist(&args.csv)?;
    let key = keys::read(&args.key)?;
    let node = Node::connect(&args.rpc.rpc)?;
    let params = node.rpc().get_params().await.or_node(&node)?;
    let batch = (args.batch as usize).min(params.max_batch as usize).max(1);
    let known = registered(&node, &lines).await?;
    let mut outcomes: Vec<Outcome> = known
        .iter()
        .map(|&k| match k {
            true => Outcome::AlreadyRegistered,
            false => Outcome::Failed {
                tx: None,
                error: "not sent".into(),
            },
        })
        .collect();
    let todo: Vec<usize> = (0..lines.len()).filter(|&i| !known[i]).collect();
    let started = Instant::now();
    let mut progress = Progress {
        total: todo.len(),
        done: 0,
        started,
        terminal: std::io::stderr().is_terminal(),
    };
    let chain_id = node.chain_id().await?;
    let mut nonce = node.next_nonce(key.account()).await?;
    let chunks: Vec<&[usize]> = todo.chunks(batch).collect();
    let mut in_flight = tokio::task::JoinSet::new();
    let mut stopped: Option<String> = None;
    let wait = Duration::from_secs(args.wait);
    for chunk in &chunks {
        if stopped.is_some() {
            break;
        }
        let tx = sign_batch(&key, &chain_id, nonce, args.manufacturer, &lines, chunk);
        nonce += 1;
        let hash = node.submit(&tx).await;
        let hash = match hash {
            Ok(h) => h,
            Err(e) => {
                stopped = Some(format!("submitting a batch: {e}"));
                for &i in *chunk {
                    outcomes[i] = Outcome::Failed {
                        tx: Some(tx.hash()),
                        error: e.to_string(),
                    };
                }
                break;
            }
        };
        let client = node.clone();
        let indexes = chunk.to_vec();
        in_flight.spawn(async move { (indexes, hash, client.wait_final(hash, wait).await) });
        while in_flight.len() >= args.concurrency as usize {
            settle(&mut in_flight, &mut outcomes, &mut progress, &mut stopped).await?;
        }
    }
    while !in_flight.is_empty() {
        settle(&mut in_flight, &mut outcomes, &mut progress, &mut stopped).await?;
    }
    let results = args
        .results
        .clone()
        .unwrap_or_else(|| args.csv.with_extension("results.csv"));
    write_results(&results, &lines, &outcomes)?;
    let count = |f: fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
    let done = count(|o| matches!(o, Outcome::Registered { .. }));
    let failed = count(|o| matches!(o, Outcome::Failed { .. }));
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "registered": done,
            "already_registered": count(|o| matches!(o, Outcome::AlreadyRegistered)),
            "failed": failed,
            "batches": chunks.len(),
            "seconds": (secs * 10.0).round() / 10.0,
            "devices_per_s": if secs > 0.0 { (done as f64 / secs).round() } else { 0.0 },
            "results": results,
        })
    );
    match stopped {
        Some(why) => {
            bail!("{failed} device(s) not registered ({why}); run the command again to go on")
        }
        None if failed > 0 => bail!(
            "{failed} device(s) not registered; see {}",
            results.display()
        ),
        None => Ok(()),
    }
}

type Settled = (
    Vec<usize>,
    Hash,
    Result<atonomi_primitives::event::Receipt, atonomi_client::Error>,
);

/// Records the next batch to finish.
async fn settle(
    in_flight: &mut tokio::task::JoinSet<Settled>,
    outcomes: &mut [Outcome],
    progress: &mut Progress,
    stopped: &mut Option<String>,
) -> Result<()> {
    let Some(joined) = in_flight.join_next().await else {
        return Ok(());
    };
    let (indexes, hash, receipt) = joined.context("a batch task")?;
    let outcome = match receipt {
        Ok(r) if r.status == TxStatus::Success => Outcome::Registered {
            tx: hash,
            height: r.height.get(),
        },
        Ok(r) => Outcome::Failed {
            tx: Some(hash),
            error: r.status.to_string(),
        },
        Err(e) => Outcome::Failed {
            tx: Some(hash),
            error: e.to_string(),
        },
    };
    if let Outcome::Failed { error, .. } = &outcome {
        // A later nonce cannot be final before this one: stop sending, settle the rest.
        stopped.get_or_insert_with(|| format!("batch {hash}: {error}"));
    }
    for &i in &indexes {
        outcomes[i] = outcome.clone();
    }
    progress.advance(indexes.len());
    Ok(())
}

fn sign_batch(
    key: &Keypair,
    chain_id: &atonomi_primitives::ChainId,
    nonce: u64,
    manufacturer: u32,
    lines: &[Line],
    chunk: &[usize],
) -> atonomi_primitives::SignedTransaction {
    Transaction {
        chain_id: chain_id.clone(),
        signer: key.account(),
        nonce,
        max_fee: None,
        call: Call::RegisterDevices {
            manufacturer: ManufacturerId::new(manufacturer),
            devices: chunk.iter().map(|&i| lines[i].device.clone()).collect(),
        },
    }
    .sign(key)
}

fn write_results(path: &Path, lines: &[Line], outcomes: &[Outcome]) -> Result<()> {
    let mut w =
        csv::Writer::from_path(path).with_context(|| format!("writing {}", path.display()))?;
    w.write_record(["line", "device_id", "status", "tx_hash", "height", "error"])?;
    for (line, outcome) in lines.iter().zip(outcomes) {
        let (status, tx, height, error) = match outcome {
            Outcome::Registered { tx, height } => (
                "registered",
                tx.to_string(),
                height.to_string(),
                String::new(),
            ),
            Outcome::AlreadyRegistered => (
                "already_registered",
                String::new(),
                String::new(),
                String::new(),
            ),
            Outcome::Failed { tx, error } => (
                "failed",
                tx.map(|t| t.to_string()).unwrap_or_default(),
                String::new(),
                error.clone(),
            ),
        };
        w.write_record([
            line.number.to_string(),
            line.device.device_id.to_string(),
            status.to_string(),
            tx,
            height,
            error,
        ])?;
    }
    w.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
