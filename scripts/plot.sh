#!/usr/bin/env bash
# Plots of a benchmark run (PNG): scripts/plot.sh [bench-results]. Installs matplotlib
# (pinned) into a venv under ~/.cache/atonomi once; needs PyPI the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${ATONOMI_VENV:-$HOME/.cache/atonomi/venv}"
if ! "$venv/bin/python" -c "import matplotlib" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "matplotlib==3.9.2"
fi
exec "$venv/bin/python" scripts/plot.py "${1:-bench-results}"
