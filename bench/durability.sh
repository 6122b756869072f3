#!/usr/bin/env bash
# Durability figures (issue 3), Warren only, release build:
#  1. persistent 1 KiB messages with confirms (window 1000), one producer and
#     one consumer with manual acks: msg/s and fsyncs per second;
#  2. a backlog of N persistent 1 KiB messages: publish rate, broker RSS
#     while they are queued;
#  3. a graceful restart with the backlog queued: time until the node
#     listens again, and the recovery time the node logs;
#  4. the drain rate of the recovered backlog.
# Usage: bench/durability.sh [count] [seconds]   (default 1000000, 10)
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-1000000}
secs=${2:-10}
bin=${CARGO_TARGET_DIR:-target}/release
tmp=$(mktemp -d)
ports=($(python3 -c 'import socket
for _ in range(2):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'))
uri="amqp://guest:guest@127.0.0.1:${ports[0]}/%2f"
pid=
start() {
    local t0=$(date +%s.%N)
    WARREN_LOG=info "$bin/warren-server" --amqp-port "${ports[0]}" --http-port "${ports[1]}" \
        --data-dir "$tmp/data" --bind 127.0.0.1 >>"$tmp/warren.log" 2>&1 &
    pid=$!
    for _ in $(seq 6000); do (echo >"/dev/tcp/127.0.0.1/${ports[0]}") 2>/dev/null && break; sleep 0.01; done
    took=$(python3 -c "import time; print(f'{time.time() - $t0:.2f}')")
}
stop() { kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; }
trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
metric() { curl -s -u guest:guest "http://127.0.0.1:${ports[1]}/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
rss_mb() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status"; }

start
echo "== 1. persistent 1 KiB, confirms (window 1000), manual acks, prefetch 1000, ${secs} s"
f0=$(metric warren_persistent_store_fsyncs_total)
"$bin/warren-perf" throughput -x 1 -y 1 -s 1024 --persistent -c 1000 -q 1000 -z "$secs" -u dur-b2 \
    --uri "$uri" 2>/dev/null | grep -E 'published|consumed|latency p50'
f1=$(metric warren_persistent_store_fsyncs_total)
echo "  fsyncs: $((f1 - f0)) in ${secs} s, $(( (f1 - f0) / secs )) per second"

echo "== 2. backlog of $count persistent 1 KiB messages"
"$bin/warren-perf" backlog --persistent -s 1024 -c 1000 --count "$count" --hold 3600 --keep-queues \
    --drain-timeout 600 -u dur-backlog --uri "$uri" >"$tmp/backlog.out" 2>"$tmp/backlog.err" &
perf_pid=$!
for _ in $(seq 3600); do grep -q "backlog ready" "$tmp/backlog.err" && break; sleep 0.5; done
grep -E 'published' "$tmp/backlog.err" "$tmp/backlog.out" | tail -1 || true
echo "  broker RSS with the backlog queued: $(rss_mb) MB; data dir: $(du -sh "$tmp/data" | cut -f1)"
kill "$perf_pid" 2>/dev/null || true
wait "$perf_pid" 2>/dev/null || true

echo "== 3. graceful restart with the backlog queued"
stop
# start() runs in this shell, not in $(...), so that $pid is the new node.
start
echo "  restart until listening: $took s"
# The second start's recovery line, once the node has logged it.
for _ in $(seq 600); do [ "$(grep -cE 'recovered [0-9]+ messages' "$tmp/warren.log")" -ge 2 ] && break; sleep 0.1; done
grep -E 'recovered [0-9]+ messages' "$tmp/warren.log" | tail -1 | sed 's/^.*message store: /  /'
echo "  broker RSS after recovery: $(rss_mb) MB"

echo "== 4. draining the recovered backlog"
# --durable: the queue is durable, and declaring it otherwise is a 406.
"$bin/warren-perf" throughput -x 0 -y 1 -q 1000 -A 100 -s 1024 -z 600 --drain-timeout 5 -u dur-backlog \
    --durable --uri "$uri" >"$tmp/drain.out" 2>"$tmp/drain.err" &
drain_pid=$!
t0=$(date +%s.%N)
while true; do
    left=$(curl -s -u guest:guest "http://127.0.0.1:${ports[1]}/api/queues/%2F/dur-backlog" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("messages", 0))')
    [ "$left" = "0" ] && break
    if ! kill -0 "$drain_pid" 2>/dev/null; then
        echo "  the consumer stopped with $left messages left:" >&2
        cat "$tmp/drain.err" >&2
        exit 1
    fi
    sleep 0.5
done
t1=$(date +%s.%N)
kill "$drain_pid" 2>/dev/null || true
python3 -c "print(f'  drained $count messages in {$t1 - $t0:.1f} s: {$count / ($t1 - $t0):,.0f} msg/s')"
stop
