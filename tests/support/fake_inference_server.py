"""A small OpenAI-compatible inference server for tests, with faults switchable at runtime.

It stands in for the user's inference box: ``GET /health`` (with GPU stats) and
``POST /v1/chat/completions``. Tests change the public attributes of ``FakeInference``
while the server runs, and read back what it received::

    with fake_inference_server(fail_first=2) as (fake, base_url):
        client = InferenceClient(base_url, ...)
        ...
        assert len(fake.chat_requests) == 3

For "server down", use ``tests.support.http_servers.refused_port``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from tests.support.http_servers import running_server
from tests.support.skill_solver import last_user, solve

ResponseMode = Literal["ok", "malformed_json", "missing_choices"]
IDLE_TIMEOUT_S = 5.0


def default_health_body() -> dict[str, Any]:
    return {
        "status": "ok",
        "gpus": [
            {
                "name": "NVIDIA GeForce RTX 3090",
                "memory_used_mb": 10240,
                "memory_total_mb": 24576,
                "utilization_pct": 37,
            }
        ],
    }


def echo_reply(messages: list[dict[str, Any]]) -> str:
    """Default reply: the right answer to a built-in SYLLO or binary prompt (a batch
    generated through the server passes answer verification, as a good model's would);
    for any other prompt, one that names the last user message, so tests can match
    replies to prompts."""
    prompt = last_user(messages)
    solved = solve(prompt)
    return f"reply to: {prompt}" if solved is None else solved


@dataclass
class RecordedRequest:
    method: str
    path: str
    authorization: str | None
    body: Any
    """Decoded JSON body, or ``None`` when there was none or it was not JSON."""

    @property
    def has_authorization(self) -> bool:
        return self.authorization is not None


@dataclass
class FakeInference:
    """Behaviour of the fake server. Every attribute may be changed while it runs.

    Chat faults, checked in this order:

    - ``fail_first``: the first N chat requests get ``fail_status`` (500 by default), with
      a ``Retry-After: retry_after`` header when that is set.
    - ``fail_prompts_containing``: chat requests whose last message contains this text
      get 400 (not retryable); with ``echo_authorization`` the 400 body quotes the
      request's Authorization header, as a careless server might.
    - ``delay_s``: every chat response waits this long first; a function of the
      request's messages gives each its own delay (to make replies finish out of order).
    - ``response_mode``: ``"malformed_json"`` answers 200 with a body that is not JSON;
      ``"missing_choices"`` answers 200 with JSON that has no ``choices``.

    As a real server does, a reply longer than the request's ``max_tokens`` (counted in
    words here) is cut there and answered with ``finish_reason: "length"``.
    """

    fail_first: int = 0
    fail_status: int = 500
    retry_after: str | None = None
    fail_prompts_containing: str | None = None
    echo_authorization: bool = False
    delay_s: float | Callable[[list[dict[str, Any]]], float] = 0.0
    response_mode: ResponseMode = "ok"
    reply: Callable[[list[dict[str, Any]]], str] = echo_reply
    health_status: int = 200
    health_body: Any = field(default_factory=default_health_body)
    requests: list[RecordedRequest] = field(default_factory=list)
    peak_concurrency: int = 0
    """Most chat requests ever being handled at once."""
    _in_flight: int = field(default=0, init=False, repr=False)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == "/v1/chat/completions"]

    def reset(self) -> None:
        """Back to a healthy server with an empty record (for a server shared by tests).

        First waits for requests an earlier test left running (a client that timed out
        does not stop the handler), so they cannot count towards this test's records.
        """
        deadline = time.monotonic() + IDLE_TIMEOUT_S
        while self._in_flight:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self._in_flight} requests still running after {IDLE_TIMEOUT_S}s")
            time.sleep(0.01)
        fresh = FakeInference()
        for settable in fields(self):
            if settable.init:
                setattr(self, settable.name, getattr(fresh, settable.name))

    def create_app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/health")
        async def health(request: Request) -> Response:
            await self._record(request)
            return JSONResponse(self.health_body, status_code=self.health_status)

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Response:
            recorded = await self._record(request)
            number = len(self.chat_requests)  # counted on arrival, not after the delay
            self._in_flight += 1
            self.peak_concurrency = max(self.peak_concurrency, self._in_flight)
            try:
                await asyncio.sleep(self._delay_for(recorded))
                return self._chat_response(recorded, number)
            finally:
                self._in_flight -= 1

        return app

    async def _record(self, request: Request) -> RecordedRequest:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = None
        recorded = RecordedRequest(
            request.method, request.url.path, request.headers.get("authorization"), body
        )
        self.requests.append(recorded)
        return recorded

    def _delay_for(self, recorded: RecordedRequest) -> float:
        if callable(self.delay_s):
            return self.delay_s(_messages(recorded))
        return self.delay_s

    def _chat_response(self, recorded: RecordedRequest, number: int) -> Response:
        if number <= self.fail_first:
            headers = {"Retry-After": self.retry_after} if self.retry_after else None
            return JSONResponse(
                {"error": {"message": f"injected failure {number}"}},
                status_code=self.fail_status,
                headers=headers,
            )
        messages = _messages(recorded)
        last_content = str(messages[-1].get("content", "")) if messages else ""
        if self.fail_prompts_containing and self.fail_prompts_containing in last_content:
            message = "prompt refused"
            if self.echo_authorization:
                message += f" (you sent Authorization: {recorded.authorization})"
            return JSONResponse({"error": {"message": message}}, status_code=400)
        if self.response_mode == "malformed_json":
            return Response('{"choices": [', media_type="application/json")
        if self.response_mode == "missing_choices":
            return JSONResponse({"id": "chatcmpl-fake", "object": "chat.completion"})
        content, finish_reason = _within_max_tokens(self.reply(messages), _json_object(recorded).get("max_tokens"))
        return JSONResponse(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "model": _json_object(recorded).get("model"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": finish_reason,
                    }
                ],
            }
        )


def _within_max_tokens(reply: str, max_tokens: Any) -> tuple[str, str]:
    words = reply.split(" ")
    if isinstance(max_tokens, int) and 0 < max_tokens < len(words):
        return " ".join(words[:max_tokens]), "length"
    return reply, "stop"


def _json_object(recorded: RecordedRequest) -> dict[str, Any]:
    return recorded.body if isinstance(recorded.body, dict) else {}


def _messages(recorded: RecordedRequest) -> list[dict[str, Any]]:
    messages = _json_object(recorded).get("messages")
    return messages if isinstance(messages, list) else []


@contextmanager
def fake_inference_server(**behaviour: Any) -> Iterator[tuple[FakeInference, str]]:
    """Run a ``FakeInference(**behaviour)``; yields it and its base URL."""
    fake = FakeInference(**behaviour)
    with running_server(fake.create_app()) as base_url:
        yield fake, base_url
