"""Limits shared by tdm's HTTP servers (``tdm serve`` and ``tdm skills serve``).

A client, slow or hostile, must not be able to hold a server's memory or connections:

- ``BodyLimit``: request bodies over a byte limit get a 413 before they are read whole
  (Content-Length is checked up front; a chunked body is counted as the app reads it,
  never buffered or copied here).
- ``uvicorn_settings``: the uvicorn options every server runs with. Uvicorn closes a
  connection idle *between* requests after ``timeout_keep_alive``, and h11 refuses (400)
  an unfinished header section buffered past ``h11_max_incomplete_event_size`` bytes, but
  uvicorn has no timeout for reading a request: a client that connects and sends
  nothing, half the headers or half the body holds its connection forever.
  ``request_timeout_protocol`` adds that timeout (uvicorn's h11 protocol is used, as
  httptools' has the same gap and is an optional dependency).
- ``validation_problems``: request-validation errors without the offending input, so an
  error reply never echoes a huge (or secret) value back.

Nothing here imports uvicorn or h11 at module import.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

KEEP_ALIVE_TIMEOUT_S = 5
"""An idle keep-alive connection is closed after this many seconds."""
REQUEST_READ_TIMEOUT_S = 30.0
"""A request (headers and body) must arrive whole within this many seconds of the
connection opening or the previous response ending; else 408 and the connection closes."""
MAX_HEADER_BYTES = 16 * 1024
"""A header section larger than this is refused (400) by h11."""
MAX_CONNECTIONS = 512
"""Connections plus requests in progress beyond this get 503 from uvicorn."""
MAX_SHOWN_PROBLEMS = 10
MAX_MESSAGE_CHARS = 300

Reject = Callable[[int, str], Any]
"""``reject(status, message)`` -> an ASGI response in the app's own error format."""


def closing(send: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
    """``send`` with ``Connection: close`` added to the response: for a refusal sent
    before the request's body was read, so the server closes the connection instead of
    reading (and discarding) the rest of that body."""

    async def send_closing(message: Any) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
        await send(message)

    return send_closing


class BodyTooLarge(Exception):
    """Raised into the app by ``BodyLimit`` when a body passes its limit while being read."""


class BodyLimit:
    """Pure ASGI middleware: refuse request bodies over ``limit`` bytes with 413.

    Checks Content-Length up front (h11 then holds the client to it). The body itself
    is never buffered here: the app reads it as it arrives (a multipart upload goes
    to Starlette's spooled temporary files), and each message is counted on the way.
    A body that passes the limit (chunked, without a Content-Length) raises
    ``BodyTooLarge`` into the app's read; whatever the app makes of that, the client
    gets the 413.
    """

    def __init__(self, app: Any, limit: int, reject: Reject) -> None:
        self.app = app
        self.limit = limit
        self.reject = reject

    async def _refuse(self, scope: Any, receive: Any, send: Any, status: int, message: str) -> None:
        await self.reject(status, message)(scope, receive, closing(send))

    async def __call__(self, scope: Any, receive: Callable[[], Awaitable[Any]], send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in {"POST", "PUT", "PATCH"}:
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            try:
                size = int(length)
            except ValueError:
                await self._refuse(scope, receive, send, 400, "invalid Content-Length header")
                return
            if size > self.limit:
                await self._refuse(scope, receive, send, 413,
                                   f"request body is {size} bytes; the limit is {self.limit} bytes")
                return
        received = 0
        over = False
        answered = False

        async def counted() -> Any:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    over = True
                    raise BodyTooLarge(f"request body exceeds the limit of {self.limit} bytes")
            return message

        async def answering(message: Any) -> None:
            nonlocal answered
            if over and not answered:
                return  # the app's answer to a body it could not finish reading: the 413 replaces it
            answered = answered or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, answering)
        except Exception:
            if not over:
                raise
        if over and not answered:
            await self._refuse(scope, receive, send, 413, f"request body exceeds the limit of {self.limit} bytes")


def request_timeout_protocol(timeout_s: float) -> type:
    """Uvicorn's h11 protocol with a deadline for receiving each whole request.

    The deadline starts when the connection opens and again when a response ends; it is
    cleared once the request (headers and body) is in. When it passes, a client that
    has not started a request or has sent part of one gets ``408 Request Timeout``
    (unless a response already started) and the connection is closed; a request whose
    body was cut off sees ``http.disconnect``.
    """
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class RequestTimeoutH11Protocol(H11Protocol):
        request_timeout_s = timeout_s
        _request_deadline: Any = None

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_request_deadline()

        def connection_lost(self, exc: Exception | None) -> None:
            self._clear_request_deadline()
            super().connection_lost(exc)

        def on_response_complete(self) -> None:
            self._arm_request_deadline()  # before super(): a pipelined request may complete in it
            super().on_response_complete()

        def handle_events(self) -> None:
            super().handle_events()
            if self.conn.their_state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED):
                self._clear_request_deadline()

        def _arm_request_deadline(self) -> None:
            self._clear_request_deadline()
            self._request_deadline = self.loop.call_later(self.request_timeout_s, self._request_timed_out)

        def _clear_request_deadline(self) -> None:
            if self._request_deadline is not None:
                self._request_deadline.cancel()
                self._request_deadline = None

        def _request_timed_out(self) -> None:
            self._request_deadline = None
            if self.transport.is_closing():
                return
            cycle = self.cycle
            if cycle is None or not cycle.response_started or cycle.response_complete:
                message = f"request not received within {self.request_timeout_s:g} s"
                self.transport.write(
                    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                    + f"content-length: {len(message)}\r\nconnection: close\r\n\r\n{message}".encode("ascii")
                )
            self.transport.close()

    return RequestTimeoutH11Protocol


def uvicorn_settings(request_timeout_s: float = REQUEST_READ_TIMEOUT_S) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` / ``uvicorn.Config`` applying these limits."""
    return {
        "http": request_timeout_protocol(request_timeout_s),
        "timeout_keep_alive": KEEP_ALIVE_TIMEOUT_S,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "limit_concurrency": MAX_CONNECTIONS,
    }


def shorten(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` cut to ``limit`` characters, for messages that may quote client input."""
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def validation_problems(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Request-validation errors as ``{"loc", "msg", "type"}``, without ``input`` or
    ``ctx`` (they can hold the whole offending value), at most ``MAX_SHOWN_PROBLEMS``."""
    return [
        {
            "loc": [part if isinstance(part, int) else shorten(str(part)) for part in err.get("loc", ())],
            "msg": shorten(str(err.get("msg", ""))),
            "type": str(err.get("type", "")),
        }
        for err in errors[:MAX_SHOWN_PROBLEMS]
    ]
