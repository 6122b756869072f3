#!/usr/bin/env bash
# Broker CPU time per message at a fixed rate: a figure that holds still on
# a busy shared machine, unlike throughput. Compare two builds with it.
# Usage: bench/cpu_per_message.sh [rate] [seconds] [warren-perf args...]
# Default: B1's shape (1 producer, 1 consumer, 16 B, autoack) at 100k msg/s.
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-100000}
secs=${2:-8}
shift $(( $# > 2 ? 2 : $# ))
extra=("$@")
[ ${#extra[@]} -gt 0 ] || extra=(-x 1 -y 1 -s 16 -a)
bin=${CARGO_TARGET_DIR:-target}/release
tmp=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
WARREN_LOG=warn "$bin/warren-server" --amqp-port "$port" --http-port 0 --bind 127.0.0.1 \
    --data-dir "$tmp/data" >"$tmp/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
before=$(cpu)
"$bin/warren-perf" throughput -z "$secs" -r "$rate" "${extra[@]}" \
    --uri "amqp://guest:guest@127.0.0.1:$port/%2f" >"$tmp/out" 2>&1
after=$(cpu)
msgs=$(grep -oE 'consumed +[0-9,]+ msg/s \(([0-9]+) messages' "$tmp/out" | grep -oE '\([0-9]+' | tr -d '(')
ticks=$(getconf CLK_TCK)
python3 - "$before" "$after" "$ticks" "$msgs" <<'PY'
import sys
b, a, hz, n = map(int, sys.argv[1:])
cpu = (a - b) / hz
print(f"broker CPU {cpu:.2f} s for {n} messages: {cpu / n * 1e6:.2f} µs per message")
PY
grep -E 'latency p50' "$tmp/out" | tail -1
