#!/usr/bin/env bash
# Process-level faults on a real cluster under load (issue 6, first part).
#   scripts/faults.sh [--rounds N] [--dir DIR]      default 20 rounds
# Starts 4 validators + 1 full node (scripts/testnet.sh, its own ports), keeps a
# stream of transfers going, and runs rounds of perturbations on a random validator:
#   kill9   kill -9 at a random moment, restart after 0.5–3 s (the RocksDB write of a
#           step or a commit is atomic: a kill mid-write is a torn tail RocksDB drops)
#   pause   SIGSTOP for 1–4 s, then SIGCONT
#   restart SIGTERM (graceful), start again
#   wipe    kill -9, delete the data directory (keys kept), start again: the node
#           resyncs and refuses to sign up to the height after the network's
#   serial  the pattern behind a 26-s stall of an outside run (issue 15): one validator
#           paused 4.3 s, another killed and restarted 3.3 s later, the first paused
#           again 3.3 s, the other killed again for 1.3 s — never more than one down
#   part22 / part31  network partition 2–2 or 3–1 for 2–6 s through the nodes' admin
#           fault-injection RPC (admin_setBlockedPeers: refuse and drop the other side's
#           peers; [admin] enabled only in this test network), then heal
# After each round: every node alive, all within 3 heights of each other within the
# recovery bound, the same block hash at every common height, and every transaction
# acknowledged as final found in a block on every node. Prints a table; exits 1 on any
# violation. Stops only the processes it started.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=20; dir="/tmp/atonomi-faults"
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
export RPC_BASE=18800 P2P_BASE=26800 METRICS_BASE=19800 ATONOMI_TESTNET_DIR="$dir" ATONOMI_ADMIN=true
RECOVERY_BOUND=${RECOVERY_BOUND:-60}

source scripts/env.sh
bin="$CARGO_TARGET_DIR/debug/atonomi"
rpc() { echo "http://127.0.0.1:$((RPC_BASE + $1))"; }
height() { "$bin" query status --rpc "$(rpc "$1")" 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin)['height'])" 2>/dev/null || echo -1; }

loadpid=""
cleanup() {
  [ -n "$loadpid" ] && kill "$loadpid" 2>/dev/null || true
  scripts/testnet.sh down --dir "$dir" >/dev/null 2>&1 || true
}
trap cleanup EXIT

scripts/testnet.sh up 4 --full-nodes 1 --dir "$dir" >/dev/null
nodes=5

# The funded dev account "alice" sends 1 base unit to "bob" over and over; each
# transaction acknowledged as final is recorded.
keys="$dir/keys"; mkdir -p "$keys"
if [ ! -f "$keys/alice.json" ]; then
  # `atonomi dev` writes the dev key files on first start; take them from a throwaway home.
  tmp="$dir/devkeys"; rm -rf "$tmp"
  ( "$bin" dev --home "$tmp" --rpc-addr 127.0.0.1:$((RPC_BASE + 90)) >/dev/null 2>&1 & echo $! > "$dir/devpid" )
  for _ in $(seq 1 100); do [ -f "$tmp/keys/bob.json" ] && break; sleep 0.1; done
  kill "$(cat "$dir/devpid")" 2>/dev/null || true
  cp "$tmp/keys/"*.json "$keys/"
fi
bob=$("$bin" keys show "$keys/bob.json" | python3 -c "import json,sys; print(json.load(sys.stdin)['account'])")
(
  i=0
  while true; do
    node=$((i % 4)); i=$((i + 1))
    out=$("$bin" tx --rpc "$(rpc $node)" --key "$keys/alice.json" --wait 30 "{\"transfer\":{\"to\":\"$bob\",\"amount\":\"1\"}}" 2>/dev/null) || { sleep 0.2; continue; }
    echo "$out" | python3 -c "import json,sys; print(json.load(sys.stdin)['tx_hash'])" >> "$dir/acked.txt"
  done
) &
loadpid=$!

