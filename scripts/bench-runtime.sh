#!/usr/bin/env bash
# Runtime benchmark on RocksDB (figures in BENCHMARKS.md). Extra flags go to
# `atonomi bench runtime` (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build -p atonomi-cli --bin atonomi
exec "$CARGO_TARGET_DIR/debug/atonomi" bench runtime "$@"
