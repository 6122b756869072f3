#!/usr/bin/env bash
# Cross-node throughput (issue 18): a durable queue homed on node 1 of a
# two-node cluster on this machine, with one publisher (persistent 1 KiB,
# confirms, window 1000) and one consumer (manual acks, prefetch 1000)
# connected to node 1 (same node), then to node 2 (every message and ack
# crosses the cluster link).
# Usage: bench/cross_node.sh [seconds] [warren-server binary]
#   (release builds; WARREN_PERF names another warren-perf)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
bin=${2:-${CARGO_TARGET_DIR:-target}/release/warren-server}
perf=${WARREN_PERF:-${CARGO_TARGET_DIR:-target}/release/warren-perf}
tmp=$(mktemp -d)
ports=($(python3 -c 'import socket
socks = [socket.socket() for _ in range(6)]
for s in socks: s.bind(("127.0.0.1", 0))
for s in socks: print(s.getsockname()[1])
for s in socks: s.close()'))
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$tmp"' EXIT
api() { curl -sf -u guest:guest -H 'content-type: application/json' "$@"; }
start() { # n amqp http cluster
    WARREN_LOG=warn "$bin" --nodename "warren-$1@127.0.0.1" --amqp-port "$2" --http-port "$3" \
        --cluster-port "$4" --cluster-secret bench --data-dir "$tmp/n$1" --bind 127.0.0.1 \
        >>"$tmp/n$1.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 3000); do (echo >"/dev/tcp/127.0.0.1/$3") 2>/dev/null && break; sleep 0.01; done
}
start 1 "${ports[0]}" "${ports[1]}" "${ports[2]}"
start 2 "${ports[3]}" "${ports[4]}" "${ports[5]}"
n1="http://127.0.0.1:${ports[1]}"
n2="http://127.0.0.1:${ports[4]}"
api -X POST "$n2/api/node/stop_app" -d '{}'
api -X POST "$n2/api/node/join_cluster" -d "{\"node\": \"warren-1@127.0.0.1\", \"address\": \"127.0.0.1:${ports[2]}\"}"
api -X POST "$n2/api/node/start_app" -d '{}'
for _ in $(seq 300); do (echo >"/dev/tcp/127.0.0.1/${ports[3]}") 2>/dev/null && break; sleep 0.05; done
api -X PUT "$n1/api/queues/%2F/xnode" -d '{"durable": true}'
for _ in $(seq 300); do api "$n2/api/queues/%2F/xnode" >/dev/null 2>&1 && break; sleep 0.05; done
echo "# $("$bin" --version 2>/dev/null || echo warren-server), $secs s per run, $(date -u '+%Y-%m-%d %H:%M UTC')"
for side in same cross; do
    port=${ports[0]}
    [ "$side" = cross ] && port=${ports[3]}
    echo "== $side node (client on $([ "$side" = cross ] && echo node 2 || echo node 1), queue on node 1)"
    "$perf" throughput -x 1 -y 1 -s 1024 --persistent -c 1000 -q 1000 -z "$secs" -u xnode --durable \
        --keep-queues --uri "amqp://guest:guest@127.0.0.1:$port/%2f" 2>/dev/null \
        | grep -E 'published|consumed|latency p50|missing|lost' || true
    home=$(api "$n2/api/queues/%2F/xnode" | python3 -c 'import json, sys; print(json.load(sys.stdin)["node"])')
    echo "  queue's home: $home"
done
