#!/usr/bin/env bash
# Runs the whole test suite: unit, property, simulation and process-level tests
# (cargo nextest), then 15 s of each fuzz target (scripts/fuzz.sh; ATONOMI_SKIP_FUZZ=1
# skips it), then 20 rounds of process faults on a real 5-node cluster
# (scripts/faults.sh; ATONOMI_SKIP_FAULTS=1 skips them). The first run builds RocksDB
# from source (~15 minutes on 2 cores); later runs reuse it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
# A real anvil and solc (npm, pinned) and the compiled contracts, for the bridge tests.
scripts/eth-tools.sh > /dev/null
# README's walkthrough, which a test runs as written, uses jq.
ensure_deb jq jq "README's walkthrough uses it"
# The monitoring test runs a real Prometheus against the dashboard and alerting rules.
ensure_deb promtool prometheus "the dashboard and alerts are checked against a real Prometheus"

if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast --status-level fail --final-status-level slow
else
  cargo test --workspace --no-fail-fast
fi

if [ "${ATONOMI_SKIP_FUZZ:-0}" != 1 ]; then
  echo "==> fuzz targets, 15 s each: scripts/fuzz.sh"
  scripts/fuzz.sh --seconds 15
fi

if [ "${ATONOMI_SKIP_FAULTS:-0}" != 1 ]; then
  echo "==> process faults: scripts/faults.sh --rounds 20"
  scripts/faults.sh --rounds 20
fi
