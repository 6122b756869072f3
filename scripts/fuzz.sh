#!/usr/bin/env bash
# A bounded fuzzing pass (README, "Fuzzing"): builds the cargo-fuzz targets
# in fuzz/ and runs each for a short time from its committed corpus
# (fuzz/corpus/<target>), failing on the first crash, panic, timeout or
# wrong answer; libFuzzer leaves the input in fuzz/artifacts/<target>/.
# Runs on the stable toolchain: RUSTC_BOOTSTRAP=1 lets it take the
# sanitizer-coverage flags cargo-fuzz passes. cargo-fuzz is installed into
# ~/.cargo when missing. One process per target: one core at a time.
#
#   FUZZ_SECONDS   time per target (default 25)
#   FUZZ_TARGETS   targets to run (default: all of fuzz/fuzz_targets)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-25}"
export RUSTC_BOOTSTRAP=1
# The fuzz build (release, coverage instrumentation) apart from the normal
# one, so neither invalidates the other.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/fuzz"
export PATH="$HOME/.cargo/bin:$PATH"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked --version 0.13.2
fi

targets="${FUZZ_TARGETS:-$(cargo fuzz list)}"
# No sanitizer: the broker is safe Rust, and what we look for is panics,
# wrong answers, timeouts and large allocations; debug assertions on, so
# overflow is caught.
flags=(--sanitizer none --debug-assertions)

echo "== building the fuzz targets"
cargo fuzz build "${flags[@]}"

for t in $targets; do
    echo "== fuzzing $t for ${seconds}s"
    # A scratch copy of the corpus: what a short run finds new is not
    # committed by CI.
    work="$(mktemp -d)"
    cp -r "fuzz/corpus/$t/." "$work/" 2>/dev/null || true
    cargo fuzz run "${flags[@]}" "$t" "$work" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
        -print_final_stats=1 2>&1 | tail -n 25
    rm -rf "$work"
done
echo "== fuzzing: no crash"
