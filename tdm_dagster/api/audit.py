"""The audit log: one JSON line per write or delete request the API answered.

Each line says who (the key's name, never the key), with which scope, what (method and
path, without the query string), the status and when. Lines are appended under a
``flock`` with ``O_APPEND`` to ``home.api_audit_log`` (mode 0600) and never rewritten,
so concurrent requests and processes interleave whole lines. Refused requests (401,
403, 413, 503) are recorded too, under the key's name whenever a valid key was sent,
and so is an upload the client cut off before it was answered, with status 499 (as
nginx logs "client closed request").
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

AUDITED_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
KEY_NAME = "tdm_key_name"
"""Where ``auth`` leaves the caller's key name in the request's state."""
KEY_SCOPE = "tdm_key_scope"
"""... and the scope the route needed."""
CLIENT_CLOSED = 499


def append_entry(path: Path, entry: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_entries(path: Path) -> list[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]
    except FileNotFoundError:
        return []


class AuditLog:
    """Pure ASGI middleware recording every audited request once its response started."""

    def __init__(self, app: Any, path: Path) -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Any, receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] != "http" or scope["method"] not in AUDITED_METHODS:
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})
        status = {"code": 500}
        answered = False

        async def receiving() -> Any:
            message = await receive()
            if message["type"] == "http.disconnect" and not answered:
                status["code"] = CLIENT_CLOSED
            return message

        async def sending(message: Any) -> None:
            nonlocal answered
            if message["type"] == "http.response.start" and status["code"] != CLIENT_CLOSED:
                status["code"] = message["status"]
                answered = True
            await send(message)

        try:
            await self.app(scope, receiving, sending)
        finally:
            state = scope["state"]
            await asyncio.to_thread(append_entry, self.path, {
                "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "unix_time": round(time.time(), 3),
                "key": state.get(KEY_NAME),
                "scope": state.get(KEY_SCOPE),
                "method": scope["method"],
                "path": scope["path"],
                "status": status["code"],
            })  # fmt: skip
