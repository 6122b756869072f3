#!/usr/bin/env bash
# Builds warren-server and warren-perf in release mode, then runs the
# benchmark scenarios against Warren and (when installed) a private RabbitMQ.
# Arguments go to bench/run.py: --only B1,B2  --rounds N  --duration S
# --no-rabbitmq  --no-build (skip the cargo build).
set -euo pipefail
cd "$(dirname "$0")/.."
build=1
args=()
for a in "$@"; do
    if [ "$a" = "--no-build" ]; then build=0; else args+=("$a"); fi
done
if [ "$build" = 1 ]; then
    cargo build --release -p warren --bin warren-server
    cargo build --release -p warren-perf
fi
exec python3 bench/run.py ${args[@]+"${args[@]}"}
