"""Real HTTP servers for tests: any ASGI app under uvicorn, on 127.0.0.1, in a thread.

Tests talk to these over real sockets, so the clients' retry, timeout and connection
handling is exercised as it runs against the inference box, not against a mock.

    with running_server(app) as base_url:
        httpx.get(base_url + "/health")

    with refused_port() as base_url:   # nothing listening: connections are refused
        ...
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

LOOPBACK = "127.0.0.1"
START_TIMEOUT_S = 10.0


def _bound_socket() -> socket.socket:
    """A socket bound to a free loopback port, held so no one else can take the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK, 0))
    return sock


@contextmanager
def running_server(app: Any, **settings: Any) -> Iterator[str]:
    """Serve ``app`` until the block exits; yields its base URL (``http://127.0.0.1:PORT``).

    ``settings`` are extra ``uvicorn.Config`` options (e.g. ``http_limits.uvicorn_settings()``,
    as the real servers run).

    The port is bound before uvicorn starts, so there is no race for a free port, and
    the block is entered only once the server accepts connections. On exit in-flight
    requests get one second to finish, so a test that left a slow request behind does
    not hang.
    """
    sock = _bound_socket()
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1, **settings
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="test-http-server", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("test HTTP server did not start")
            time.sleep(0.005)
        host, port = sock.getsockname()
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=START_TIMEOUT_S)
        sock.close()


@contextmanager
def refused_port() -> Iterator[str]:
    """A base URL on which every connection is refused: the port is bound (so nothing
    else can listen there during the test) but never listens."""
    sock = _bound_socket()
    try:
        host, port = sock.getsockname()
        yield f"http://{host}:{port}"
    finally:
        sock.close()
