"""Client for the user's inference box: an OpenAI-compatible HTTP server (default port 8765).

It is used to generate training examples from prompts (``generate_batch``) and to check
that the box is up and how busy its GPUs are (``health``). Every request goes through
``send_with_retries``, so a box that restarts mid-batch costs retries, not the batch.

The API key, if any, is sent as ``Authorization: Bearer``. It never appears in an
exception message, a log line or ``repr``: messages quote only method, URL path, status
and a masked excerpt of the body.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import httpx

from tdm_dagster.http.gpu_stats import GpuStats, parse_gpu_stats
from tdm_dagster.http.retry import (
    RequestFailedError,
    RetryPolicy,
    body_excerpt,
    safe_url,
    send_with_retries,
)

DEFAULT_PORT = 8765
CHAT_PATH = "/v1/chat/completions"
HEALTH_PATH = "/health"
HEALTHY_STATUS_WORDS = frozenset({"ok", "healthy", "ready", "up", "running"})

Message = Mapping[str, Any]
Example = dict[str, Any]


class InferenceError(Exception):
    """A chat request that failed for good: refused, erroring, or answering nonsense."""


@dataclass(frozen=True)
class HealthReport:
    """What one ``GET /health`` found. ``ok`` is False, with the reason in ``detail``,
    for a server that is down, erroring, or reports a status like ``"loading"``.

    ``gpus`` is ``None`` when the server does not report GPU stats. ``body`` is the
    decoded JSON body (``None`` if there was none) for callers that want more.
    """

    ok: bool
    status_code: int | None
    latency_ms: float
    detail: str
    gpus: list[GpuStats] | None = None
    body: Any = field(default=None, repr=False)


def check_health(client: httpx.Client, url: str) -> HealthReport:
    """``GET url`` once, never raising: a health probe asks "is it up now?", so it does
    not retry (that would turn a quick "no" into seconds of backoff)."""
    started = time.perf_counter()
    try:
        response = send_with_retries(client, "GET", url, policy=RetryPolicy(max_attempts=1))
    except RequestFailedError as exc:
        return HealthReport(False, exc.status_code, _elapsed_ms(started), str(exc))
    latency_ms = _elapsed_ms(started)
    try:
        body = response.json()
    except json.JSONDecodeError:
        body = None
    if not response.is_success:
        detail = f"HTTP {response.status_code}: {body_excerpt(response)}"
        return HealthReport(False, response.status_code, latency_ms, detail, body=body)
    gpus = parse_gpu_stats(body)
    status = body.get("status") if isinstance(body, dict) else None
    if isinstance(status, str) and status.lower() not in HEALTHY_STATUS_WORDS:
        detail = f"server reports status {status!r}"
        return HealthReport(False, response.status_code, latency_ms, detail, gpus, body)
    return HealthReport(True, response.status_code, latency_ms, "ok", gpus, body)


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


class GenerationRequest(NamedTuple):
    """One prompt to complete; ``metadata`` is carried into the resulting example."""

    messages: Sequence[Message]
    metadata: Mapping[str, Any]


@dataclass
class BatchResult:
    """Examples for the requests that succeeded, in input order, and why the rest failed."""

    examples: list[Example]
    failures: list[tuple[int, str]]

    @property
    def ok(self) -> bool:
        return not self.failures


class InferenceClient:
    """Talks to one OpenAI-compatible server. Thread-safe; close it (or use ``with``).

    ``base_url`` is the server root, e.g. ``http://gpu-box:8765``; a trailing ``/v1`` is
    accepted and dropped, since OpenAI clients are often configured that way.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        model: str = "default",
        timeout_s: float = 60.0,
        retry: RetryPolicy = RetryPolicy(),
        max_concurrency: int = 4,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self.model = model
        self.retry = retry
        self.max_concurrency = max_concurrency
        self._has_api_key = bool(api_key)
        self._client = httpx.Client(
            base_url=self.base_url,
            timeout=timeout_s,
            headers={"Authorization": f"Bearer {api_key}"} if api_key else None,
            limits=httpx.Limits(max_connections=max_concurrency),
        )

    def __repr__(self) -> str:
        key = "'***'" if self._has_api_key else "None"
        return (
            f"InferenceClient(base_url={safe_url(self.base_url)!r}, model={self.model!r}, "
            f"api_key={key}, max_concurrency={self.max_concurrency})"
        )

    def __enter__(self) -> InferenceClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def health(self) -> HealthReport:
        """``GET /health`` once; never raises (see ``HealthReport``; the GPU shape is :mod:`tdm_dagster.http.gpu_stats`)."""
        return check_health(self._client, HEALTH_PATH)

    def chat(self, messages: Sequence[Message], **payload: Any) -> str:
        """The assistant's reply to ``messages``. ``payload`` adds to (or overrides) the
        request body: ``temperature``, ``max_tokens``, ``model``... Raises ``InferenceError``."""
        return self.complete(messages, **payload).content

    def complete(self, messages: Sequence[Message], **payload: Any) -> Reply:
        """As :meth:`chat`, with why the server stopped (``finish_reason``)."""
        body = {"model": self.model, "messages": list(messages), **payload}
        try:
            response = send_with_retries(
                self._client, "POST", CHAT_PATH, policy=self.retry, json=body
            )
        except RequestFailedError as exc:
            raise InferenceError(str(exc)) from exc
        return _reply(response)

    def generate_batch(
        self,
        requests: Sequence[GenerationRequest],
        payload: Mapping[str, Any] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> BatchResult:
        """Complete every request, at most ``max_concurrency`` at a time.

        Each success becomes ``{"messages": prompt + [assistant reply], "metadata":
        {**metadata, "source": "inference", "model": model}}``, plus ``finish_reason``
        where the server gave one (the gate rejects a reply stopped at its token limit,
        ``length``); each failure becomes
        ``(index, reason)``. Plain ``(messages, metadata)`` tuples work as requests.
        ``progress(done, total)`` is called on the caller's thread.
        """
        extra = dict(payload or {})
        model = extra.get("model", self.model)
        replies: dict[int, Reply] = {}
        failures: list[tuple[int, str]] = []
        with ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="inference") as pool:
            pending = {
                pool.submit(self.complete, messages, **extra): index
                for index, (messages, _) in enumerate(requests)
            }
            for done, future in enumerate(as_completed(pending), start=1):
                index = pending[future]
                try:
                    replies[index] = future.result()
                except InferenceError as exc:
                    failures.append((index, str(exc)))
                if progress is not None:
                    progress(done, len(requests))
        examples = [
            {
                "messages": [dict(message) for message in messages]
                + [{"role": "assistant", "content": replies[index].content}],
                "metadata": {**metadata, "source": "inference", "model": model, **replies[index].stop()},
            }
            for index, (messages, metadata) in enumerate(requests)
            if index in replies
        ]
        return BatchResult(examples=examples, failures=sorted(failures))


