"""The request-read deadline of ``http_limits`` bounds how long a client may take to send a
request, never how long the server may take to answer it. Real uvicorn on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx

from tdm_dagster.http.limits import MAX_HEADER_BYTES, uvicorn_settings
from tests.support.http_servers import running_server

DEADLINE_S = 0.5


async def slow_app(scope, receive, send) -> None:
    """Answers each request after ``?sleep=`` seconds, echoing the body's length."""
    assert scope["type"] == "http"
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    await asyncio.sleep(float(scope["query_string"].decode().partition("=")[2] or 0))
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": str(len(body)).encode()})


def test_slow_answers_and_reused_connections_outlive_the_read_deadline() -> None:
    with running_server(slow_app, **uvicorn_settings(request_timeout_s=DEADLINE_S)) as url:
        with httpx.Client(timeout=10) as client:
            started = time.monotonic()
            assert client.post(url + "/?sleep=1.2", content=b"x" * 5000).text == "5000"  # answer > deadline
            for _ in range(4):  # one keep-alive connection, each request within its own deadline
                time.sleep(DEADLINE_S * 0.6)
                assert client.post(url + "/", content=b"abc").text == "3"
            assert time.monotonic() - started > 3 * DEADLINE_S
            assert client.get(url + "/").status_code == 200


def test_a_header_section_growing_past_the_limit_is_refused() -> None:
    """h11 buffers at most ``MAX_HEADER_BYTES`` of an unfinished header section (a whole
    request that arrives in one read is parsed as it is)."""
    with running_server(slow_app, **uvicorn_settings(request_timeout_s=5)) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Filler: " + b"a" * (MAX_HEADER_BYTES + 100))
            reply = b""
            while chunk := sock.recv(4096):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 400"), reply[:200]
        assert httpx.get(url + "/", timeout=10).status_code == 200
