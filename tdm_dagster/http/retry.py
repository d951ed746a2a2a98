"""Send one HTTP request with retries and exponential backoff.

The inference box and the skill servers are ordinary machines on a home network: they
restart, drop connections, and answer 502/503 while a model loads. Those failures are
transient, so they are retried; a 4xx other than 429 means the request itself is wrong
and repeating it cannot help, so it is returned at once for the caller to report.

Error messages name the method, the URL (without any ``user:password@``) and the number
of attempts, never request headers: the API key travels in a header. Response bodies
quoted in messages have the request's own credentials masked, in case a server echoes
them back.
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

logger = logging.getLogger(__name__)

RETRYABLE_EXCEPTIONS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,  # connect, read, write and pool timeouts
    httpx.NetworkError,  # refused, reset, unreachable
    httpx.RemoteProtocolError,  # server closed the connection mid-response
)
SENSITIVE_HEADERS = ("authorization", "proxy-authorization", "x-api-key", "api-key")
BODY_EXCERPT_CHARS = 300


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to try and how long to wait between tries.

    The wait before try ``n + 1`` is ``backoff_base_s * 2 ** (n - 1)`` capped at
    ``backoff_max_s``; with ``jitter`` it is drawn uniformly from the upper half of that,
    so clients that failed together do not all come back at the same instant.
    """

    max_attempts: int = 4
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.backoff_base_s < 0 or self.backoff_max_s < 0:
            raise ValueError("backoff_base_s and backoff_max_s must not be negative")

    def backoff_s(self, failed_attempts: int) -> float:
        """Seconds to wait after ``failed_attempts`` tries (1 for the first failure)."""
        delay = min(self.backoff_max_s, self.backoff_base_s * 2 ** (failed_attempts - 1))
        return random.uniform(delay / 2, delay) if self.jitter else delay


class RequestFailedError(Exception):
    """A request that still failed when the retry policy gave up.

    ``status_code`` and ``body_excerpt`` are set when the last failure was an HTTP
    response (5xx or 429); they are ``None`` for connection errors and timeouts.
    """

    def __init__(
        self,
        method: str,
        url: str,
        attempts: int,
        reason: str,
        status_code: int | None = None,
        body_excerpt: str | None = None,
    ) -> None:
        self.method = method
        self.url = url
        self.attempts = attempts
        self.reason = reason
        self.status_code = status_code
        self.body_excerpt = body_excerpt
        plural = "" if attempts == 1 else "s"
        super().__init__(f"{method} {url} failed after {attempts} attempt{plural}: {reason}")


def safe_url(url: httpx.URL | str) -> str:
    """``url`` without any ``user:password@`` part and with its query values masked, fit for messages and logs."""
    parsed = httpx.URL(str(url))
    return mask_credentials(str(parsed.copy_with(username=None, password=None)) if parsed.userinfo else str(parsed))


def mask_credentials(text: str, *endpoints: str | None) -> str:
    """``text`` with credentials replaced by ``***``: in every URL it holds, the
    ``user:password@`` part and each query-string and fragment value (``?token=...``);
    and anywhere in it, each such value of ``endpoints`` (URLs a client was given, whose
    errors may quote them in pieces or re-encoded). What ``tdm config``, remote errors
    and request errors show goes through here."""
    text = _URL_IN_TEXT.sub(lambda found: _masked_url(found.group(0)), text)
    secrets = {secret for endpoint in endpoints if endpoint for secret in _url_secrets(endpoint)}
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"`<>]+")
_URL_PARTS = re.compile(r"(?P<scheme>[^:]+://)(?P<authority>[^/?#]*)(?P<path>[^?#]*)(?:\?(?P<query>[^#]*))?(?:#(?P<fragment>.*))?", re.S)
_MIN_SECRET_CHARS = 3
"""Shorter values (``?v=1``) are masked inside URLs but not searched for in free text."""


