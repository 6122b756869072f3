"""Fixtures that give each test a broker to talk to.

Default mode starts a real ``warren-server`` process (binary from
``WARREN_SERVER_BIN``, else ``<repo>/target/debug/warren-server``) on free
loopback ports with a fresh data directory.

``BROKER_USER`` and ``BROKER_PASS`` (default guest/guest) are the
credentials in both modes.

External mode is chosen by setting ``BROKER_HOST`` (with optional
``BROKER_PORT``, default 5672): the tests then use that
broker, e.g. a RabbitMQ node, to check that they describe RabbitMQ's real
behaviour. ``broker.restart()`` runs ``BROKER_RESTART_CMD`` through the shell
there, and skips the test when it is not set.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
import warnings
from pathlib import Path

import pika
import pika.exceptions
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SERVER_BIN = REPO_ROOT / "target" / "debug" / "warren-server"

# Bounds on waiting for a broker to come up and to shut down.
START_DEADLINE_S = 20.0
STOP_GRACE_S = 10.0
RESTART_CMD_DEADLINE_S = 180.0
# How much of the server's log a failure report shows.
LOG_TAIL_CHARS = 8000


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, deadline_s: float, alive=lambda: True) -> None:
    """Poll until ``host:port`` accepts a TCP connection.

    Raises ``RuntimeError`` as soon as ``alive()`` turns false (the process
    died) and ``TimeoutError`` once ``deadline_s`` has passed.
    """
    deadline = time.monotonic() + deadline_s
    while not port_accepts(host, port):
        if not alive():
            raise RuntimeError(f"broker exited before {host}:{port} accepted connections")
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{host}:{port} did not accept connections within {deadline_s}s")
        time.sleep(0.1)


class Broker:
    """Where the broker is, how to log in, and how to reach it with pika."""

    def __init__(self, host: str, port: int, user: str, password: str):
        self.host = host
        self.port = port
        self.user = user
        self.password = password

    def parameters(self, user: str | None = None, password: str | None = None):
        """Connection parameters built the way the tutorial builds them."""
        credentials = pika.PlainCredentials(
            self.user if user is None else user,
            self.password if password is None else password,
        )
        return pika.ConnectionParameters(self.host, self.port, credentials=credentials)

    def connect(self, user: str | None = None, password: str | None = None):
        """A new ``pika.BlockingConnection``; the caller closes it."""
        return pika.BlockingConnection(self.parameters(user, password))

    def restart(self) -> None:
        raise NotImplementedError

    def log_tail(self) -> str:
        """The end of the broker's own output, for failure reports."""
        return ""

    def shutdown(self) -> None:
        """Called once at the end of the session."""


class WarrenServer(Broker):
    """A warren-server child process bound to loopback."""

    def __init__(self, binary: Path, data_dir: Path, user: str, password: str):
        super().__init__("127.0.0.1", free_port(), user, password)
        self.binary = binary
        self.data_dir = data_dir
        self.http_port = free_port()
        self.log_path = data_dir.parent / "warren-server.log"
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        return [
            str(self.binary),
            "--amqp-port", str(self.port),
            "--http-port", str(self.http_port),
            "--data-dir", str(self.data_dir),
            "--bind", "127.0.0.1",
        ]

    def start(self) -> None:
        # Append, so that the output of every run of a restart is kept.
        with open(self.log_path, "ab") as log:
            log.write(f"--- starting: {' '.join(self.command())}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        try:
            wait_for_port(self.host, self.port, START_DEADLINE_S, self._alive)
            return
        except (RuntimeError, TimeoutError) as exc:
            problem = str(exc)
        # Failed outside the except block, so the report shows no traceback chain.
        self.stop()
        pytest.fail(f"warren-server did not come up: {problem}\n{self.log_tail()}", pytrace=False)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within the grace period."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_GRACE_S)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def shutdown(self) -> None:
        self.stop()

    def log_tail(self) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no server log)"
        return text[-LOG_TAIL_CHARS:]

    def _alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class ExternalBroker(Broker):
    """A broker someone else runs; restartable only through a shell command."""

    def __init__(self, host: str, port: int, user: str, password: str, restart_cmd: str | None):
        super().__init__(host, port, user, password)
        self.restart_cmd = restart_cmd

    def restart(self) -> None:
        if not self.restart_cmd:
            pytest.skip("external broker: set BROKER_RESTART_CMD to allow restarts")
        subprocess.run(self.restart_cmd, shell=True, check=True, timeout=RESTART_CMD_DEADLINE_S)
        wait_for_port(self.host, self.port, START_DEADLINE_S)


