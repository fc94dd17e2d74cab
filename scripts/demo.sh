#!/usr/bin/env bash
# Builds atonomi and runs the runtime demo on the embedded dev genesis.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build -p atonomi-cli --bin atonomi
exec "$CARGO_TARGET_DIR/debug/atonomi" demo "$@"
