#!/usr/bin/env bash
# Builds atonomi and starts a single-validator dev chain on the embedded dev genesis.
# Data and demo keys live in $ATONOMI_HOME (default .atonomi-dev); restarting with the
# same home continues the chain. Extra arguments go to `atonomi dev` (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build -p atonomi-cli --bin atonomi
exec "$CARGO_TARGET_DIR/debug/atonomi" dev --home "${ATONOMI_HOME:-.atonomi-dev}" "$@"
