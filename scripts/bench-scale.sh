#!/usr/bin/env bash
# The scale run of issue 7 (also part of scripts/bench.sh): one validator registers
# devices in whitelist batches of 1,000 until --devices (10M) or --minutes (30) run
# out. After each segment (100k devices first, then 500k each) it measures
# validate-device lookups (single requests, 8 connections) over devices sampled from
# every segment so far, the bytes of the node's data directory and the validator's
# resident memory. Stops early, saying where, when the disk has less than
# MIN_FREE_GIB (10) GiB free. Appends one JSON line per segment to
# bench-results/scale.jsonl and ends with a summary line.
#   scripts/bench-scale.sh [--minutes N] [--devices N]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
minutes=30; devices=10000000
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) minutes="$2"; shift 2 ;;
    --devices) devices="$2"; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
cargo build -q -p atonomi-cli
A="$CARGO_TARGET_DIR/debug/atonomi"
out=bench-results; mkdir -p "$out"; rm -f "$out/scale.jsonl"
dir="$(mktemp -d /tmp/atonomi-scale.XXXX)"
export RPC_BASE="${RPC_BASE:-18850}" P2P_BASE="${P2P_BASE:-26850}" METRICS_BASE="${METRICS_BASE:-19850}"
trap 'scripts/testnet.sh down --dir "$dir/net" > /dev/null 2>&1 || true; rm -rf "$dir"' EXIT
jfield() { python3 -c "import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])$1)"; }
ATONOMI_GENESIS_FUND_MAKER=1 scripts/testnet.sh up 1 --dir "$dir/net" > "$dir/up.log"
"$A" keys dev manufacturer --out "$dir/maker.json" > /dev/null
rpc="http://127.0.0.1:$RPC_BASE"
start=$(date +%s); registered=0; seg=0; samples=""; stopped=""
min_free_gib="${MIN_FREE_GIB:-10}"
while [ $registered -lt "$devices" ] && [ $(( $(date +%s) - start )) -lt $((minutes * 60)) ]; do
  free_gib=$(df --output=avail -BG "$dir" | tail -1 | tr -dc 0-9)
  if [ "$free_gib" -lt "$min_free_gib" ]; then
    stopped="stopped at $registered devices: ${free_gib} GiB free, under MIN_FREE_GIB=$min_free_gib"
    echo "scale: $stopped" >&2
    break
  fi
  txs=$([ $seg = 0 ] && echo 100 || echo 500)
  line=$("$A" bench load --log warn --rpc "$rpc" --funder "$dir/maker.json" --devices-per-tx 1000 --txs "$txs" --rate 40 --batch 2 --drain-secs 600 | tail -1)
  seg=$((seg + 1)); registered=$((registered + $(echo "$line" | jfield '["finalized"]') * 1000))
  samples+=$(echo "$line" | python3 -c "import json,sys; print(','.join(json.loads(sys.stdin.read())['sample_devices'][:16]))"),
  lk=$("$A" bench lookups --log warn --rpc "$rpc" --device "${samples%,}" --lookups 20000 --batch 1 --concurrency 8 | tail -1)
  bytes=$(du -sb "$dir/net/node0/data" | cut -f1)
  rss_kb=$(while read -r pid; do grep -s VmRSS "/proc/$pid/status"; done < "$dir/net/pids" | awk '{s += $2} END {print s + 0}')
  python3 -c "import json,sys; l=json.loads(sys.argv[1]); k=json.loads(sys.argv[2]); print(json.dumps({'segment': $seg, 'devices': $registered, 'elapsed_s': $(date +%s) - $start, 'devices_per_s': round(l['finalized_devices_per_s']), 'lookup_p50_ms': k['request_p50_ms'], 'lookup_p99_ms': k['request_p99_ms'], 'lookups_per_s': round(k['lookups_per_s']), 'bytes_on_disk': $bytes, 'bytes_per_device': round($bytes / max(1, $registered)), 'validator_rss_mb': round($rss_kb / 1024)}))" "$line" "$lk" >> "$out/scale.jsonl"
  echo "scale: $(tail -1 "$out/scale.jsonl")"
done
touch "$out/scale.jsonl"
python3 - "$out/scale.jsonl" "$minutes" "$devices" "$stopped" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
if not rows:
    sys.exit(f"scale run: no segment finished ({sys.argv[4] or 'nothing measured'})")
first, last = rows[0], rows[-1]
why = sys.argv[4] or ("reached the device target" if last["devices"] >= int(sys.argv[3]) else f"the {sys.argv[2]}-minute limit ran out")
print(f"scale run: {last['devices']} devices in {last['elapsed_s']} s ({why}); registration {first['devices_per_s']} devices/s over the first {first['devices']}, "
      f"{last['devices_per_s']} over the last segment; lookup p99 {first['lookup_p99_ms']:.2f} ms at {first['devices']} devices, {last['lookup_p99_ms']:.2f} ms at {last['devices']}; "
      f"{last['bytes_per_device']} bytes on disk per device, validator RSS {last.get('validator_rss_mb', '?')} MB")
PY
