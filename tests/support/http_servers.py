"""Real HTTP servers for tests: any ASGI app under uvicorn, on 127.0.0.1, in a thread.

Tests talk to these over real sockets, so the clients' retry, timeout and connection
handling is exercised as it runs against the inference box, not against a mock.

    with running_server(app) as base_url:
        httpx.get(base_url + "/health")

    with refused_port() as base_url:   # nothing listening: connections are refused
        ...

    with stalled_server() as base_url:   # accepts, reads the request, never answers
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


@contextmanager
def stalled_server(sends: bytes = b"") -> Iterator[str]:
    """A base URL whose server accepts every connection, reads the request, sends ``sends``
    (nothing, or e.g. a status line and headers) and then never another byte, holding
    the connection open until the block exits: a hung service, as a client meets it."""
    listener = _bound_socket()
    listener.listen(16)
    listener.settimeout(0.1)
    stop = threading.Event()
    connections: list[socket.socket] = []

    def stall(connection: socket.socket) -> None:
        connection.settimeout(0.1)
        received = b""
        while not stop.is_set() and not _request_complete(received):
            try:
                chunk = connection.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            received += chunk
        if not stop.is_set():
            connection.sendall(sends)
        while not stop.is_set():  # take whatever else comes, answer nothing
            try:
                if not connection.recv(65536):
                    return
            except TimeoutError:
                continue
            except OSError:
                return

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _address = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            connections.append(connection)
            threading.Thread(target=stall, args=(connection,), name="test-stalled-connection", daemon=True).start()

    acceptor = threading.Thread(target=accept, name="test-stalled-server", daemon=True)
    acceptor.start()
    try:
        host, port = listener.getsockname()
        yield f"http://{host}:{port}"
    finally:
        stop.set()
        acceptor.join(timeout=START_TIMEOUT_S)
        for connection in connections:
            connection.close()
        listener.close()


def _request_complete(received: bytes) -> bool:
    """Whether ``received`` holds a whole HTTP/1.1 request (headers and a Content-Length body)."""
    head, found, body = received.partition(b"\r\n\r\n")
    if not found:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return True
