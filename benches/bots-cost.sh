#!/usr/bin/env bash
# What an arena-bot costs per applied snapshot, and what the server costs per
# snapshot sent (BENCHMARKS.md "Implicit acks over WSS"): an arena-server at
# 30 snapshots/s in rooms of 100 on CPU 0, N arena-bots on CPU 1 (45 s, the
# last 30 s measured); both processes' CPU from /proc over 28 s inside the
# measured span, divided by the snapshots the bots applied in it.
# With --against BIN, a second bots process (another build, N bots more, its
# own seed) runs beside this build's on the same core over the same window,
# and each is reported: the pair, not the level, is the figure on a shared VM
# (run it twice, the builds swapped: BOTS=OTHER … --against
# target/release/arena-bots; BENCHMARKS.md "a playing bot's apply out of the
# cache").
# Bounded: about 50 s. Extra arguments go to arena-bots (--idle, --explicit-acks).
# ROOM sets the players per room (default 100; ROOM=1000 puts up to 1,000
# bots in one room, where each bot sees hundreds of players).
# Usage: [BOTS=BIN] [ROOM=N] benches/bots-cost.sh [--against BIN] N [arena-bots flags…]   (from the repository root)
set -euo pipefail
BINS=("${BOTS:-target/release/arena-bots}")
if [ "${1:-}" = --against ]; then
  BINS+=("${2:?usage: $0 [--against BIN] N [arena-bots flags…]}")
  shift 2
fi
N=${1:?usage: $0 [--against BIN] N [arena-bots flags…]}
shift
PORT=$((9443 + RANDOM % 400))
cargo build --release -q -p arena --bins
B=target/release
LOG=$(mktemp -d)
taskset -c 0 "$B/arena-server" --addr "127.0.0.1:$PORT" --no-quic --snapshot-rate 30 \
  --max-players-per-room "${ROOM:-100}" --bots 0 --max-connections 3000 --max-connections-per-ip 3000 \
  --drain-grace 0s >"$LOG/server.out" 2>"$LOG/server.err" &
SP=$!
trap 'kill "$SP" 2>/dev/null || true' EXIT
sleep 2
PIDS=()
for i in "${!BINS[@]}"; do
  taskset -c 1 "${BINS[$i]}" --url "wss://127.0.0.1:$PORT/ws" --insecure-dev-cert --bots "$N" \
    --seed "$((i + 1))" --duration 45s --warmup 15s --ramp 10s --json "$@" >"$LOG/bots$i.json" 2>"$LOG/bots$i.err" &
  PIDS+=($!)
done
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
sleep 16
s0=$(cpu "$SP"); b0=(); for p in "${PIDS[@]}"; do b0+=("$(cpu "$p")"); done
sleep 28
s1=$(cpu "$SP"); b1=(); for p in "${PIDS[@]}"; do b1+=("$(cpu "$p")"); done
wait "${PIDS[@]}"
kill -INT "$SP"; wait "$SP" 2>/dev/null || true
args=()
for i in "${!BINS[@]}"; do args+=("${BINS[$i]}" "$LOG/bots$i.json" "$((b1[i] - b0[i]))"); done
python3 - "$N" "$((s1 - s0))" "$(getconf CLK_TCK)" "${args[@]}" <<'PY'
import json, sys
n, server, hz = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
runs = [sys.argv[i:i + 3] for i in range(4, len(sys.argv), 3)]
all_snaps = 0
for name, path, bots in runs:
    b = json.load(open(path))
    rate = b["snapshots_per_bot_per_s"]
    snaps = rate * n * 28
    all_snaps += snaps
    label = f"{name}: " if len(runs) > 1 else ""
    print(f"{label}{n} bots: {rate:.1f} snapshots/s per bot; bots' core {int(bots) / hz / 28 * 100:.0f} %, "
          f"{int(bots) / hz * 1e6 / snaps:.1f} us per snapshot; {b['bytes_per_snapshot']:.0f} bytes and "
          f"{b.get('changed_entities_per_snapshot') or 0:.1f} changed entities per snapshot")
print(f"server core {server / hz / 28 * 100:.0f} %, {server / hz * 1e6 / all_snaps:.1f} us per snapshot")
PY
