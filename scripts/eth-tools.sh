#!/usr/bin/env bash
# Installs the pinned Ethereum tools (a real anvil and solc, from the npm registry) into
# bridge/eth/node_modules and compiles the contracts into bridge/eth/build/.
# Idempotent; prints the anvil path. Used by scripts/test.sh and the bridge scripts.
set -euo pipefail
cd "$(dirname "$0")/../bridge/eth"
if [ ! -x node_modules/.bin/anvil ] || [ ! -x node_modules/.bin/solcjs ]; then
  echo "==> installing anvil and solc (npm, pinned in bridge/eth/package-lock.json)" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
fi
stamp=build/.sources
sources=$(cat ../contracts/*.sol package.json | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$sources" ]; then
  echo "==> compiling contracts (solc $(node_modules/.bin/solcjs --version))" >&2
  rm -rf build && mkdir -p build
  node_modules/.bin/solcjs --bin --abi --optimize --optimize-runs 200 --base-path .. -o build ../contracts/*.sol >&2
  # solcjs names outputs after the path: keep the contract name only.
  for f in build/*.bin build/*.abi; do
    n="${f##*_sol_}"
    mv "$f" "build/$n"
  done
  echo "$sources" > "$stamp"
fi
echo "$PWD/node_modules/.bin/anvil"
