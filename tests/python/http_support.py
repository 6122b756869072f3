"""Support for the management API tests: a warren-server of their own."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from conftest import DEFAULT_SERVER_BIN, REPO_ROOT, WarrenServer, wait_for_port

__all__ = ["REPO_ROOT", "dedicated_server"]


@contextlib.contextmanager
def dedicated_server(tmp_path: Path):
    """A fresh warren-server on free loopback ports, stopped afterwards."""
    binary = Path(os.environ.get("WARREN_SERVER_BIN", DEFAULT_SERVER_BIN))
    if not binary.is_file():
        pytest.fail(f"warren-server binary not found at {binary}", pytrace=False)
    data = tmp_path / "data"
    data.mkdir()
    server = WarrenServer(binary, data, "guest", "guest")
    server.start()
    try:
        wait_for_port("127.0.0.1", server.http_port, 20.0, server._alive)
        yield server
    finally:
        server.stop()
