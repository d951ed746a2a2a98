"""Which key a request carries and whether its scopes allow the route: 401 without a key
or with one that is not (or no longer) known, 403 outside its scopes, 503 when the key
store cannot be read.

``KeyCheck`` decides this from the request line and headers alone, before the app (or
anything else) reads a byte of the body: a client without a valid key cannot make the
server spool an upload to disk, hold it in memory or parse it. Each route declares the
scope it needs with ``Depends(require(scope))``; the middleware is given the routes
(as their routers hold them, paths complete), matches the request against them as the
router will and reads the scope from that declaration. A route the middleware was not
given fails closed: ``require`` finds no admitted key and answers 401.

Keys arrive as ``Authorization: Bearer <key>``. The key itself is never logged, stored
or echoed; the request's state keeps only the key's name and the scope the route needs
(for the audit log and the route).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import HTTPException, Request
from starlette.routing import BaseRoute, Match

from tdm_dagster.api.audit import KEY_NAME, KEY_SCOPE
from tdm_dagster.api.keys import SCOPES, ApiKey, KeyStore, KeyStoreUnreadable
from tdm_dagster.http.limits import closing

CHALLENGE = {"WWW-Authenticate": "Bearer"}
AUTHENTICATED_KEY = "tdm_key"
"""Where ``KeyCheck`` leaves the admitted ``ApiKey`` in the request's state."""
Reject = Callable[[int, str, dict[str, str] | None], Any]


def require(scope: str) -> Callable[[Request], ApiKey]:
    """A FastAPI dependency declaring that a route needs ``scope`` (or ``admin``);
    returns the key ``KeyCheck`` admitted."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    def allowed(request: Request) -> ApiKey:
        key = getattr(request.state, AUTHENTICATED_KEY, None)
        if key is None:  # only when the app runs without KeyCheck: refuse rather than serve
            raise HTTPException(401, "an API key is required", CHALLENGE)
        return key

    allowed.tdm_scope = scope  # type: ignore[attr-defined]
    return allowed


def route_scope(route: BaseRoute) -> str | None:
    """The scope ``route`` declares through ``require``, or None (open: health, docs)."""
    for dependency in getattr(route, "dependencies", ()):
        scope = getattr(dependency.dependency, "tdm_scope", None)
        if scope is not None:
            return scope
    return None


class KeyCheck:
    """Pure ASGI middleware: authenticate and authorize on the headers, then let the
    request through, or answer 401/403/503 at once without reading the body."""

    def __init__(self, app: Any, routes: Sequence[BaseRoute], keys: KeyStore, reject: Reject) -> None:
        self.app = app
        self.guarded = [(route, needed) for route in routes if (needed := route_scope(route))]
        self.keys = keys
        self.reject = reject

    def needed_scope(self, scope: dict[str, Any]) -> str | None:
        for route, needed in self.guarded:
            if route.matches(scope)[0] is Match.FULL:
                return needed
        return None  # an open route, or none: the router answers 404/405 without reading the body

    def refusal(self, scope: dict[str, Any], needed: str) -> tuple[int, str, dict[str, str] | None] | None:
        """Why the request may not have ``needed`` (status, message, headers), or None."""
        state = scope.setdefault("state", {})
        state[KEY_SCOPE] = needed
        header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
        kind, _, token = header.partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            return 401, "an API key is required: send Authorization: Bearer <key> (`tdm api keys create` makes one)", CHALLENGE
        try:
            key = self.keys.authenticate(token.strip())
        except KeyStoreUnreadable as error:
            return 503, str(error), None
        if key is None:
            return 401, "unknown or revoked API key", CHALLENGE
        state[KEY_NAME] = key.name
        if not key.allows(needed):
            return 403, f"key {key.name!r} has scopes {', '.join(key.scopes)}; this needs {needed!r}", None
        state[AUTHENTICATED_KEY] = key
        return None

    async def __call__(self, scope: Any, receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]) -> None:
        needed = self.needed_scope(scope) if scope["type"] == "http" else None
        refused = self.refusal(scope, needed) if needed else None
        if refused is None:
            await self.app(scope, receive, send)
            return
        await self.reject(*refused)(scope, receive, closing(send))  # the unread body is not waited for
