#!/usr/bin/env bash
# Installs what the tests need and a fresh machine of this project's kind
# lacks: Debian packages through apt (Chromium and chromedriver for the
# dashboard's browser tests, RabbitMQ's rabbitmqadmin, iproute2, Go with
# amqp091-go and the RabbitMQ Java client for tests/clients), the wasm32
# target and the matching wasm-bindgen-cli, and tests/clients/node's npm
# packages. Each step is skipped when its part is already there, so a
# second run takes a second. scripts/test.sh runs it first.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== python venv for the tutorial tests"
if ! python3 -m venv --help >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq python3-venv
fi

echo "== iproute2 for the loopback test (a client in a network namespace)"
if ! command -v ip >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2
fi

echo "== rabbitmqadmin (from Debian's rabbitmq-server) for the management API tests"
# The package ships RabbitMQ 3.x's rabbitmqadmin script, which
# tests/python/test_http_rabbitmqadmin.py drives against Warren. Installing
# must not leave a RabbitMQ running: policy-rc.d forbids starting services
# during the install, and anything RabbitMQ that started anyway is stopped.
if ! command -v rabbitmqadmin >/dev/null 2>&1; then
    rabbit_before="$(pgrep -f 'beam.*rabbit' || true)"
    epmd_before="$(pgrep -x epmd || true)"
    made_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        made_policy=1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server
    if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
    if [ -z "$rabbit_before" ] && pgrep -f 'beam.*rabbit' >/dev/null 2>&1; then
        rabbitmqctl stop >/dev/null 2>&1 || service rabbitmq-server stop >/dev/null 2>&1 || true
    fi
    if [ -z "$epmd_before" ] && pgrep -x epmd >/dev/null 2>&1; then
        epmd -kill >/dev/null 2>&1 || true
    fi
    if [ -z "$rabbit_before" ] && pgrep -f 'beam.*rabbit' >/dev/null 2>&1; then
        echo "a RabbitMQ started by the package install is still running" >&2
        exit 1
    fi
fi

echo "== other languages' clients: Go (amqp091-go), Java (RabbitMQ's client), Node (amqplib from npm)"
# tests/python/test_clients.py builds and runs tests/clients/*. Go and the
# two client libraries come from Debian; the JDK and Node.js are on this
# kind of machine already, and are installed here if not.
pkgs=()
command -v go >/dev/null 2>&1 || pkgs+=(golang-go)
[ -d /usr/share/gocode/src/github.com/rabbitmq/amqp091-go ] || pkgs+=(golang-github-rabbitmq-amqp091-go-dev)
[ -f /usr/share/java/amqp-client.jar ] || pkgs+=(librabbitmq-client-java)
command -v javac >/dev/null 2>&1 || pkgs+=(default-jdk-headless)
command -v npm >/dev/null 2>&1 || pkgs+=(nodejs npm)
if [ ${#pkgs[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}"
fi
# npm ci again only when the lock file changed since the last install.
stamp=tests/clients/node/node_modules/.warren-lock
if ! cmp -s tests/clients/node/package-lock.json "$stamp" 2>/dev/null; then
    (cd tests/clients/node && npm ci --no-audit --no-fund)
    cp tests/clients/node/package-lock.json "$stamp"
fi

echo "== dashboard: WASM target, wasm-bindgen-cli, Chromium and chromedriver"
# The dashboard's browser tests drive Debian's chromium through
# chromium-driver. scripts/build-frontend.sh adds the wasm32 target and
# installs the wasm-bindgen-cli matching Cargo.lock when missing; done here
# too so that a failure shows up as a preparation step.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver
fi
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
wbg="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$wbg" ]; then
    cargo install wasm-bindgen-cli --version "=$wbg"
fi