def _masked_url(url: str) -> str:
    parts = _URL_PARTS.fullmatch(url)
    if parts is None:
        return url
    authority = parts["authority"]
    if "@" in authority:
        authority = "***@" + authority.rsplit("@", 1)[1]
    masked = parts["scheme"] + authority + parts["path"]
    if parts["query"] is not None:
        masked += "?" + _masked_values(parts["query"])
    if parts["fragment"] is not None:
        masked += "#" + _masked_values(parts["fragment"])
    return masked


def _masked_values(part: str) -> str:
    """``a=1&b`` as ``a=***&***``."""
    if not part:
        return part
    return "&".join(f"{item.split('=', 1)[0]}=***" if "=" in item else "***" for item in part.split("&"))


def _url_secrets(url: str) -> set[str]:
    """The credential-like values ``url`` carries, as written and percent-decoded."""
    parts = urlsplit(url)
    values = [parts.username, parts.password, *(value for _, value in parse_qsl(parts.query + "&" + parts.fragment, keep_blank_values=True))]
    raw = [item.split("=", 1)[-1] for item in f"{parts.query}&{parts.fragment}".split("&") if item]
    userinfo = parts.netloc.rpartition("@")[0]
    raw += userinfo.split(":", 1) if userinfo else []
    return {value for value in (*values, *raw) if value and len(value) >= _MIN_SECRET_CHARS}


def body_excerpt(response: httpx.Response, limit: int = BODY_EXCERPT_CHARS) -> str:
    """The start of ``response``'s body, with the request's own credentials masked."""
    text = response.text
    excerpt = text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"
    return _mask_credentials(excerpt, response.request.headers)


def _mask_credentials(text: str, headers: httpx.Headers) -> str:
    for name in SENSITIVE_HEADERS:
        value = headers.get(name)
        if not value:
            continue
        scheme, _, token = value.partition(" ")
        for secret in (value, token if token else scheme):
            if secret:
                text = text.replace(secret, "***")
    return text


def is_retryable_status(status_code: int) -> bool:
    return status_code == 429 or status_code >= 500


def retry_after_s(response: httpx.Response) -> float | None:
    """The server's ``Retry-After`` in seconds (number or HTTP date), or ``None``."""
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def send_with_retries(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
    **request_kwargs: Any,
) -> httpx.Response:
    """Send ``client.request(method, url, **request_kwargs)``, retrying transient failures.

    Returns the first response that is not a 5xx or 429: a 2xx, or a 4xx the caller
    reports as it sees fit (those are never retried). Raises ``RequestFailedError`` when
    the attempts run out on connection errors, timeouts, 5xx or 429, or at once when a
    ``Retry-After`` asks for a longer wait than ``policy.backoff_max_s`` (the server is
    saying it will not be ready soon; waiting longer would stall the whole batch).
    """
    target = safe_url(client.build_request(method, url).url)
    attempt = 0
    while True:
        attempt += 1
        wait_s: float | None = None
        try:
            response = client.request(method, url, **request_kwargs)
        except RETRYABLE_EXCEPTIONS as exc:
            failure = RequestFailedError(method, target, attempt, f"{type(exc).__name__}: {exc}")
        else:
            if not is_retryable_status(response.status_code):
                return response
            excerpt = body_excerpt(response)
            failure = RequestFailedError(
                method,
                target,
                attempt,
                f"HTTP {response.status_code}: {excerpt}",
                status_code=response.status_code,
                body_excerpt=excerpt,
            )
            wait_s = retry_after_s(response)
            if wait_s is not None and wait_s > policy.backoff_max_s:
                raise RequestFailedError(
                    method,
                    target,
                    attempt,
                    f"HTTP {response.status_code} asking to retry after {wait_s:g}s, longer "
                    f"than backoff_max_s={policy.backoff_max_s:g}s",
                    status_code=response.status_code,
                    body_excerpt=excerpt,
                )
        if attempt == policy.max_attempts:
            raise failure
        if wait_s is None:
            wait_s = policy.backoff_s(attempt)
        logger.warning(
            "%s %s attempt %d/%d failed (%s); retrying in %.2fs",
            method, target, attempt, policy.max_attempts, failure.reason, wait_s,
        )
        sleep(wait_s)
