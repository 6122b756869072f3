"""AMQPS and HTTPS: pika over TLS to a warren-server whose warren.conf turns
on ``listeners.ssl.default`` with rabbitmq.conf's ``ssl_options`` keys, as
RabbitMQ's TLS guide configures it, the RabbitMQ Java client's scenario
(``test_clients.py``) over ``amqps://`` trusting the test CA, and urllib to
its management API over HTTPS (``management.ssl.*``). The certificates are
made here, with the openssl command, for this run only.

Runs against Warren only (it starts its own server with its own config).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import subprocess
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pika
import pytest

from conftest import DEFAULT_SERVER_BIN, WarrenServer, free_port, wait_for_port
from test_clients import RUN_TIMEOUT_S, build_java, run

pytestmark = pytest.mark.skipif(bool(os.environ.get("BROKER_HOST")), reason="starts its own Warren")


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certs(d: Path) -> None:
    """A CA, and a server certificate for localhost/127.0.0.1 it signed."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=warren-test-ca",
            "-keyout", "ca_key.pem", "-out", "ca_certificate.pem", cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
            "-keyout", "server_key.pem", "-out", "server.csr", cwd=d)
    (d / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca_certificate.pem", "-CAkey", "ca_key.pem",
            "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server_certificate.pem", cwd=d)


class TlsWarren(WarrenServer):
    def __init__(self, binary: Path, data_dir: Path, conf: Path, tls_port: int):
        super().__init__(binary, data_dir, "guest", "guest")
        self.conf = conf
        self.tls_port = tls_port

    def command(self) -> list[str]:
        return super().command() + ["--config", str(self.conf)]


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    make_certs(d)
    tls_port, https_port = free_port(), free_port()
    conf = d / "warren.conf"
    conf.write_text(
        f"listeners.ssl.default = {tls_port}\n"
        f"ssl_options.cacertfile = {d / 'ca_certificate.pem'}\n"
        f"ssl_options.certfile = {d / 'server_certificate.pem'}\n"
        f"ssl_options.keyfile = {d / 'server_key.pem'}\n"
        "ssl_options.verify = verify_peer\n"
        "ssl_options.fail_if_no_peer_cert = false\n"
        f"management.ssl.port = {https_port}\n"
        f"management.ssl.cacertfile = {d / 'ca_certificate.pem'}\n"
        f"management.ssl.certfile = {d / 'server_certificate.pem'}\n"
        f"management.ssl.keyfile = {d / 'server_key.pem'}\n"
    )
    data = d / "data"
    data.mkdir()
    binary = Path(os.environ.get("WARREN_SERVER_BIN", DEFAULT_SERVER_BIN))
    server = TlsWarren(binary, data, conf, tls_port)
    server.start()
    wait_for_port("127.0.0.1", tls_port, 20.0, server._alive)
    wait_for_port("127.0.0.1", https_port, 20.0, server._alive)
    server.ca = d / "ca_certificate.pem"
    server.https_port = https_port
    yield server
    server.shutdown()


def tls_parameters(server) -> pika.ConnectionParameters:
    context = ssl.create_default_context(cafile=str(server.ca))
    return pika.ConnectionParameters(
        host="127.0.0.1",
        port=server.tls_port,
        credentials=pika.PlainCredentials("guest", "guest"),
        ssl_options=pika.SSLOptions(context, "localhost"),
    )