declare -A count=([kill9]=0 [pause]=0 [restart]=0 [wipe]=0 [part22]=0 [part31]=0 [serial]=0)
max_recovery=0; violations=0
# FAULT_KINDS="serial pause" narrows the kinds drawn (for measuring one pattern).
read -r -a kinds <<< "${FAULT_KINDS:-kill9 pause restart wipe part22 part31 serial}"
mapfile -t peer_ids < "$dir/peer_ids"
# block NODE PEER_ID...: that node refuses and drops these peers (none: heal).
block() {
  local node=$1; shift
  python3 - "$(rpc "$node")" "$@" <<'PY'
import json, sys, urllib.request
url, peers = sys.argv[1], sys.argv[2:]
body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "admin_setBlockedPeers", "params": [peers]}).encode()
req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
r = json.load(urllib.request.urlopen(req, timeout=10))
sys.exit(0 if "result" in r else 1)
PY
}
# partition "A B ...": those nodes on one side, every other node on the other.
partition() {
  local side=" $1 "
  for i in $(seq 0 $((nodes - 1))); do
    local others=()
    for j in $(seq 0 $((nodes - 1))); do
      a=0; b=0; [[ "$side" == *" $i "* ]] && a=1; [[ "$side" == *" $j "* ]] && b=1
      [ "$a" != "$b" ] && others+=("${peer_ids[$j]}")
    done
    block "$i" "${others[@]}" || echo "node $i did not take the partition" >&2
  done
}
heal() { for i in $(seq 0 $((nodes - 1))); do block "$i" || true; done; }
pid_of() { sed -n "$(( $1 + 1 ))p" "$dir/pids"; }
# relaunch NODE: starts it again and records its pid.
relaunch() {
  nohup "$bin" run --home "$dir/node$1" >> "$dir/node$1.log" 2>&1 &
  local newpid=$!; disown "$newpid"; sed -i "$(($1 + 1))s/.*/$newpid/" "$dir/pids"
}
# kill_for NODE SECONDS: kill -9, then start again after SECONDS.
kill_for() { kill -9 "$(pid_of "$1")" 2>/dev/null || true; sleep "$2"; relaunch "$1"; }
# pause_for NODE SECONDS
pause_for() { local p; p=$(pid_of "$1"); kill -STOP "$p"; sleep "$2"; kill -CONT "$p"; }

for r in $(seq 1 "$rounds"); do
  kind=${kinds[$((RANDOM % ${#kinds[@]}))]}
  [ "$r" -eq 1 ] && kind=serial  # the pattern of the 26-s stall runs in every run
  v=$((RANDOM % 4))
  count[$kind]=$((count[$kind] + 1))
  sleep "0.$((RANDOM % 9 + 1))"
  pid=$(pid_of "$v")
  case "$kind" in
    kill9)
      kill -9 "$pid" 2>/dev/null || true
      sleep "$((RANDOM % 3)).$((RANDOM % 9))"
      nohup "$bin" run --home "$dir/node$v" >> "$dir/node$v.log" 2>&1 &
      newpid=$!; disown "$newpid"; sed -i "$((v + 1))s/.*/$newpid/" "$dir/pids" ;;
    pause)
      kill -STOP "$pid"; sleep "$((RANDOM % 4 + 1))"; kill -CONT "$pid" ;;
    restart)
      kill -TERM "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
      nohup "$bin" run --home "$dir/node$v" >> "$dir/node$v.log" 2>&1 &
      newpid=$!; disown "$newpid"; sed -i "$((v + 1))s/.*/$newpid/" "$dir/pids" ;;
    part22)
      other=$(( (v + 1 + RANDOM % 3) % 4 ))
      partition "$v $other"; sleep "$((RANDOM % 5 + 2))"; heal ;;
    part31)
      partition "$v"; sleep "$((RANDOM % 5 + 2))"; heal ;;
    serial)
      other=$(( (v + 1 + RANDOM % 3) % 4 ))
      pause_for "$v" 4.3; kill_for "$other" 3.3; pause_for "$v" 3.3; kill_for "$other" 1.3 ;;
    wipe)
      kill -9 "$pid" 2>/dev/null || true; sleep 0.2
      rm -rf "$dir/node$v/data"
      nohup "$bin" run --home "$dir/node$v" >> "$dir/node$v.log" 2>&1 &
      newpid=$!; disown "$newpid"; sed -i "$((v + 1))s/.*/$newpid/" "$dir/pids" ;;
  esac
  # Recovery: all nodes answer and are within 3 heights, and the chain moved on.
  start=$(date +%s); base=$(height 0)
  while true; do
    hs=(); for i in $(seq 0 $((nodes - 1))); do hs+=("$(height "$i")"); done
    lo=$(printf '%s\n' "${hs[@]}" | sort -n | head -1); hi=$(printf '%s\n' "${hs[@]}" | sort -n | tail -1)
    if [ "$lo" -ge 0 ] && [ $((hi - lo)) -le 3 ] && [ "$hi" -gt "$base" ]; then break; fi
    if [ $(( $(date +%s) - start )) -gt "$RECOVERY_BOUND" ]; then
      echo "round $r ($kind of node $v): no recovery in ${RECOVERY_BOUND}s, heights ${hs[*]}" >&2
      violations=$((violations + 1)); break
    fi
    sleep 0.5
  done
  took=$(( $(date +%s) - start )); [ "$took" -gt "$max_recovery" ] && max_recovery=$took
  echo "round $r: $kind node $v, recovered in ${took}s, heights ${hs[*]}" >&2
