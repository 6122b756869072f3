#!/usr/bin/env bash
# Broker instructions per message, counted by callgrind: the same figure for
# the same binary and load however busy the machine is, so two builds can be
# compared on a shared machine.
#
# Usage: bench/instructions_per_message.sh BIN [rate] [seconds] [warren-perf args...]
#   BIN   a warren-server binary (release build)
#   default load: B1's shape (1 producer, 1 consumer, 16 B, autoack) at
#   2,000 msg/s for 10 s; B2's shape is
#   -x 1 -y 1 -s 1024 --persistent -c 1000 -q 1000
#
# The counters are zeroed once the node has started (after its own password
# hashing) and dumped when the load ends. The argon2 verification of the
# load's two logins is counted and taken out, since it is a cost per
# connection, not per message.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$1
rate=${2:-2000}
secs=${3:-10}
shift $(( $# > 3 ? 3 : $# ))
extra=("$@")
[ ${#extra[@]} -gt 0 ] || extra=(-x 1 -y 1 -s 16 -a)
perf=${WARREN_PERF:-${CARGO_TARGET_DIR:-target}/release/warren-perf}
command -v valgrind >/dev/null || { echo "valgrind is needed" >&2; exit 2; }
tmp=$(mktemp -d)
ports=($(python3 -c 'import socket
for _ in range(2):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'))
WARREN_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.%p" "$bin" \
    --amqp-port "${ports[0]}" --http-port "${ports[1]}" --bind 127.0.0.1 --data-dir "$tmp/data" \
    >"$tmp/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 600); do (echo >"/dev/tcp/127.0.0.1/${ports[0]}") 2>/dev/null && break; sleep 0.1; done
# The default user's password is hashed at start, slowly under valgrind.
sleep 10
callgrind_control -z "$pid" >/dev/null
"$perf" throughput -z "$secs" -r "$rate" --json "${extra[@]}" \
    --uri "amqp://guest:guest@127.0.0.1:${ports[0]}/%2f" >"$tmp/perf.json" 2>/dev/null
callgrind_control -d "$pid" >/dev/null
kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
dump=$(ls "$tmp"/cg.*.1)
total=$(awk '/^summary:/ {print $2}' "$dump")
logins=$(callgrind_annotate --auto=no --inclusive=yes --threshold=100 "$dump" 2>/dev/null |
    awk '/auth::verify_password \[/ && !n {gsub(",", "", $1); n = $1} END {print n + 0}')
python3 - "$total" "${logins:-0}" "$tmp/perf.json" <<'PY'
import json, sys
total, logins = int(sys.argv[1]), int(sys.argv[2])
run = json.load(open(sys.argv[3]))
n = run["consumed"]
print(f"messages consumed: {n}")
print(f"broker instructions in the run: {total:,} (of which login hashing {logins:,})")
print(f"instructions per message: {(total - logins) / n:,.0f}")
PY
