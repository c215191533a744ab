#!/usr/bin/env bash
# Runs every configuration of BENCHMARKS.md "Server replication
# (tickwire-server)" twice: server pinned to CPU 0, clients to CPU 1,
# loopback only, each run bounded (about 25 s; idle runs about 60 s).
# Usage: benches/replication-load.sh [runs]   (from the repository root)
set -euo pipefail
RUNS=${1:-2}
cargo build --release -p tickwire-benches
B=target/release/replication-load
# 5,000 idle connections need 5,000 descriptors in each process.
ulimit -n 20000
PIN=(--server-cpus 0 --client-cpus 1)
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), $(rustc --version)"
for run in $(seq "$RUNS"); do
  for n in 100 500; do
    $B run "${PIN[@]}" --clients "$n" --warmup 3 --duration 15 --label "all-$n#$run"
    $B run "${PIN[@]}" --clients "$n" --warmup 3 --duration 15 --visibility --label "vis-$n#$run"
  done
  $B run "${PIN[@]}" --clients 500 --warmup 3 --duration 15 --header-only --label "all-500-header-only#$run"
  $B room --clients 500 --visibility --ticks 600
  $B room --clients 500 --ticks 600
done
for run in $(seq "$RUNS"); do
  $B run "${PIN[@]}" --mode idle-upgraded --clients 5000 --warmup 5 --duration 10 \
    --handshake-timeout-secs 300 --idle-timeout-secs 300 --label "idle-upgraded#$run"
  $B run "${PIN[@]}" --mode idle-joined --clients 5000 --warmup 5 --duration 10 \
    --entities 0 --snapshot-interval 60 --handshake-timeout-secs 300 --idle-timeout-secs 300 \
    --label "idle-joined#$run"
done
for tls in "" --tls; do
  $B floor --peer-cpus 1 --conns 100 --size 1024 --duration 10 --no-ack $tls
  $B floor --peer-cpus 1 --conns 100 --size 1024 --duration 10 $tls
done
