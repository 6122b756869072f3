#!/usr/bin/env bash
# Runs every test: Rust unit and integration tests (real warren-server
# processes driven by lapin, and the dashboard in headless Chromium), then
# the Python tests (pytest): the tutorial's pika programs, Celery,
# rabbitmqadmin, the OpenAPI document, and the Go, Java and Node clients.
# What the tests need is installed first, when missing (scripts/test-deps.sh).
# Last, a bounded fuzzing pass (scripts/fuzz.sh, about 25 s per target).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"

./scripts/test-deps.sh

echo "== building the dashboard (WASM), which the server embeds"
./scripts/build-frontend.sh

echo "== building"
cargo build --workspace --bins --locked

echo "== Rust tests"
# Every integration test starts its own server; a few run at once.
RUST_TEST_THREADS="${RUST_TEST_THREADS:-4}" cargo test --workspace --locked --no-fail-fast

echo "== tutorial programs (pika)"
venv=tests/python/.venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
stamp="$venv/.requirements-installed"
if [ ! -f "$stamp" ] || ! cmp -s tests/python/requirements.txt "$stamp"; then
    "$venv/bin/pip" install --quiet -r tests/python/requirements.txt
    cp tests/python/requirements.txt "$stamp"
fi
WARREN_SERVER_BIN="$target/debug/warren-server" "$venv/bin/pytest" -q tests/python

echo "== fuzzing (bounded)"
./scripts/fuzz.sh