done

kill "$loadpid" 2>/dev/null || true; loadpid=""
sleep 2
# Agreement at every common height, and every acknowledged transaction on every node.
top=999999999
for i in $(seq 0 $((nodes - 1))); do h=$(height "$i"); [ "$h" -lt "$top" ] && top=$h; done
python3 - "$bin" "$top" "$nodes" "$RPC_BASE" "$dir/acked.txt" <<'EOF' || violations=$((violations + 1))
import json, subprocess, sys
bin_, top, nodes, base, acked = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
def q(i, *a):
    out = subprocess.run([bin_, "query", *a, "--rpc", f"http://127.0.0.1:{base + i}"], capture_output=True, text=True)
    return json.loads(out.stdout) if out.returncode == 0 else None
bad = 0
stamps = []
for h in range(1, top + 1):
    blocks = [q(i, "block", str(h)) for i in range(nodes)]
    hashes = {b["hash"] for b in blocks}
    if len(hashes) != 1:
        print(f"fork at height {h}: {hashes}", file=sys.stderr); bad += 1
    stamps.append(int(blocks[0]["header"]["timestamp"]))
# The longest time between two blocks under a steady load: how long the chain stalled.
gaps = [(b - a, h + 2) for h, (a, b) in enumerate(zip(stamps, stamps[1:]))]
longest, at = max(gaps) if gaps else (0, 0)
open(sys.argv[5] + ".gap", "w").write(f"{longest / 1000:.1f}")
txs = [l.strip() for l in open(acked) if l.strip()] if __import__("os").path.exists(acked) else []
lost = 0
for t in txs:
    for i in range(nodes):
        r = q(i, "tx", t)
        if not r or r.get("status") != "final":
            lost += 1; print(f"acknowledged {t} missing on node {i}", file=sys.stderr); break
# No honest validator equivocated (a wiped one must not re-sign what it signed before).
evidence = 0
for i in range(nodes):
    ev = q(i, "evidence") or []
    for e in ev:
        evidence += len(e["double_votes"]) + len(e["double_proposals"])
if evidence:
    print(f"{evidence} equivocations recorded", file=sys.stderr)
print(json.dumps({"heights_checked": top, "acked": len(txs), "lost": lost, "equivocations": evidence, "longest_block_gap_s": longest / 1000, "gap_before_height": at}))
sys.exit(1 if bad or lost or evidence else 0)
EOF
acked=$(wc -l < "$dir/acked.txt" 2>/dev/null || echo 0)
gap=$(cat "$dir/acked.txt.gap" 2>/dev/null || echo "?")
printf '\n| rounds | kill9 | pause | restart | wipe | part 2-2 | part 3-1 | serial | txs final | lost | max recovery s | longest block gap s | violations |\n'
printf '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$rounds" "${count[kill9]}" "${count[pause]}" "${count[restart]}" "${count[wipe]}" "${count[part22]}" "${count[part31]}" "${count[serial]}" "$acked" "$([ $violations -eq 0 ] && echo 0 || echo "see above")" "$max_recovery" "$gap" "$violations"
[ "$violations" -eq 0 ]
