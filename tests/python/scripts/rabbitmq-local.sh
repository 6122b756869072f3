#!/usr/bin/env bash
# Start, stop or restart a local RabbitMQ node (Debian's rabbitmq-server
# package) listening on loopback only. Used to check that the Python tests
# describe RabbitMQ's real behaviour, which Warren must match:
#
#   scripts/rabbitmq-local.sh start
#   BROKER_HOST=127.0.0.1 BROKER_PORT=5672 BROKER_USER=guest BROKER_PASS=guest \
#   BROKER_RESTART_CMD="$PWD/scripts/rabbitmq-local.sh restart" .venv/bin/pytest
#   scripts/rabbitmq-local.sh stop
#
# "restart" stops the whole Erlang VM and boots it again, so only what the
# node wrote to disk survives (a real restart, unlike stop_app/start_app).
set -euo pipefail

# Everything on loopback: AMQP, epmd and Erlang distribution.
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export ERL_EPMD_ADDRESS=127.0.0.1
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"

start() {
    rabbitmq-server -detached
    # await_startup fails at once while the VM has not registered with epmd
    # yet, so retry it within a bounded deadline.
    local deadline=$((SECONDS + 90))
    until rabbitmqctl -q --timeout 30 await_startup >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            echo "RabbitMQ did not start; see /var/log/rabbitmq/" >&2
            exit 1
        fi
        sleep 1
    done
}

stop() {
    # Stops the node and waits for its VM to exit; no-op if not running.
    rabbitmqctl -q stop >/dev/null 2>&1 || true
}

stop_epmd() {
    # The node leaves Erlang's port mapper running; stop it too unless some
    # other Erlang node still uses it.
    if ! epmd -names 2>/dev/null | grep -q '^name '; then
        epmd -kill >/dev/null 2>&1 || true
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop; stop_epmd ;;
    restart) stop; start ;;
    *) echo "usage: $0 start|stop|restart" >&2; exit 2 ;;
esac
