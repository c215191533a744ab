#!/usr/bin/env bash
# What an arena-bot costs per applied snapshot, and what the server costs per
# snapshot sent (BENCHMARKS.md "Implicit acks over WSS"): an arena-server at
# 30 snapshots/s in rooms of 100 on CPU 0, N arena-bots on CPU 1 (45 s, the
# last 30 s measured); both processes' CPU from /proc over 28 s inside the
# measured span, divided by the snapshots the bots applied in it.
# Bounded: about 50 s. Extra arguments go to arena-bots (--idle, --explicit-acks).
# Usage: benches/bots-cost.sh N [arena-bots flags…]   (from the repository root)
set -euo pipefail
N=${1:?usage: $0 N [arena-bots flags…]}
shift
PORT=$((9443 + RANDOM % 400))
cargo build --release -q -p arena --bins
B=target/release
LOG=$(mktemp -d)
taskset -c 0 "$B/arena-server" --addr "127.0.0.1:$PORT" --no-quic --snapshot-rate 30 \
  --max-players-per-room 100 --bots 0 --max-connections 3000 --max-connections-per-ip 3000 \
  --drain-grace 0s >"$LOG/server.out" 2>"$LOG/server.err" &
SP=$!
trap 'kill "$SP" 2>/dev/null || true' EXIT
sleep 2
taskset -c 1 "$B/arena-bots" --url "wss://127.0.0.1:$PORT/ws" --insecure-dev-cert --bots "$N" \
  --duration 45s --warmup 15s --ramp 10s --json "$@" >"$LOG/bots.json" 2>"$LOG/bots.err" &
BP=$!
sleep 16
s0=$(awk '{print $14+$15}' "/proc/$SP/stat"); b0=$(awk '{print $14+$15}' "/proc/$BP/stat")
sleep 28
s1=$(awk '{print $14+$15}' "/proc/$SP/stat"); b1=$(awk '{print $14+$15}' "/proc/$BP/stat")
wait "$BP"
kill -INT "$SP"; wait "$SP" 2>/dev/null || true
python3 - "$LOG/bots.json" "$N" "$((s1 - s0))" "$((b1 - b0))" "$(getconf CLK_TCK)" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))
n, server, bots, hz = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rate = b["snapshots_per_bot_per_s"]
snaps = rate * n * 28
print(f"{n} bots: {rate:.1f} snapshots/s per bot; bots' core {bots / hz / 28 * 100:.0f} %, "
      f"{bots / hz * 1e6 / snaps:.1f} us per snapshot; server core {server / hz / 28 * 100:.0f} %, "
      f"{server / hz * 1e6 / snaps:.1f} us per snapshot; {b['bytes_per_snapshot']:.0f} bytes and "
      f"{b.get('changed_entities_per_snapshot') or 0:.1f} changed entities per snapshot")
PY
