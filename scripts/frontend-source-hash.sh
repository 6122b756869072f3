#!/usr/bin/env bash
# Prints the hash of the dashboard's sources. build-frontend.sh records it in
# frontend/dist/manifest.json and server/build.rs computes the same, so the
# server refuses a bundle built from other sources. Keep the file list in
# step with server/build.rs (FRONTEND_SOURCES).
set -euo pipefail
cd "$(dirname "$0")/.."
find frontend/Cargo.toml frontend/style.css frontend/src server/api-types/Cargo.toml server/api-types/src \
    -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1
