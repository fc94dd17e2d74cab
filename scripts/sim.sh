#!/usr/bin/env bash
# Runs the consensus simulation over many seeds on every core.
#   scripts/sim.sh [SEEDS] [FIRST_SEED]      (default 100000 seeds from 0)
# One failing seed prints its violation, its scenario and the command that replays it:
#   ATONOMI_SIM_SEED=n ATONOMI_SIM_TRACE=1 ATONOMI_SIM_LOG=info \
#     cargo test -p atonomi-consensus --test simulation replay_one_seed -- --nocapture
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
export ATONOMI_SIM_SEEDS="${1:-100000}"
export ATONOMI_SIM_START="${2:-0}"
exec cargo test -p atonomi-consensus --test simulation sweep_from_env -- --ignored --nocapture
