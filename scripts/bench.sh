#!/usr/bin/env bash
# Benchmarks in one go (issue 7), everything on this one machine:
#   1. the signature-verification bound (ed25519 verifications/s, one core and all);
#   2. a 4-validator cluster (scripts/testnet.sh) at stepped offered rates until
#      saturation (CometBFT's method: raise the offered load until the finalized rate
#      stops following it), for transfers and for whitelist batches of 1,000 devices,
#      then transfers at half of saturation for the latency there; (full profile)
#      reputation-write batches and device payments at two offered rates each;
#   3. validate-device lookups against one node, single requests and batches of 100,
#      over devices the whitelist steps registered;
#   4. the Ethereum baseline: the original per-device registry on a real anvil (1-s
#      blocks, 30M gas) under the same open-loop method (atonomi bench eth), and the
#      gas of our checkpoints (cargo run -p atonomi-bridge --example gas);
#   5. (full profile) the scale run: one validator registering devices in segments
#      until 10M devices or --scale-minutes (30) run out, with registration throughput,
#      lookup p99 and bytes on disk per device along the way;
#   6. plots (PNG, matplotlib in a venv under ~/.cache/atonomi) in bench-results/.
# Writes bench-results/*.json, prints one line per figure and, last, one JSON object
# with finalized_tps, devices_per_s, p50_ms, lookups_per_s, eth_gas_per_device (and more).
#   scripts/bench.sh --quick                 (under 5 minutes once built)
#   scripts/bench.sh [--scale-minutes N] [--scale-devices N] [--no-scale]
#   scripts/bench.sh --transfers-only        (step 2's transfer search alone, ~15 min)
# ATONOMI_BIN=<path> runs another build of atonomi (e.g. an older commit's, for
# before/after figures) for the cluster and the load.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
quick=0; scale=1; scale_minutes=30; scale_devices=10000000; transfers_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; scale=0; shift ;;
    --no-scale) scale=0; shift ;;
    --transfers-only) transfers_only=1; scale=0; shift ;;
    --scale-minutes) scale_minutes="$2"; shift 2 ;;
    --scale-devices) scale_devices="$2"; shift 2 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
