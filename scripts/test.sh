#!/usr/bin/env bash
# Runs the whole test suite. The first run builds RocksDB from source (~15 minutes
# on 2 cores); later runs reuse it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast --status-level fail --final-status-level slow
else
  cargo test --workspace --no-fail-fast
fi
