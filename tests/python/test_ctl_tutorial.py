"""The tutorial's section 2.4 with warrenctl and pika: a user made
administrator with full permissions on ``/`` publishes and consumes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pika
import pytest

from http_support import dedicated_server

pytestmark = pytest.mark.skipif(bool(os.environ.get("BROKER_HOST")), reason="drives a Warren node of its own")


def warrenctl(server, *args: str) -> subprocess.CompletedProcess:
    binary = Path(os.environ.get("WARREN_SERVER_BIN", "target/debug/warren-server")).with_name("warrenctl")
    if not binary.is_file():
        pytest.fail(f"warrenctl not found at {binary}", pytrace=False)
    return subprocess.run(
        [str(binary), "-n", f"127.0.0.1:{server.http_port}", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )


def test_tutorial_2_4_new_administrator_publishes_and_consumes(tmp_path):
    with dedicated_server(tmp_path) as server:
        for args in (
            ("add_user", "lqz", "123"),
            ("set_user_tags", "lqz", "administrator"),
            ("set_permissions", "-p", "/", "lqz", ".*", ".*", ".*"),
        ):
            result = warrenctl(server, *args)
            assert result.returncode == 0, result
        params = pika.ConnectionParameters(
            host="127.0.0.1", port=server.port, credentials=pika.PlainCredentials("lqz", "123")
        )
        with pika.BlockingConnection(params) as connection:
            channel = connection.channel()
            channel.queue_declare(queue="hello")
            channel.basic_publish(exchange="", routing_key="hello", body=b"Hello World!")
            body = None
            for method, _props, payload in channel.consume("hello", inactivity_timeout=10):
                assert method is not None, "no delivery within 10 s"
                channel.basic_ack(method.delivery_tag)
                body = payload
                break
            channel.cancel()
        assert body == b"Hello World!"
        listed = warrenctl(server, "-q", "list_users")
        assert any(line.split()[:2] == ["lqz", "[administrator]"] for line in listed.stdout.splitlines()), listed
