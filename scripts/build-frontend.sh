#!/usr/bin/env bash
# Builds the Leptos dashboard (frontend/) to WASM and writes the bundle that
# warren-server embeds: frontend/dist/ with content-hashed file names and
# manifest.json (the names, and a hash of the frontend's sources, so the
# server can tell a stale bundle from a fresh one).
#
# Needs only rustup and cargo: the wasm32 target is added when missing, and
# wasm-bindgen-cli is installed at exactly the version of the wasm-bindgen
# crate in Cargo.lock when the installed one differs. Nothing downloads a
# prebuilt tool. wasm-opt is used only when it is binaryen 116 or newer
# (Debian's binaryen 108 corrupts the module silently).
#
# The output directory is replaced only when its content changed, so the
# server is not rebuilt for nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
dist=frontend/dist
profile=wasm-release

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    echo "== adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
fi

want="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
if [ -z "$want" ]; then
    echo "build-frontend: no wasm-bindgen in Cargo.lock" >&2
    exit 1
fi
have="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)"
if [ "$have" != "$want" ]; then
    echo "== installing wasm-bindgen-cli $want (found: ${have:-none})"
    # Not --locked: the CLI's own lock file pins versions the registry may
    # no longer serve.
    cargo install wasm-bindgen-cli --version "=$want"
fi

echo "== building the dashboard (wasm32, profile $profile)"
cargo build --locked -p frontend --target wasm32-unknown-unknown --profile "$profile"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/warren-dist.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
wasm-bindgen --target web --no-typescript --out-dir "$tmp/bindgen" \
    "$target/wasm32-unknown-unknown/$profile/frontend.wasm"

wasm="$tmp/bindgen/frontend_bg.wasm"
if opt_version="$(wasm-opt --version 2>/dev/null | grep -o 'version [0-9]*' | awk '{print $2}')" \
    && [ -n "$opt_version" ] && [ "$opt_version" -ge 116 ]; then
    echo "== wasm-opt -Oz (binaryen $opt_version)"
    wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int "$wasm" -o "$wasm.opt"
    mv "$wasm.opt" "$wasm"
fi

short() { sha256sum "$1" | cut -c1-16; }
mkdir "$tmp/out"
wasm_name="frontend_bg-$(short "$wasm").wasm"
cp "$wasm" "$tmp/out/$wasm_name"
js_name="frontend-$(short "$tmp/bindgen/frontend.js").js"
cp "$tmp/bindgen/frontend.js" "$tmp/out/$js_name"
css_name="style-$(short frontend/style.css).css"
cp frontend/style.css "$tmp/out/$css_name"
# The page may not run inline script (its CSP forbids it), so a small
# module starts the app with the hashed module name.
cat > "$tmp/boot.js" <<JS
import init from './$js_name';
init({ module_or_path: new URL('./$wasm_name', import.meta.url) });
JS
boot_name="boot-$(short "$tmp/boot.js").js"
cp "$tmp/boot.js" "$tmp/out/$boot_name"
# The server sends these gzipped to browsers that accept it (-n: no name or
# time stamp, so the same input gives the same bytes).
gzip -9 -n -k "$tmp/out/$wasm_name" "$tmp/out/$js_name"

source_hash="$(./scripts/frontend-source-hash.sh)"
cat > "$tmp/out/manifest.json" <<JSON
{
  "source_hash": "$source_hash",
  "boot": "$boot_name",
  "js": "$js_name",
  "wasm": "$wasm_name",
  "css": "$css_name"
}
JSON

if [ -d "$dist" ] && diff -rq "$dist" "$tmp/out" >/dev/null 2>&1; then
    echo "== $dist unchanged"
else
    rm -rf "$dist.old"
    if [ -d "$dist" ]; then mv "$dist" "$dist.old"; fi
    mv "$tmp/out" "$dist"
    rm -rf "$dist.old"
    echo "== wrote $dist ($(du -sh "$dist" | cut -f1)): $boot_name $js_name $wasm_name $css_name"
fi
