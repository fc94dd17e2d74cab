#!/usr/bin/env bash
# The bridge end to end from a clean checkout: installs anvil and solc (npm, pinned),
# builds the node, starts anvil and a 4-validator cluster whose validators sign
# checkpoints (every 5 blocks) and one of which relays them, deploys the checkpoint
# contract, registers a device, waits until a checkpoint covering it is final on
# Ethereum, and runs the verifier, which trusts only the contract. Stops everything it
# started. Exit status 0 only if the device was verified.
#   scripts/bridge-demo.sh [--keep]     (--keep: leave the directory for inspection)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
keep=0; [ "${1:-}" = "--keep" ] && keep=1
anvil="$(scripts/eth-tools.sh)"
echo "==> building the node" >&2
cargo build -q -p atonomi-cli
A="$CARGO_TARGET_DIR/debug/atonomi"
dir="$(mktemp -d /tmp/atonomi-bridge-demo.XXXX)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ "$keep" = 1 ] && echo "kept $dir" >&2 || rm -rf "$dir"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
jget() { python3 -c "import json,sys; d=json.load(sys.stdin); print(d$1)"; }

eth_port=$(port); eth="http://127.0.0.1:$eth_port"
"$anvil" --port "$eth_port" --slots-in-an-epoch 1 --silent & pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null -X POST -H 'content-type: application/json' --data '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' "$eth" && break; sleep 0.1; done
# anvil's first dev account pays for the deployment and the relaying.
echo '{"secret_key":"ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"}' > "$dir/eth.json"

echo "==> 4 validators with bridge keys" >&2
args=()
declare -a rpc p2p peer
for i in 0 1 2 3; do
  out=$("$A" init --home "$dir/v$i")
  rpc[$i]=$(port); p2p[$i]=$(port); peer[$i]=$(echo "$out" | jget '["peer_id"]')
  args+=(--validator "$(echo "$out" | jget '["account"]'),$(echo "$out" | jget '["peer_id_hex"]'),1,$(echo "$out" | jget '["bridge_address"]')")
done
"$A" genesis new --chain-id atonomi-bridge-demo --checkpoint-interval 5 --out "$dir/genesis.json" "${args[@]}" > /dev/null
deployed=$("$A" bridge deploy --eth-rpc "$eth" --eth-key "$dir/eth.json" --genesis "$dir/genesis.json")
contract=$(echo "$deployed" | jget '["contract"]'); chain=$(echo "$deployed" | jget '["eth_chain_id"]')
echo "==> checkpoint contract $contract on Ethereum chain $chain" >&2
for i in 0 1 2 3; do
  cp "$dir/genesis.json" "$dir/eth.json" "$dir/v$i/"
  peers=""
  for j in 0 1 2 3; do [ $j = $i ] && continue; peers+="\"/ip4/127.0.0.1/tcp/${p2p[$j]}/p2p/${peer[$j]}\","; done
  relay=""; [ $i = 0 ] && relay=$'eth_rpc = "'"$eth"$'"\nrelayer_key = "eth.json"\nconfirmations = 1'
  cat > "$dir/v$i/config.toml" <<CFG
genesis = "genesis.json"
validator_key = "keys/validator.json"
[rpc]
addr = "127.0.0.1:${rpc[$i]}"
[p2p]
listen = "/ip4/127.0.0.1/tcp/${p2p[$i]}"
peers = [${peers%,}]
node_key = "keys/node.json"
[consensus]
heartbeat_ms = 500
propose_timeout_ms = 2000
[bridge]
eth_chain_id = $chain
contract = "$contract"
key = "keys/bridge.json"
$relay
CFG
  ATONOMI_LOG=info "$A" run --home "$dir/v$i" 2> "$dir/v$i/node.log" & pids+=($!)
done

node="http://127.0.0.1:${rpc[1]}"
for _ in $(seq 120); do "$A" query status --rpc "$node" > /dev/null 2>&1 && break; sleep 0.5; done
"$A" keys dev manufacturer --out "$dir/manufacturer.json" > /dev/null
device=$("$A" device-id demo-salt DEMO-SENSOR-1 | jget '["device_id"]')
device_pk=$("$A" keys new --out "$dir/device.json" | jget '["account"]')
echo "==> registering device $device" >&2
"$A" tx --rpc "$node" --key "$dir/manufacturer.json" "{\"register_devices\":{\"manufacturer\":1,\"devices\":[{\"device_id\":\"$device\",\"public_key\":\"$device_pk\",\"protocols\":[\"mqtt\"],\"metadata\":[]}]}}" > /dev/null

echo "==> waiting for a finalized checkpoint that covers it, then verifying (trusting only the contract)" >&2
for _ in $(seq 180); do
  if out=$("$A" verify device --eth-rpc "$eth" --contract "$contract" --device "$device" --rpc "http://127.0.0.1:${rpc[2]}" 2>/dev/null) \
     && [ "$(echo "$out" | jget '["registered"]')" = "True" ]; then
    echo "$out"
    echo "==> verified: device $device is registered, proven against checkpoint epoch $(echo "$out" | jget '["checkpoint"]["epoch"]') on Ethereum" >&2
    exit 0
  fi
  sleep 1
done
echo "not verified within 3 minutes; relayer log: $dir/v0/node.log" >&2
keep=1
exit 1
