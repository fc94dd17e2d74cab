#!/usr/bin/env bash
# A local test network on loopback.
#   scripts/testnet.sh up N [--full-nodes M] [--dir DIR]   keys, genesis, start, wait for blocks
#   scripts/testnet.sh status [--dir DIR]                  height and hash of every node
#   scripts/testnet.sh down [--dir DIR]                    stop the nodes this script started
# Node i serves JSON-RPC on 127.0.0.1:$((RPC_BASE+i)), libp2p on $((P2P_BASE+i)) and
# Prometheus metrics on $((METRICS_BASE+i)).
# ATONOMI_HEARTBEAT_MS (default 1000) is how long an idle chain waits before an empty block;
# ATONOMI_ADMIN=true turns on the admin (fault-injection) RPC methods;
# ATONOMI_GENESIS_FUND_MAKER=1 moves most of the admin's allocation to the dev
# manufacturer (registration fees for the benchmarks' scale run);
# ATONOMI_BIN runs another atonomi binary (e.g. an older build, for before/after figures).
set -euo pipefail
cd "$(dirname "$0")/.."

cmd="${1:-}"; shift || true
n=4; m=0; dir="${ATONOMI_TESTNET_DIR:-/tmp/atonomi-testnet}"
RPC_BASE="${RPC_BASE:-18700}"; P2P_BASE="${P2P_BASE:-26700}"; METRICS_BASE="${METRICS_BASE:-19700}"
if [ "$cmd" = "up" ] && [ $# -gt 0 ] && [[ "$1" =~ ^[0-9]+$ ]]; then n="$1"; shift; fi
while [ $# -gt 0 ]; do
  case "$1" in
    --full-nodes) m="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

source scripts/env.sh
bin="${ATONOMI_BIN:-$CARGO_TARGET_DIR/debug/atonomi}"

rpc_url() { echo "http://127.0.0.1:$((RPC_BASE + $1))"; }

status() {
  local count; count=$(cat "$dir/count" 2>/dev/null || echo 0)
  for i in $(seq 0 $((count - 1))); do
    "$bin" query status --rpc "$(rpc_url "$i")" 2>/dev/null \
      | python3 -c "import json,sys; s=json.load(sys.stdin); print($i, s['height'], s['latest_block_hash'], '$(rpc_url "$i")')" \
      || echo "$i down $(rpc_url "$i")"
  done
}

down() {
  [ -f "$dir/pids" ] || { echo "no testnet in $dir"; return 0; }
  while read -r pid; do
    # Only processes this script started (pid recorded at start) and still ours.
    if kill -0 "$pid" 2>/dev/null && grep -q atonomi "/proc/$pid/cmdline" 2>/dev/null; then kill -TERM "$pid"; fi
  done < "$dir/pids"
  sleep 1
  while read -r pid; do kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true; done < "$dir/pids"
  rm -f "$dir/pids"
  echo "stopped"
}

start_node() {
  local i=$1
  nohup "$bin" run --home "$dir/node$i" >> "$dir/node$i.log" 2>&1 &
  echo $! >> "$dir/pids"
  disown $!
}

up() {
  [ -f "$dir/pids" ] && down >/dev/null
  rm -rf "$dir"; mkdir -p "$dir"
  if [ -z "${ATONOMI_BIN:-}" ]; then cargo build -p atonomi-cli --bin atonomi >&2; fi
  local total=$((n + m)) validators=() peers_hex=() ids=()
  for i in $(seq 0 $((total - 1))); do
    local out; out=$("$bin" init --home "$dir/node$i")
    local acct pid phex
    acct=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['account'])" "$out")
    pid=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['peer_id'])" "$out")
    phex=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['peer_id_hex'])" "$out")
    ids+=("$pid")
    echo "$pid" >> "$dir/peer_ids"
    if [ "$i" -lt "$n" ]; then validators+=(--validator "$acct,$phex"); else peers_hex+=(--node-peer "$phex"); fi
  done
  "$bin" genesis new --chain-id atonomi-testnet "${validators[@]}" "${peers_hex[@]}" --out "$dir/genesis.json"
  if [ "${ATONOMI_GENESIS_FUND_MAKER:-0}" = 1 ]; then
    "$bin" keys dev admin --out "$dir/admin.json" > /dev/null; "$bin" keys dev manufacturer --out "$dir/maker.json" > /dev/null
    python3 - "$dir/genesis.json" "$("$bin" keys show "$dir/admin.json")" "$("$bin" keys show "$dir/maker.json")" <<'PY'
import json, sys
path, admin, maker = sys.argv[1], json.loads(sys.argv[2])["account"], json.loads(sys.argv[3])["account"]
g = json.load(open(path))
a = next(x for x in g["allocations"] if x["account"] == admin)
m = next(x for x in g["allocations"] if x["account"] == maker)
move = int(a["amount"]) * 9 // 10
a["amount"], m["amount"] = str(int(a["amount"]) - move), str(int(m["amount"]) + move)
json.dump(g, open(path, "w"), indent=2)
PY
  fi
  for i in $(seq 0 $((total - 1))); do
    local peers=""
    for j in $(seq 0 $((total - 1))); do
      [ "$i" = "$j" ] && continue
      peers="$peers\"/ip4/127.0.0.1/tcp/$((P2P_BASE + j))/p2p/${ids[$j]}\", "
    done
    local vkey='validator_key = "keys/validator.json"'
    [ "$i" -ge "$n" ] && vkey="# full node: no validator key"
    cp "$dir/genesis.json" "$dir/node$i/genesis.json"
    cat > "$dir/node$i/config.toml" <<EOF
genesis = "genesis.json"
$vkey

[rpc]
addr = "127.0.0.1:$((RPC_BASE + i))"

[p2p]
listen = "/ip4/127.0.0.1/tcp/$((P2P_BASE + i))"
peers = [${peers%, }]
node_key = "keys/node.json"

[metrics]
addr = "127.0.0.1:$((METRICS_BASE + i))"

[admin]
enabled = ${ATONOMI_ADMIN:-false}

[consensus]
heartbeat_ms = ${ATONOMI_HEARTBEAT_MS:-1000}
propose_timeout_ms = 3000
EOF
  done
  echo "$total" > "$dir/count"
  for i in $(seq 0 $((total - 1))); do start_node "$i"; done
  # Wait until every node has finalized a few blocks.
  for _ in $(seq 1 120); do
    local ok=1
    for i in $(seq 0 $((total - 1))); do
      h=$("$bin" query status --rpc "$(rpc_url "$i")" 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin)['height'])" 2>/dev/null || echo 0)
      [ "$h" -ge 2 ] || ok=0
    done
    [ "$ok" = 1 ] && break
    sleep 1
  done
  status
  [ "$ok" = 1 ] || { echo "the testnet did not finalize blocks; logs in $dir" >&2; exit 1; }
}

case "$cmd" in
  up) up ;;
  status) status ;;
  down) down ;;
  *) sed -n '2,8p' "$0"; exit 2 ;;
esac
