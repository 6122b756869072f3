"""RabbitMQ 3.x's own CLI, rabbitmqadmin, against Warren's management API.

rabbitmqadmin is the Python script that Debian's rabbitmq-server package
installs as /usr/bin/rabbitmqadmin (.ci/run installs the package); the
tests skip only when it is absent. Each test drives a dedicated server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from http_support import dedicated_server

ADMIN = shutil.which("rabbitmqadmin") or "/usr/bin/rabbitmqadmin"

pytestmark = [
    pytest.mark.skipif(not os.path.exists(ADMIN), reason="rabbitmqadmin is not installed"),
    pytest.mark.skipif(bool(os.environ.get("BROKER_HOST")), reason="drives a Warren node of its own"),
]


@pytest.fixture(scope="module")
def admin(tmp_path_factory):
    """Runs rabbitmqadmin against the module's server; returns stdout."""
    with dedicated_server(tmp_path_factory.mktemp("admin")) as server:

        def run(*args: str, check: bool = True) -> str:
            cmd = [sys.executable, ADMIN, "-H", "127.0.0.1", "-P", str(server.http_port),
                   "-u", "guest", "-p", "guest", *args]
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
            if check:
                assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
            return result.stdout + result.stderr

        run.server = server
        yield run


def rows(text: str) -> list[dict]:
    return json.loads(text)


def test_declare_and_list_queues(admin):
    assert "queue declared" in admin("declare", "queue", "name=adm-q1", "durable=false")
    admin("declare", "queue", "name=adm-q2", "arguments={\"x-max-length\": 5}")
    queues = {q["name"]: q for q in rows(admin("-f", "raw_json", "list", "queues"))}
    assert queues["adm-q1"]["durable"] is False
    assert queues["adm-q2"]["arguments"] == {"x-max-length": 5}
    table = admin("list", "queues")
    assert "adm-q1" in table and "messages" in table
    named = rows(admin("-f", "raw_json", "list", "queues", "name", "messages"))
    assert set(named[0]) == {"name", "messages"}


def test_list_exchanges_and_bindings(admin):
    names = {x["name"] for x in rows(admin("-f", "raw_json", "list", "exchanges"))}
    assert {"", "amq.direct", "amq.fanout", "amq.topic", "amq.headers"} <= names
    admin("declare", "exchange", "name=adm-x", "type=topic")
    admin("declare", "queue", "name=adm-bq")
    admin("declare", "binding", "source=adm-x", "destination=adm-bq", "routing_key=a.#")
    bindings = rows(admin("-f", "raw_json", "list", "bindings"))
    assert any(b["source"] == "adm-x" and b["destination"] == "adm-bq" for b in bindings)
    admin("delete", "binding", "source=adm-x", "destination_type=queue", "destination=adm-bq",
          "properties_key=a.%23")
    bindings = rows(admin("-f", "raw_json", "list", "bindings"))
    assert not any(b["source"] == "adm-x" for b in bindings)


def test_publish_and_get(admin):
    admin("declare", "queue", "name=adm-pq")
    assert "Message published" in admin("publish", "routing_key=adm-pq", "payload=hello warren")
    got = rows(admin("-f", "raw_json", "get", "queue=adm-pq", "ackmode=ack_requeue_false"))
    assert got[0]["payload"] == "hello warren"
    assert got[0]["routing_key"] == "adm-pq"
    assert "No items" in admin("get", "queue=adm-pq")
    admin("publish", "exchange=amq.default", "routing_key=adm-pq", "payload=again")
    table = admin("get", "queue=adm-pq", "count=1")
    assert "again" in table


def test_objects_overview_and_definitions(admin, tmp_path):
    admin("declare", "vhost", "name=adm-v")
    admin("declare", "user", "name=adm-u", "password=pw", "tags=management")
    admin("declare", "permission", "vhost=adm-v", "user=adm-u", "configure=.*", "write=.*", "read=.*")
    admin("declare", "policy", "name=adm-p", "pattern=^adm", "definition={\"max-length\": 10}")
    users = {u["name"] for u in rows(admin("-f", "raw_json", "list", "users"))}
    assert "adm-u" in users
    vhosts = {v["name"] for v in rows(admin("-f", "raw_json", "list", "vhosts"))}
    assert {"/", "adm-v"} <= vhosts
    overview = rows(admin("-f", "raw_json", "show", "overview"))[0]
    assert overview["rabbitmq_version"].startswith("3.")
    path = tmp_path / "defs.json"
    assert "Exported definitions" in admin("export", str(path))
    exported = json.loads(path.read_text())
    assert any(q["name"] == "adm-q1" for q in exported["queues"]) or exported["queues"] is not None
    admin("delete", "queue", "name=adm-pq")
    admin("import", str(path))
    assert "adm-pq" in {q["name"] for q in rows(admin("-f", "raw_json", "list", "queues"))}
    admin("delete", "policy", "name=adm-p")
    admin("delete", "user", "name=adm-u")
    admin("delete", "vhost", "name=adm-v")
    assert "adm-v" not in {v["name"] for v in rows(admin("-f", "raw_json", "list", "vhosts"))}


def test_errors_come_back_as_rabbitmqadmin_expects(admin):
    out = admin("declare", "queue", "name=adm-bad", "durable=maybe", check=False)
    assert "invalid request body" in out or "expected" in out
    out = admin("-V", "nope", "list", "queues", check=False)
    assert "Not found" in out
