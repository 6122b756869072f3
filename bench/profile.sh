#!/usr/bin/env bash
# Profiles warren-server during a scenario with Linux perf (cpu-clock
# sampling, DWARF call graphs) and prints the top functions, self and
# inclusive, and who calls memmove and malloc.
# Usage: bench/profile.sh B1|B2|B3 [seconds] [rate per producer]
# Expects release binaries (bench/run.sh builds them); writes
# bench/results/profile-<scenario>[-<rate>].txt.
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${1:-B1}
secs=${2:-10}
rate=${3:-}
bin=${CARGO_TARGET_DIR:-target}/release
case "$scenario" in
    B1) load=(-x 1 -y 1 -s 16 -a -u bench-b1) ;;
    B2) load=(-x 1 -y 1 -s 1024 --persistent -c 1000 -q 1000 -u bench-b2) ;;
    B3) load=(-x 1 -y 10 -s 16 -a -t fanout --queue-pattern 'bench-b3-%d' --queue-pattern-from 1 --queue-pattern-to 10) ;;
    *) echo "usage: $0 B1|B2|B3 [seconds]" >&2; exit 2 ;;
esac
tmp=$(mktemp -d)
ports=($(python3 -c 'import socket
for _ in range(2):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'))
WARREN_LOG=warn "$bin/warren-server" --amqp-port "${ports[0]}" --http-port "${ports[1]}" \
    --data-dir "$tmp/data" --bind 127.0.0.1 >"$tmp/warren.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do
    (echo >"/dev/tcp/127.0.0.1/${ports[0]}") 2>/dev/null && break
    sleep 0.1
done
if [ -n "$rate" ]; then load+=(-r "$rate"); fi
"$bin/warren-perf" throughput -z $((secs + 3)) "${load[@]}" \
    --uri "amqp://guest:guest@127.0.0.1:${ports[0]}/%2f" >"$tmp/load.out" 2>&1 &
load_pid=$!
sleep 1.5
perf record -q -e cpu-clock -F 499 --call-graph dwarf,32768 -p "$pid" -o "$tmp/perf.data" -- sleep "$secs" \
    2>"$tmp/perf.err" || { cat "$tmp/perf.err"; exit 1; }
wait "$load_pid" || true
out=bench/results/profile-$scenario${rate:+-$rate}.txt
mkdir -p bench/results
report() { perf report -i "$tmp/perf.data" --no-inline --sort symbol --stdio "$@" 2>/dev/null | grep -v '^#' | grep -v '^$' | cut -c1-150 || true; }
# Frames every sample has (thread start, the tokio scheduler) say nothing.
generic='tokio::runtime|std::sys|core::ops|start_thread|clone3|thread_start|FnOnce|call_once'
set +o pipefail
{
    echo "# warren-server under $scenario for $secs s ($(date -u '+%Y-%m-%d %H:%M UTC'), git $(git rev-parse --short HEAD))"
    echo "# load: warren-perf throughput ${load[*]}"
    grep -E '^summary|published|consumed|latency|drain' "$tmp/load.out" | sed 's/^/# /'
    echo "# samples: cpu-clock at 499 Hz per thread"
    echo
    echo "## self time (top 35)"
    report --no-children -g none --percent-limit 0.5 | sed 's/ *- *- *$//' | head -35
    echo
    echo "## inclusive time, scheduler frames left out (top 40)"
    report --children -g none --percent-limit 1.5 | sed 's/ *- *- *$//' | grep -Ev "$generic" | head -40
    echo
    echo "## who calls memmove and malloc"
    report --no-children -g caller,0.5,callee,function,percent \
        --symbols=__memmove_avx_unaligned_erms,malloc,_int_malloc | grep -Ev "$generic" | head -80
} >"$out"
cat "$out"