def fetch(url: str, context: ssl.SSLContext | None = None):
    """GET as guest: the response's headers and its JSON body."""
    req = urllib.request.Request(url)
    req.add_header("Authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
    with urllib.request.urlopen(req, timeout=10, context=context) as r:
        return r.headers, json.load(r)


def api_get(server, path: str):
    return fetch(f"http://127.0.0.1:{server.http_port}{path}")[1]


def test_pika_publishes_and_consumes_over_tls(tls_broker):
    conn = pika.BlockingConnection(tls_parameters(tls_broker))
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare("tls-q", durable=True)
        for i in range(100):
            ch.basic_publish("", "tls-q", f"secret {i}".encode(),
                             pika.BasicProperties(delivery_mode=2), mandatory=True)
        got = []
        while (m := ch.basic_get("tls-q", auto_ack=True))[0] is not None:
            got.append(m[2].decode())
        assert got == [f"secret {i}" for i in range(100)]
        # The management API says the connection came over TLS.
        plain = pika.BlockingConnection(tls_broker.parameters())
        conns = api_get(tls_broker, "/api/connections")
        plain.close()
        tls_conns = [c for c in conns if c["ssl"]]
        assert len(tls_conns) == 1, conns
        assert tls_conns[0]["peer_host"] == "127.0.0.1"
        assert tls_conns[0]["ssl_protocol"] in ("tlsv1.2", "tlsv1.3"), tls_conns[0]
        assert tls_conns[0]["ssl_cipher"].startswith("TLS"), tls_conns[0]
        assert all(c["ssl_protocol"] is None and c["ssl_cipher"] is None for c in conns if not c["ssl"]), conns
    finally:
        conn.close()


def test_a_client_that_does_not_trust_the_server_is_refused_and_others_are_served(tls_broker):
    # A client with the system's CAs only does not trust the test CA.
    params = pika.ConnectionParameters(
        host="127.0.0.1", port=tls_broker.tls_port,
        credentials=pika.PlainCredentials("guest", "guest"),
        ssl_options=pika.SSLOptions(ssl.create_default_context(), "localhost"),
        connection_attempts=1,
    )
    with pytest.raises((pika.exceptions.AMQPConnectionError, ssl.SSLError)):
        pika.BlockingConnection(params)
    # Plain AMQP sent to the TLS port gets no AMQP answer.
    with socket.create_connection(("127.0.0.1", tls_broker.tls_port), timeout=5) as s:
        s.sendall(b"AMQP\x00\x00\x09\x01")
        s.settimeout(5)
        try:
            answer = s.recv(64)
        except (ConnectionResetError, TimeoutError, socket.timeout):
            answer = b""
        assert not answer.startswith(b"\x01\x00\x00"), answer
    # The plain listener and the TLS listener still serve.
    plain = pika.BlockingConnection(tls_broker.parameters())
    plain.close()
    conn = pika.BlockingConnection(tls_parameters(tls_broker))
    conn.close()


def test_java_client_scenario_over_tls(tls_broker, tmp_path):
    # The Java client checks the chain against the test CA only (its SSLContext
    # from AMQP_CACERT); version 5.0 of the client does not check the host name.
    command = build_java(tmp_path)
    env = dict(os.environ,
               AMQP_URL=f"amqps://guest:guest@localhost:{tls_broker.tls_port}/%2f",
               AMQP_CACERT=str(tls_broker.ca),
               NAME_PREFIX=f"tls-{uuid.uuid4().hex[:8]}-")
    result = run(command, env=env, timeout=RUN_TIMEOUT_S)
    assert result.returncode == 0 and "OK java" in result.stdout, (
        f"Java over TLS failed (exit {result.returncode}):\n{result.stdout}{result.stderr}\n"
        f"broker log:\n{tls_broker.log_tail()}"
    )


def test_management_api_over_https(tls_broker):
    context = ssl.create_default_context(cafile=str(tls_broker.ca))
    headers, overview = fetch(f"https://localhost:{tls_broker.https_port}/api/overview", context)
    assert overview["node"], overview
    assert headers["Strict-Transport-Security"] == "max-age=31536000"
    # A client that does not trust the test CA is refused.
    with pytest.raises(urllib.error.URLError):
        fetch(f"https://localhost:{tls_broker.https_port}/api/overview", ssl.create_default_context())
    # The plain listener still serves, without HSTS.
    headers, _ = fetch(f"http://127.0.0.1:{tls_broker.http_port}/api/overview")
    assert "Strict-Transport-Security" not in headers
