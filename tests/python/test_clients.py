"""Other languages' clients against the broker: Go's amqp091-go, the RabbitMQ
Java client and Node's amqplib each run the same scenario (see
``tests/clients/README.md``): confirms, properties and headers round trip,
prefetch with manual acks, topic routing and ``basic.return``, a 406 that
closes only its channel, a 1 MiB message, a server-sent ``basic.cancel`` and
a 2 s heartbeat kept through an idle pause. Each program prints ``OK <lang>``.

The toolchains come from Debian and npm, as ``scripts/test-deps.sh`` installs them:
``golang-go`` with ``golang-github-rabbitmq-amqp091-go-dev``,
``librabbitmq-client-java`` (with a JDK), and Node.js with ``npm ci`` in
``tests/clients/node`` (``scripts/test-deps.sh``). Run against RabbitMQ (``BROKER_HOST``) the same
programs pass, which is how they were checked.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

CLIENTS = Path(__file__).resolve().parents[1] / "clients"
JAVA_CLASSPATH = ["/usr/share/java/amqp-client.jar", "/usr/share/java/slf4j-api.jar",
                  "/usr/share/java/slf4j-nop.jar"]
GOPATH = "/usr/share/gocode"
BUILD_TIMEOUT_S = 300
RUN_TIMEOUT_S = 90


def need(ok: bool, what: str) -> None:
    if not ok:
        pytest.fail(f"{what} (scripts/test-deps.sh installs it)", pytrace=False)


def run(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)


def built(result: subprocess.CompletedProcess, what: str) -> None:
    if result.returncode != 0:
        pytest.fail(f"building the {what} scenario failed:\n{result.stdout}{result.stderr}", pytrace=False)


def build_go(out: Path) -> list[str]:
    need(shutil.which("go") is not None, "Go is not installed (Debian's golang-go)")
    need((Path(GOPATH) / "src/github.com/rabbitmq/amqp091-go").is_dir(),
         "amqp091-go is not installed (Debian's golang-github-rabbitmq-amqp091-go-dev)")
    binary = out / "scenario-go"
    env = dict(os.environ, GO111MODULE="off", GOPATH=GOPATH, GOFLAGS="")
    env.setdefault("GOCACHE", str(Path.home() / ".cache" / "go-build"))
    built(run(["go", "build", "-o", str(binary), str(CLIENTS / "go" / "scenario.go")], env=env,
              timeout=BUILD_TIMEOUT_S), "Go")
    return [str(binary)]


def build_java(out: Path) -> list[str]:
    need(shutil.which("javac") is not None and shutil.which("java") is not None, "no JDK (javac, java)")
    need(all(Path(p).is_file() for p in JAVA_CLASSPATH),
         "the RabbitMQ Java client is not installed (Debian's librabbitmq-client-java)")
    classpath = ":".join(JAVA_CLASSPATH)
    built(run(["javac", "-d", str(out), "-cp", classpath, str(CLIENTS / "java" / "Scenario.java")],
              timeout=BUILD_TIMEOUT_S), "Java")
    return ["java", "-cp", f"{out}:{classpath}", "Scenario"]


def build_node(out: Path) -> list[str]:
    need(shutil.which("node") is not None, "Node.js is not installed")
    here = CLIENTS / "node"
    wanted = json.loads((here / "package-lock.json").read_text())["packages"]["node_modules/amqplib"]["version"]
    installed = here / "node_modules" / "amqplib" / "package.json"
    need(installed.is_file() and json.loads(installed.read_text())["version"] == wanted,
         f"amqplib {wanted} is not installed in {here} (npm ci; scripts/test-deps.sh does it)")
    return ["node", str(here / "scenario.js")]


BUILDERS = {"go": build_go, "java": build_java, "node": build_node}


@pytest.mark.parametrize("lang", sorted(BUILDERS))
def test_client_scenario(lang, broker, tmp_path):
    command = BUILDERS[lang](tmp_path)
    env = dict(os.environ,
               AMQP_URL=f"amqp://{broker.user}:{broker.password}@{broker.host}:{broker.port}/%2f",
               NAME_PREFIX=f"clients-{uuid.uuid4().hex[:8]}-")
    result = run(command, env=env, timeout=RUN_TIMEOUT_S)
    assert result.returncode == 0 and f"OK {lang}" in result.stdout, (
        f"{lang} scenario failed (exit {result.returncode}):\n{result.stdout}{result.stderr}\n"
        f"broker log:\n{broker.log_tail()}"
    )
