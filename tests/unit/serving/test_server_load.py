"""The server under hostile load: many pending completions, slow and idle connections,
and the bounded generation queue behind them."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import httpx

from tdm_dagster.http.limits import uvicorn_settings
from tdm_dagster.serving.generation_queue import GenerationQueue, ServerBusy
from tdm_dagster.serving.server import create_app
from tests.support.http_servers import LOOPBACK, running_server
from tests.unit.serving.helpers import chat


def test_health_answers_within_a_second_while_60_requests_generate(serving):
    """Generation runs off the event loop and waits for the model outside the thread
    pool, so /health stays prompt however many completions are queued. The clients are
    coroutines in one thread, so they add no threads to compete with the server's."""

    async def load_and_poll(base_url: str) -> tuple[list[int], list[float], int]:
        async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=100)) as client:

            async def complete(n: int) -> int:
                body = {"messages": [{"role": "user", "content": f"count to {n}"}], "max_tokens": 48,
                        "temperature": 0.9}
                return (await client.post(base_url + "/v1/chat/completions", json=body)).status_code

            completions = [asyncio.create_task(complete(n)) for n in range(60)]
            latencies: list[float] = []
            polls_while_busy = 0
            while not all(task.done() for task in completions):
                started = time.monotonic()
                response = await client.get(base_url + "/health")
                latencies.append(time.monotonic() - started)
                assert response.status_code == 200
                polls_while_busy += sum(not task.done() for task in completions) >= 30
                await asyncio.sleep(0.05)
            return [task.result() for task in completions], latencies, polls_while_busy

    with running_server(create_app(serving)) as base_url:
        statuses, latencies, polls_while_busy = asyncio.run(load_and_poll(base_url))

    assert statuses == [200] * 60
    assert polls_while_busy >= 5, f"only {polls_while_busy} health polls while 30+ requests were pending"
    assert max(latencies) < 1.0, f"slowest /health took {max(latencies):.2f} s while generating"


def _slow_client(port: int, chunks: list[bytes], limit_s: float) -> tuple[bytes, float]:
    """Connect, send ``chunks`` slowly (stopping if the server hangs up), then read until
    the server closes the connection: what it sent, and seconds from connect to close."""
    with socket.create_connection((LOOPBACK, port)) as sock:
        started = time.monotonic()
        sock.settimeout(limit_s)
        try:
            for chunk in chunks:
                sock.sendall(chunk)
                time.sleep(0.15)
        except (BrokenPipeError, ConnectionResetError):
            pass
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
        return received, time.monotonic() - started


def test_idle_and_half_sent_connections_are_closed(serving):
    request_timeout = 1.0
    settings = {**uvicorn_settings(request_timeout_s=request_timeout), "timeout_keep_alive": 1}
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
    clients = {
        "connects and sends nothing": [],
        "half the request line": [b"POST /v1/chat/comp"],
        "half the headers": [head],
        "headers, then half the body": [head + b"content-length: 100\r\n\r\n" + b'{"messages": ['],
        "headers one byte at a time (slowloris)": [bytes([b]) for b in head[:12]],
        "one complete request, then idle": [b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"],
    }
    with running_server(create_app(serving), **settings) as base_url:
        port = int(base_url.rsplit(":", 1)[1])
        for label, chunks in clients.items():
            received, closed_after = _slow_client(port, chunks, limit_s=10)
            assert closed_after < request_timeout + 1.5, (label, closed_after)
            if label.startswith("one complete"):
                assert received.startswith(b"HTTP/1.1 200"), (label, received[:200])
            else:
                assert received.startswith(b"HTTP/1.1 408"), (label, received[:200])
        assert chat(base_url).status_code == 200  # the server is none the worse


def test_generation_queue_runs_one_at_a_time_and_refuses_beyond_its_bound():
    running: list[int] = []
    overlaps: list[int] = []
    release = threading.Event()

    def work(n: int) -> int:
        running.append(n)
        overlaps.append(len(running))
        release.wait(10)
        running.remove(n)
        return n

    async def scenario() -> tuple[list[int], str]:
        queue = GenerationQueue(concurrency=1, max_pending=3)
        tasks = [asyncio.create_task(queue.run(work, n)) for n in range(3)]
        await asyncio.sleep(0.2)
        try:
            await queue.run(work, 99)
            refusal = ""
        except ServerBusy as exc:
            refusal = str(exc)
        release.set()
        return list(await asyncio.gather(*tasks)), refusal

    for _ in range(10):
        release.clear()
        overlaps.clear()
        results, refusal = asyncio.run(scenario())
        assert results == [0, 1, 2]
        assert "server busy: 3 completion requests are already waiting" in refusal
        assert max(overlaps) == 1
