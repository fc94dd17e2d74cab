#!/usr/bin/env bash
# Benchmarks in one go (issue 7; the full profile, plots and the scale run are not here
# yet). On a 4-validator cluster on this machine (scripts/testnet.sh):
#   - transfers at stepped offered rates (atonomi bench load),
#   - whitelist batches of 1,000 devices at stepped rates (bench load --devices-per-tx),
#   - validate-device lookups against one node, single and batched (bench lookups),
#   - the Ethereum baseline: gas per device of the original per-device design and per
#     checkpoint of ours, on a real anvil (cargo run -p atonomi-bridge --example gas).
# Writes bench-results/<name>.json, prints one line per figure and, last, one JSON
# object with finalized_tps, devices_per_s, p50_ms, lookups_per_s, eth_gas_per_device.
#   scripts/bench.sh --quick     (under 5 minutes once built)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
quick=0; [ "${1:-}" = "--quick" ] && quick=1
scripts/eth-tools.sh > /dev/null
cargo build -q -p atonomi-node
A="$CARGO_TARGET_DIR/debug/atonomi"
out=bench-results; mkdir -p "$out"
dir="$(mktemp -d /tmp/atonomi-bench.XXXX)"
export RPC_BASE="${RPC_BASE:-18800}" P2P_BASE="${P2P_BASE:-26800}" METRICS_BASE="${METRICS_BASE:-19800}"
trap 'scripts/testnet.sh down --dir "$dir" > /dev/null 2>&1 || true; rm -rf "$dir"' EXIT
scripts/testnet.sh up 4 --dir "$dir" > "$dir/up.log"
rpcs="http://127.0.0.1:$RPC_BASE,http://127.0.0.1:$((RPC_BASE+1)),http://127.0.0.1:$((RPC_BASE+2)),http://127.0.0.1:$((RPC_BASE+3))"
"$A" keys dev alice --out "$dir/alice.json" > /dev/null
"$A" keys dev manufacturer --out "$dir/maker.json" > /dev/null
jget() { python3 -c "import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); print(d$1)"; }

if [ $quick = 1 ]; then transfer_rates="300 1000"; device_rates="10"; secs=8; else transfer_rates="300 1000 2000 4000"; device_rates="5 10 20 40"; secs=10; fi
best_tps=0; best_p50=0; best_devices=0
for r in $transfer_rates; do
  line=$("$A" bench load --log warn --rpc "$rpcs" --funder "$dir/alice.json" --txs $((r*secs)) --rate "$r" --batch 100 | tail -1)
  echo "$line" > "$out/transfers-$r.json"
  echo "transfers offered $r/s: $(echo "$line" | jget '["finalized_tps"]') finalized/s, p50 $(echo "$line" | jget '["p50_ms"]') ms, lost $(echo "$line" | jget '["lost"]')"
  tps=$(echo "$line" | jget '["finalized_tps"]')
  if python3 -c "import sys; sys.exit(0 if $tps > $best_tps else 1)"; then best_tps=$tps; best_p50=$(echo "$line" | jget '["p50_ms"]'); fi
done
for r in $device_rates; do
  line=$("$A" bench load --log warn --rpc "$rpcs" --funder "$dir/maker.json" --devices-per-tx 1000 --txs $((r*secs)) --rate "$r" --batch 2 | tail -1)
  echo "$line" > "$out/whitelist-$r.json"
  echo "whitelist offered $((r*1000)) devices/s: $(echo "$line" | jget '["finalized_devices_per_s"]') finalized/s, $(echo "$line" | jget '["devices_per_checkpoint"]') devices per checkpoint"
  d=$(echo "$line" | jget '["finalized_devices_per_s"]')
  if python3 -c "import sys; sys.exit(0 if $d > $best_devices else 1)"; then best_devices=$d; fi
done

# Lookups of registered devices against one node.
ids=()
regs=""
for i in 1 2 3 4 5 6 7 8; do
  id=$("$A" device-id bench-salt "LOOKUP-$i" | jget '["device_id"]'); ids+=("$id")
  regs+="{\"device_id\":\"$id\",\"public_key\":\"$("$A" keys show "$dir/maker.json" | jget '["account"]')\",\"protocols\":[],\"metadata\":[]},"
done
"$A" tx --rpc "http://127.0.0.1:$RPC_BASE" --key "$dir/maker.json" "{\"register_devices\":{\"manufacturer\":1,\"devices\":[${regs%,}]}}" > /dev/null
devs=$(IFS=,; echo "${ids[*]}")
n=$([ $quick = 1 ] && echo 50000 || echo 500000)
single=$("$A" bench lookups --log warn --rpc "http://127.0.0.1:$RPC_BASE" --device "$devs" --lookups $((n/5)) --batch 1 --concurrency 8 | tail -1)
batched=$("$A" bench lookups --log warn --rpc "http://127.0.0.1:$RPC_BASE" --device "$devs" --lookups "$n" --batch 100 --concurrency 8 | tail -1)
echo "$single" > "$out/lookups-single.json"; echo "$batched" > "$out/lookups-batched.json"
echo "lookups, single requests: $(echo "$single" | jget '["lookups_per_s"]')/s, p99 $(echo "$single" | jget '["request_p99_ms"]') ms"
echo "lookups, batches of 100: $(echo "$batched" | jget '["lookups_per_s"]')/s, p99 per batch $(echo "$batched" | jget '["request_p99_ms"]') ms"
lookups=$(echo "$batched" | jget '["lookups_per_s"]')
scripts/testnet.sh down --dir "$dir" > /dev/null 2>&1 || true

# The Ethereum baseline (gas is deterministic).
cargo run -q -p atonomi-bridge --example gas > "$out/eth-gas.jsonl"
baseline=$(grep '"batch":1,' "$out/eth-gas.jsonl" | jget '["gas"]')
while read -r l; do echo "ethereum: $l"; done < "$out/eth-gas.jsonl"

summary=$(python3 -c "import json; print(json.dumps({'finalized_tps': $best_tps, 'devices_per_s': $best_devices, 'p50_ms': $best_p50, 'lookups_per_s': $lookups, 'eth_gas_per_device': $baseline, 'profile': '$([ $quick = 1 ] && echo quick || echo full)'}))")
echo "$summary" > "$out/summary.json"
echo "$summary"