@dataclass(frozen=True)
class Reply:
    content: str
    finish_reason: str | None = None

    def stop(self) -> dict[str, str]:
        """``{"finish_reason": ...}`` for a record's metadata, or nothing when the server gave none."""
        return {"finish_reason": self.finish_reason} if self.finish_reason else {}


def _reply(response: httpx.Response) -> Reply:
    """``choices[0].message.content`` and ``finish_reason`` of a chat response, or
    ``InferenceError`` saying why not (a reason that is not a short string is ignored)."""
    where = f"POST {response.request.url.path} -> HTTP {response.status_code}"
    if not response.is_success:
        raise InferenceError(f"{where}: {body_excerpt(response)}")
    try:
        data = response.json()
    except json.JSONDecodeError as exc:
        raise InferenceError(f"{where}: malformed JSON ({exc}): {body_excerpt(response)}") from None
    try:
        choice = data["choices"][0]
        content = choice["message"]["content"]
    except (KeyError, IndexError, TypeError):
        content = None
    if not isinstance(content, str):
        raise InferenceError(
            f"{where}: response has no string choices[0].message.content: {body_excerpt(response)}"
        )
    reason = choice.get("finish_reason") if isinstance(choice, dict) else None
    return Reply(content, reason if isinstance(reason, str) and 0 < len(reason) <= 32 else None)