anvil_bin=$(scripts/eth-tools.sh | tail -1)
if [ -z "${ATONOMI_BIN:-}" ]; then cargo build -q -p atonomi-cli; fi
A="${ATONOMI_BIN:-$CARGO_TARGET_DIR/debug/atonomi}"
out=bench-results; mkdir -p "$out"; rm -f "$out"/*.json "$out"/*.jsonl "$out"/*.png
dir="$(mktemp -d /tmp/atonomi-bench.XXXX)"
export RPC_BASE="${RPC_BASE:-18800}" P2P_BASE="${P2P_BASE:-26800}" METRICS_BASE="${METRICS_BASE:-19800}"
anvil_pid=""
cleanup() {
  scripts/testnet.sh down --dir "$dir/net" > /dev/null 2>&1 || true
  [ -n "$anvil_pid" ] && kill "$anvil_pid" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
last() { tail -1; }
# One field of the last JSON line on stdin; floats rounded for the summary lines.
jget() { python3 -c "import json,sys; v=json.loads(sys.stdin.read().strip().splitlines()[-1])$1; print(round(v, 1 if abs(v) < 100 else None) if isinstance(v, float) else v)"; }
gt() { python3 -c "import sys; sys.exit(0 if $1 > $2 else 1)"; }
"$A" keys dev alice --out "$dir/alice.json" > /dev/null
"$A" keys dev manufacturer --out "$dir/maker.json" > /dev/null

# 1. The signature-verification bound.
v=$("$A" bench verify --signatures $([ $quick = 1 ] && echo 5000 || echo 40000) | last)
echo "$v" > "$out/verify.json"
verify_one=$(echo "$v" | jget '["single_per_s_one_core"]'); verify_batch=$(echo "$v" | jget '["batch_per_s_one_core"]'); verify_all=$(echo "$v" | jget '["batch_per_s_all_cores"]')
echo "ed25519 verifications: $verify_one/s singly on one core, $verify_batch/s in batches on one core, $verify_all/s in batches on all $(echo "$v" | jget '["cores"]') cores"

# 2. The cluster.
scripts/testnet.sh up 4 --dir "$dir/net" > "$dir/up.log"
rpcs="http://127.0.0.1:$RPC_BASE,http://127.0.0.1:$((RPC_BASE+1)),http://127.0.0.1:$((RPC_BASE+2)),http://127.0.0.1:$((RPC_BASE+3))"
if [ $quick = 1 ]; then
  transfer_rates="500 1000"; device_rates="10"; secs=8
else
  transfer_rates="500 1000 2000 3000 4000 5000 6000 8000 10000 12000"; device_rates="5 10 15 20 30 40 60"; secs=10
fi
sat_tps=0; sat_p50=0; sat_devices=0
# Transfers, stepped; stop after the first step that finalizes under 85% of the offer.
for r in $transfer_rates; do
  line=$("$A" bench load --log warn --rpc "$rpcs" --funder "$dir/alice.json" --txs $((r*secs)) --rate "$r" --batch 100 | last)
  echo "$line" > "$out/transfers-$r.json"
  tps=$(echo "$line" | jget '["finalized_tps"]')
  echo "transfers offered $r/s: $tps finalized/s, p50 $(echo "$line" | jget '["p50_ms"]') ms, p99 $(echo "$line" | jget '["p99_ms"]') ms, $(echo "$line" | jget '["txs_per_block"]') tx/block, refused $(echo "$line" | jget '["rejected"]'), dropped $(echo "$line" | jget '["dropped"]'), lost $(echo "$line" | jget '["lost"]')"
  if gt "$tps" "$sat_tps"; then sat_tps=$tps; sat_p50=$(echo "$line" | jget '["p50_ms"]'); fi
  gt "$tps" "0.85 * $r" || break
done
# Latency at half of saturation.
half=$(python3 -c "print(max(100, int($sat_tps / 2)))")
line=$("$A" bench load --log warn --rpc "$rpcs" --funder "$dir/alice.json" --txs $((half*secs)) --rate "$half" --batch 100 | last)
echo "$line" > "$out/transfers-half.json"
half_p50=$(echo "$line" | jget '["p50_ms"]')
echo "transfers at half of saturation ($half/s offered): $(echo "$line" | jget '["finalized_tps"]') finalized/s, p50 $half_p50 ms, p90 $(echo "$line" | jget '["p90_ms"]') ms, p99 $(echo "$line" | jget '["p99_ms"]') ms"
# Overload: twice the saturation rate offered. Finalized should stay near the peak;
# what the pool cannot take is refused or dropped with a reason, never lost.
over=$(python3 -c "print(max(1000, int($sat_tps * 2)))")
line=$("$A" bench load --log warn --rpc "$rpcs" --funder "$dir/alice.json" --txs $((over*secs)) --rate "$over" --batch 100 | last)
echo "$line" > "$out/transfers-overload.json"
over_tps=$(echo "$line" | jget '["finalized_tps"]'); over_lost=$(echo "$line" | jget '["lost"]')
echo "transfers at twice saturation ($over/s offered): $over_tps finalized/s ($(python3 -c "print(round(100 * $over_tps / max($sat_tps, 1e-9)))")% of the peak), refused $(echo "$line" | jget '["rejected"]'), dropped $(echo "$line" | jget '["dropped"]'), lost $over_lost"
what=$([ $quick = 1 ] && echo "highest finalized rate (quick profile: no saturation search)" || echo "saturation")
echo "transfers $what: $sat_tps finalized/s (p50 there $sat_p50 ms); verification share: $(python3 -c "print(round(100 * $sat_tps * 4 / $verify_all, 1))")% of the all-core batch-verification bound (4 validators each verify every transaction once)"
[ $transfers_only = 1 ] && exit 0

# Whitelist batches, stepped.
samples=""
for r in $device_rates; do
  line=$("$A" bench load --log warn --rpc "$rpcs" --funder "$dir/maker.json" --devices-per-tx 1000 --txs $((r*secs)) --rate "$r" --batch 2 | last)
  echo "$line" > "$out/whitelist-$((r*1000)).json"
  d=$(echo "$line" | jget '["finalized_devices_per_s"]')
  samples+=$(echo "$line" | python3 -c "import json,sys; print(','.join(json.loads(sys.stdin.read())['sample_devices'][:32]))"),
  echo "whitelist offered $((r*1000)) devices/s: $d finalized/s, p50 $(echo "$line" | jget '["p50_ms"]') ms, $(echo "$line" | jget '["devices_per_checkpoint"]') devices per checkpoint"
  if gt "$d" "$sat_devices"; then sat_devices=$d; fi
  gt "$d" "0.85 * $r * 1000" || break
done

# Reputation writes and device payments (full profile: two offered rates each).
if [ $quick = 0 ]; then
  "$A" keys dev auditor --out "$dir/auditor.json" > /dev/null
  for r in 10 40; do
    line=$("$A" bench load --log warn --rpc "$rpcs" --funder "$dir/auditor.json" --maker "$dir/maker.json" --reputation-per-tx 100 --txs $((r*secs)) --rate "$r" --batch 2 | last)
    echo "$line" > "$out/reputation-$((r*100)).json"
    echo "reputation writes offered $((r*100))/s (batches of 100): $(python3 -c "print(round($(echo "$line" | jget '["finalized_tps"]') * 100))") finalized/s, p50 $(echo "$line" | jget '["p50_ms"]') ms, receipts $(echo "$line" | jget '["receipts_succeeded"]')/$(echo "$line" | jget '["receipts_sampled"]') succeeded"
  done
  for r in 1000 3000; do
    line=$("$A" bench load --log warn --rpc "$rpcs" --funder "$dir/alice.json" --maker "$dir/maker.json" --auditor-key "$dir/auditor.json" --payers 200 --txs $((r*secs)) --rate "$r" --batch 100 | last)
    echo "$line" > "$out/payments-$r.json"
    echo "device payments offered $r/s: $(echo "$line" | jget '["finalized_tps"]') finalized/s, p50 $(echo "$line" | jget '["p50_ms"]') ms, p99 $(echo "$line" | jget '["p99_ms"]') ms, receipts $(echo "$line" | jget '["receipts_succeeded"]')/$(echo "$line" | jget '["receipts_sampled"]') succeeded"
  done
fi

# 3. Lookups of registered devices against one node.
n=$([ $quick = 1 ] && echo 50000 || echo 500000)
single=$("$A" bench lookups --log warn --rpc "http://127.0.0.1:$RPC_BASE" --device "${samples%,}" --lookups $((n/5)) --batch 1 --concurrency 8 | last)
batched=$("$A" bench lookups --log warn --rpc "http://127.0.0.1:$RPC_BASE" --device "${samples%,}" --lookups "$n" --batch 100 --concurrency 8 | last)
echo "$single" > "$out/lookups-single.json"; echo "$batched" > "$out/lookups-batched.json"
echo "lookups, single requests: $(echo "$single" | jget '["lookups_per_s"]')/s, p50 $(echo "$single" | jget '["request_p50_ms"]') ms, p99 $(echo "$single" | jget '["request_p99_ms"]') ms"
echo "lookups, batches of 100: $(echo "$batched" | jget '["lookups_per_s"]')/s, p99 per batch $(echo "$batched" | jget '["request_p99_ms"]') ms"
lookups=$(echo "$batched" | jget '["lookups_per_s"]')
scripts/testnet.sh down --dir "$dir/net" > /dev/null 2>&1 || true

# 4. The Ethereum baseline on a real anvil: 1-s blocks of 30M gas.
eth_port=$((RPC_BASE + 50))
"$anvil_bin" --port "$eth_port" --block-time 1 --gas-limit 30000000 --silent > "$dir/anvil.log" 2>&1 &
anvil_pid=$!
for _ in $(seq 1 50); do python3 -c "import socket; socket.create_connection((\"127.0.0.1\", $eth_port), 1)" 2>/dev/null && break; sleep 0.2; done
eth_best=0; eth_gas=0
for r in $([ $quick = 1 ] && echo "200" || echo "100 200 400 800"); do
  line=$("$A" bench eth --log warn --eth-rpc "http://127.0.0.1:$eth_port" --devices $((r*secs)) --rate "$r" | last)
  echo "$line" > "$out/eth-$r.json"
  d=$(echo "$line" | jget '["devices_per_s"]'); eth_gas=$(echo "$line" | jget '["gas_per_device"]')
  echo "ethereum (original design, 1-s blocks of 30M gas) offered $r devices/s: $d registered/s, $eth_gas gas/device, p50 $(echo "$line" | jget '["p50_ms"]') ms"
  if gt "$d" "$eth_best"; then eth_best=$d; fi
  gt "$d" "0.85 * $r" || break
done
kill "$anvil_pid" 2>/dev/null || true; anvil_pid=""
cargo run -q -p atonomi-bridge --example gas > "$out/eth-gas.jsonl"
while read -r l; do echo "ethereum gas: $l"; done < "$out/eth-gas.jsonl"

# 5. The scale run (scripts/bench-scale.sh: one validator, 10M devices or N minutes).
if [ $scale = 1 ]; then
  scripts/bench-scale.sh --minutes "$scale_minutes" --devices "$scale_devices"
fi

# 6. Plots.
if scripts/plot.sh "$out" > "$dir/plot.log" 2>&1; then
  echo "plots: $(ls "$out"/*.png | tr '\n' ' ')"
else
  echo "plots skipped (matplotlib could not be installed): $(tail -1 "$dir/plot.log")"
fi

baseline=$(grep '"batch":1,' "$out/eth-gas.jsonl" | jget '["gas"]')
summary=$(python3 -c "import json; print(json.dumps({'finalized_tps': $sat_tps, 'devices_per_s': $sat_devices, 'p50_ms': $half_p50, 'p50_at_saturation_ms': $sat_p50, 'lookups_per_s': $lookups, 'eth_gas_per_device': $baseline, 'eth_devices_per_s': $eth_best, 'single_verifications_per_s_one_core': $verify_one, 'batch_verifications_per_s_all_cores': $verify_all, 'overload_finalized_tps': $over_tps, 'overload_lost': $over_lost, 'profile': '$([ $quick = 1 ] && echo quick || echo full)'}))")
echo "$summary" > "$out/summary.json"
echo "$summary"
