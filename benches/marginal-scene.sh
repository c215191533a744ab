#!/usr/bin/env bash
# Issue 13's Colyseus scene at one client count, with context switches
# (BENCHMARKS.md "Implicit acks over WSS"): an arena-server with 1,000 NPCs
# that all move every tick, no interest management, 60 Hz, on CPU 0; N idle
# arena-bots on CPU 1. Prints `perf stat` of the server over 14 s (after 8 s)
# and its CPU per client per snapshot. Bounded: about 30 s. Extra arguments
# go to arena-bots (--explicit-acks). Needs perf (Debian: linux-perf).
# Usage: benches/marginal-scene.sh N [arena-bots flags…]   (from the repository root)
set -euo pipefail
N=${1:?usage: $0 N [arena-bots flags…]}
shift
PORT=$((9443 + RANDOM % 400))
cargo build --release -q -p arena --bins
B=target/release
LOG=$(mktemp -d)
taskset -c 0 "$B/arena-server" --addr "127.0.0.1:$PORT" --no-quic --tick-rate 60 --snapshot-rate 60 \
  --bots 0 --max-players-per-room 500 --max-connections 500 --max-connections-per-ip 500 \
  --npcs 1000 --no-interest --drain-grace 0s >"$LOG/server.out" 2>"$LOG/server.err" &
SP=$!
trap 'kill "$SP" 2>/dev/null || true' EXIT
sleep 2
taskset -c 1 "$B/arena-bots" --url "wss://127.0.0.1:$PORT/ws" --insecure-dev-cert --bots "$N" \
  --idle --duration 24s --ramp 2s --warmup 6s "$@" >"$LOG/bots.out" 2>"$LOG/bots.err" &
BP=$!
sleep 8
t0=$(awk '{print $14+$15}' "/proc/$SP/stat")
perf stat -e context-switches,task-clock -p "$SP" -- sleep 14 2>&1 | grep -E "context-switches|task-clock"
t1=$(awk '{print $14+$15}' "/proc/$SP/stat")
wait "$BP" || true
kill -INT "$SP"; wait "$SP" 2>/dev/null || true
echo "$N clients: server CPU $(echo "($t1-$t0)/$(getconf CLK_TCK)*1000000/14/($N*60)" | bc -l | cut -c1-5) us per client per snapshot"
