"""Which key a request carries and whether its scopes allow the route: 401 without a key
or with one that is not (or no longer) known, 403 outside its scopes.

Keys arrive as ``Authorization: Bearer <key>``. The key itself is never logged, stored
or echoed; the request's state keeps only its name and the scope the route needs (for
the audit log).
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import HTTPException, Request

from tdm_dagster.api.audit import KEY_NAME, KEY_SCOPE
from tdm_dagster.api.keys import SCOPES, ApiKey, KeyStore

CHALLENGE = {"WWW-Authenticate": "Bearer"}


def require(scope: str) -> Callable[[Request], ApiKey]:
    """A FastAPI dependency admitting keys that hold ``scope`` (or ``admin``)."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    def allowed(request: Request) -> ApiKey:
        setattr(request.state, KEY_SCOPE, scope)
        header = request.headers.get("authorization", "")
        kind, _, token = header.partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            raise HTTPException(401, "an API key is required: send Authorization: Bearer <key> (`tdm api keys create` makes one)", CHALLENGE)
        store: KeyStore = request.app.state.keys
        key = store.authenticate(token.strip())
        if key is None:
            raise HTTPException(401, "unknown or revoked API key", CHALLENGE)
        setattr(request.state, KEY_NAME, key.name)
        if not key.allows(scope):
            raise HTTPException(403, f"key {key.name!r} has scopes {', '.join(key.scopes)}; this needs {scope!r}")
        return key

    return allowed