def broker_from_env(tmp_dir: Path) -> Broker:
    env = os.environ
    user = env.get("BROKER_USER", "guest")
    password = env.get("BROKER_PASS", "guest")
    if env.get("BROKER_HOST"):
        return ExternalBroker(
            env["BROKER_HOST"],
            int(env.get("BROKER_PORT", "5672")),
            user,
            password,
            env.get("BROKER_RESTART_CMD") or None,
        )
    binary = Path(env.get("WARREN_SERVER_BIN", DEFAULT_SERVER_BIN))
    if not binary.is_file():
        pytest.fail(
            f"warren-server binary not found at {binary}: build it, set WARREN_SERVER_BIN, "
            "or point the tests at a running broker with BROKER_HOST",
            pytrace=False,
        )
    data_dir = tmp_dir / "data"
    data_dir.mkdir()
    server = WarrenServer(binary, data_dir, user, password)
    server.start()
    return server


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    """The broker shared by all tests of the session."""
    instance = broker_from_env(tmp_path_factory.mktemp("warren"))
    yield instance
    instance.shutdown()


@pytest.fixture
def connect(broker):
    """``connect()`` opens a BlockingConnection that is closed after the test."""
    opened: list[pika.BlockingConnection] = []

    def open_connection(user: str | None = None, password: str | None = None):
        connection = broker.connect(user, password)
        opened.append(connection)
        return connection

    yield open_connection
    for connection in opened:
        close_quietly(connection)


def close_quietly(connection) -> None:
    """Close a connection that a test may already have closed or lost."""
    if connection.is_open:
        try:
            connection.close()
        except pika.exceptions.AMQPError:
            pass


class Names:
    """Per-test unique names that keep the tutorial's names as prefixes.

    Everything named through here is deleted after the test, so tests can
    share one broker (and be rerun) without seeing each other's leftovers.
    """

    def __init__(self):
        self.queues: list[str] = []
        self.exchanges: list[str] = []

    @staticmethod
    def unique(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:10]}"

    def queue(self, prefix: str) -> str:
        name = self.unique(prefix)
        self.queues.append(name)
        return name

    def exchange(self, prefix: str) -> str:
        name = self.unique(prefix)
        self.exchanges.append(name)
        return name

    def delete_all(self, broker: Broker) -> None:
        deletions = [("queue_delete", q) for q in self.queues]
        deletions += [("exchange_delete", x) for x in self.exchanges]
        if not deletions:
            return
        try:
            connection = broker.connect()
        except Exception as exc:  # pika's handshake timeouts are not AMQPErrors
            warnings.warn(f"cleanup skipped, cannot connect: {exc!r}")
            return
        try:
            for method, name in deletions:
                # One channel per deletion: an error closes only its channel.
                channel = connection.channel()
                try:
                    getattr(channel, method)(name)
                    channel.close()
                except pika.exceptions.ChannelClosed as exc:
                    warnings.warn(f"cleanup: {method}({name!r}) failed: {exc!r}")
        finally:
            close_quietly(connection)


@pytest.fixture
def names(broker):
    registry = Names()
    yield registry
    registry.delete_all(broker)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the end of the server's log to the report of a failed test."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    instance = item.funcargs.get("broker") if hasattr(item, "funcargs") else None
    tail = instance.log_tail() if instance is not None else ""
    if tail:
        report.sections.append(("broker log (tail)", tail))
