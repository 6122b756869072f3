#!/usr/bin/env bash
# Builds the dashboard and Warren, and runs a node with its data in ./data (AMQP on 5672,
# management on 15672). Extra arguments go to warren-server, e.g.
#   scripts/run.sh --amqp-port 5673
set -euo pipefail
cd "$(dirname "$0")/.."
# The dashboard first: the server embeds frontend/dist/.
./scripts/build-frontend.sh
cargo build --release --locked -p warren --bin warren-server
exec "${CARGO_TARGET_DIR:-target}/release/warren-server" --data-dir ./data "$@"
