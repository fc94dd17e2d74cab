#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ (libFuzzer), each for a bounded time.
#   scripts/fuzz.sh                      every target for 15 s (the CI profile)
#   scripts/fuzz.sh --seconds 600        every target for 10 minutes (the long profile)
#   scripts/fuzz.sh --seconds 60 tx_execute net_message
# Installs cargo-fuzz when missing. libFuzzer needs nightly flags: on the stable
# toolchain they are enabled with RUSTC_BOOTSTRAP=1 for this build only. The fuzz crates
# never link RocksDB (their sanitizer build would recompile it). Corpora grow under
# ~/.cache/atonomi/fuzz-corpus; crashes land in fuzz/artifacts/<target>/ and fail the run.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=15
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(tx_decode tx_execute net_message genesis_config rpc_params state_proof)

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export CARGO_TARGET_DIR="$HOME/.cache/atonomi/fuzz-target"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz" >&2
  cargo install cargo-fuzz --version 0.13.1 --locked --quiet
fi
export RUSTC_BOOTSTRAP=1
corpus_root="$HOME/.cache/atonomi/fuzz-corpus"
seeds="$(mktemp -d)"
trap 'rm -rf "$seeds"' EXIT
(cd fuzz && cargo run --quiet --release --example seeds -- "$seeds")

summary=()
status=0
for t in "${targets[@]}"; do
  mkdir -p "$corpus_root/$t" "$seeds/$t"
  log="$(mktemp)"
  echo "==> fuzz $t for ${seconds}s"
  if (cd fuzz && cargo fuzz run --release --debug-assertions "$t" "$corpus_root/$t" "$seeds/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=1024 -max_len=65536 -print_final_stats=1) >"$log" 2>&1; then
    result=ok
  else
    result=CRASH
    status=1
    tail -n 60 "$log"
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  summary+=("$(printf '%-16s %-6s %12s execs  %6s s  cov %s' "$t" "$result" "${runs:-?}" "$seconds" "${cov:-?}")")
  rm -f "$log"
done
echo "target           result        execs   time   coverage"
printf '%s\n' "${summary[@]}"
exit $status
