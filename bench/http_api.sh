#!/usr/bin/env bash
# Management API benchmark: 10,000 queues, then the time and size of
#   GET /api/queues?page=1&page_size=100, GET /api/overview and the
#   unpaged GET /api/queues.
#
#   bench/http_api.sh                 # builds and starts a release warren-server
#   bench/http_api.sh URL USER PASS   # any running broker, e.g. a RabbitMQ node
#                                     # (http://127.0.0.1:15672 guest guest)
#
# Queues are created in one definitions import (POST /api/definitions),
# which is timed too. Each GET runs 5 times; every run is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-10000}"
RUNS="${RUNS:-5}"

if [ $# -ge 1 ]; then
    base="$1"; user="${2:-guest}"; pass="${3:-guest}"
else
    target="${CARGO_TARGET_DIR:-target}"
    cargo build --release --locked -p warren --bin warren-server >&2
    data="$(mktemp -d)"
    log="$data/server.log"
    "$target/release/warren-server" --amqp-port 0 --http-port 0 --bind 127.0.0.1 \
        --data-dir "$data/data" >"$log" 2>&1 &
    pid=$!
    trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
    for _ in $(seq 100); do
        grep -q "started HTTP listener on" "$log" && break
        sleep 0.1
    done
    port="$(grep -o 'started HTTP listener on [0-9.:]*' "$log" | head -1 | sed 's/.*://')"
    base="http://127.0.0.1:$port"; user=guest; pass=guest
fi

echo "target: $base, $N queues"
defs="$(mktemp)"
python3 - "$N" >"$defs" <<'PY'
import json, sys
n = int(sys.argv[1])
queues = [{"name": f"bench-{i:05d}", "vhost": "/", "durable": True, "auto_delete": False, "arguments": {}}
          for i in range(n)]
print(json.dumps({"queues": queues}))
PY
t=$(curl -s -o /dev/null -w '%{time_total} %{http_code}' -u "$user:$pass" -H 'content-type: application/json' \
    -X POST --data-binary @"$defs" "$base/api/definitions")
rm -f "$defs"
echo "import of $N queues (POST /api/definitions): ${t% *} s (HTTP ${t#* })"

measure() {
    local path="$1"
    for i in $(seq "$RUNS"); do
        curl -s -o /dev/null -u "$user:$pass" -w "  run $i: %{time_total} s, %{size_download} bytes, HTTP %{http_code}\n" \
            "$base$path"
    done
}
for path in "/api/queues?page=1&page_size=100" "/api/overview" "/api/queues"; do
    echo "GET $path"
    measure "$path"
done
