#!/usr/bin/env bash
# The overload scene of BENCHMARKS.md "Clients that fall behind": an
# arena-server with 1,000 moving NPCs and no interest management, 60 Hz, on
# CPU 0; BOTS idle arena-bots on CPU 1 (one core cannot apply all they are
# sent). Prints the server's CPU over 20 s (after 10 s), the clients still
# connected and the snapshot figures of its STATS lines. Bounded: about 35 s.
# Usage: benches/overload-scene.sh BOTS [MAX_SNAPSHOT_SLOWDOWN]   (from the repository root)
set -euo pipefail
BOTS=${1:?usage: $0 BOTS [MAX_SNAPSHOT_SLOWDOWN]}
SLOW=${2:-8}
PORT=$((9443 + RANDOM % 400))
cargo build --release -p arena --bins
B=target/release
LOG=$(mktemp -d)
taskset -c 0 "$B/arena-server" --addr "127.0.0.1:$PORT" --no-quic --npcs 1000 --no-interest \
  --tick-rate 60 --snapshot-rate 60 --max-players-per-room 1000 --max-connections-per-ip 2000 \
  --stats-interval 1s --max-snapshot-slowdown "$SLOW" >"$LOG/server.out" 2>"$LOG/server.err" &
SP=$!
trap 'kill "$SP" 2>/dev/null || true' EXIT
sleep 2
taskset -c 1 "$B/arena-bots" --url "wss://127.0.0.1:$PORT/ws" --insecure-dev-cert --bots "$BOTS" \
  --idle --duration 30s --warmup 5s >"$LOG/bots.out" 2>"$LOG/bots.err" &
BP=$!
sleep 10
t0=$(awk '{print $14+$15}' "/proc/$SP/stat"); s0=$(date +%s.%N)
sleep 20
t1=$(awk '{print $14+$15}' "/proc/$SP/stat"); s1=$(date +%s.%N)
kill "$BP" 2>/dev/null || true; wait "$BP" 2>/dev/null || true
kill "$SP"; wait "$SP" 2>/dev/null || true
cpu=$(echo "($t1-$t0)/$(getconf CLK_TCK)/($s1-$s0)*100" | bc -l)
printf 'bots=%s max_snapshot_slowdown=%s server_cpu=%.1f%% ' "$BOTS" "$SLOW" "$cpu"
python3 - "$LOG/server.out" <<'PY'
import json, sys
rows = [json.loads(l[6:]) for l in open(sys.argv[1]) if l.startswith("STATS ")]
rows = [r for r in rows if r.get("clients", 0) > 0][-20:]
mean = lambda k: sum(r.get(k, 0) for r in rows) / max(len(rows), 1)
print("clients=%s snapshots/s=%.0f full/s=%.0f bytes/s=%.0f" % (
    rows[-1].get("clients") if rows else 0, mean("snapshots"), mean("full_snapshots"),
    mean("snapshot_bytes")))
PY
