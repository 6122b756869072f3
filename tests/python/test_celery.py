"""Celery against Warren: a worker runs a task called with ``.delay()``,
and ``celery inspect ping`` gets a pong. Celery leans on RabbitMQ's
extensions: its remote-control ("pidbox") queues carry ``x-message-ttl``
and ``x-expires``, replies go through fanout exchanges and per-client
queues, and results come back through the ``rpc://`` backend.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

APP = textwrap.dedent(
    """
    import os
    from celery import Celery

    app = Celery("warren_check", broker=os.environ["CELERY_BROKER_URL"], backend="rpc://")
    app.conf.broker_connection_retry_on_startup = True

    @app.task
    def add(x, y):
        return x + y
    """
)


@pytest.fixture
def celery_env(broker, tmp_path: Path):
    (tmp_path / "celery_app.py").write_text(APP)
    env = dict(os.environ)
    env["CELERY_BROKER_URL"] = f"amqp://{broker.user}:{broker.password}@{broker.host}:{broker.port}//"
    env["PYTHONPATH"] = str(tmp_path)
    return tmp_path, env


def celery(args: list[str], cwd: Path, env: dict, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "celery", "-A", "celery_app", *args],
        cwd=cwd, env=env, capture_output=True, text=True, **kw,
    )


@pytest.fixture
def worker(celery_env):
    cwd, env = celery_env
    log = open(cwd / "worker.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celery_app", "worker",
         "--pool=solo", "--concurrency=1", "--hostname=w1@warren", "--loglevel=INFO"],
        cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    try:
        while "ready." not in (cwd / "worker.log").read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("celery worker did not start:\n" + (cwd / "worker.log").read_text())
            time.sleep(0.2)
        yield cwd, env
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_task_called_with_delay_returns_its_result(worker):
    cwd, env = worker
    script = "from celery_app import add; print(add.delay(2, 3).get(timeout=30))"
    out = subprocess.run([sys.executable, "-c", script], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr + (cwd / "worker.log").read_text()
    assert out.stdout.strip() == "5"


def test_celery_inspect_ping_gets_a_pong(worker):
    cwd, env = worker
    out = celery(["inspect", "ping", "--timeout", "10"], cwd, env, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr + (cwd / "worker.log").read_text()
    assert "pong" in out.stdout, out.stdout
