#!/usr/bin/env bash
# Two arena-bots builds side by side (BENCHMARKS.md "a playing bot's apply out
# of the cache"): one arena-server at 30 snapshots/s in rooms of 100 on CPU 0,
# and the two bots binaries, N bots each, both on CPU 1, so that both see the
# same machine; each one's CPU from /proc over the same 28 s window, divided by
# the snapshots its bots applied. Run it twice with the binaries swapped: the
# pair, not the level, is the figure on a shared VM. Bounded: about 50 s.
# Extra arguments go to both (--idle, --explicit-acks).
# Usage: benches/bots-pair.sh BOTS_A BOTS_B N [arena-bots flags…]   (from the repository root)
set -euo pipefail
A=${1:?usage: $0 BOTS_A BOTS_B N [arena-bots flags…]}
B=${2:?usage: $0 BOTS_A BOTS_B N [arena-bots flags…]}
N=${3:?usage: $0 BOTS_A BOTS_B N [arena-bots flags…]}
shift 3
PORT=$((9443 + RANDOM % 400))
cargo build --release -q -p arena --bin arena-server
LOG=$(mktemp -d)
taskset -c 0 target/release/arena-server --addr "127.0.0.1:$PORT" --no-quic --snapshot-rate 30 \
  --max-players-per-room 100 --bots 0 --max-connections 3000 --max-connections-per-ip 3000 \
  --drain-grace 0s >"$LOG/server.out" 2>"$LOG/server.err" &
SP=$!
trap 'kill "$SP" 2>/dev/null || true' EXIT
sleep 2
pids=()
for side in a b; do
  bin=$A; seed=1
  if [ "$side" = b ]; then bin=$B; seed=2; fi
  taskset -c 1 "$bin" --url "wss://127.0.0.1:$PORT/ws" --insecure-dev-cert --bots "$N" --seed "$seed" \
    --duration 45s --warmup 15s --ramp 10s --json "$@" >"$LOG/$side.json" 2>"$LOG/$side.err" &
  pids+=($!)
done
sleep 16
a0=$(awk '{print $14+$15}' "/proc/${pids[0]}/stat"); b0=$(awk '{print $14+$15}' "/proc/${pids[1]}/stat")
sleep 28
a1=$(awk '{print $14+$15}' "/proc/${pids[0]}/stat"); b1=$(awk '{print $14+$15}' "/proc/${pids[1]}/stat")
wait "${pids[@]}"
kill -INT "$SP"; wait "$SP" 2>/dev/null || true
python3 - "$LOG" "$N" "$((a1 - a0))" "$((b1 - b0))" "$(getconf CLK_TCK)" "$A" "$B" <<'PY'
import json, sys
log, n, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[5])
for side, cpu, name in (("a", int(sys.argv[3]), sys.argv[6]), ("b", int(sys.argv[4]), sys.argv[7])):
    j = json.load(open(f"{log}/{side}.json"))
    rate = j["snapshots_per_bot_per_s"]
    print(f"{name}: {rate:.1f} snapshots/s per bot; core {cpu / hz / 28 * 100:.0f} %, "
          f"{cpu / hz * 1e6 / (rate * n * 28):.1f} us per snapshot; {j['bytes_per_snapshot']:.0f} bytes and "
          f"{j.get('changed_entities_per_snapshot') or 0:.1f} changed entities per snapshot")
PY
