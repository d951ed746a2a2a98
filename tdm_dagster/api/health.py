"""``/healthz`` (the process answers) and ``/readyz`` (it can do its work now, else 503
naming each thing that is not ready). Neither needs a key: they say nothing about data,
nor where it lives (``$TDM_HOME``, never its path)."""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from tdm_dagster.api.keys import KeyStoreUnreadable

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, Any]:
    return {"status": "ok"}


def not_ready(state: Any) -> list[str]:
    """What keeps the service from serving every route now, one line each."""
    problems = []
    root = state.home.root
    if not root.is_dir() or not os.access(root, os.W_OK | os.X_OK):
        problems.append("home: $TDM_HOME is not a writable folder")
    gate = state.warm_gate.problem()
    if gate:
        problems.append(gate)
    try:
        keys = state.keys.list()
    except KeyStoreUnreadable as error:
        problems.append(f"keys: {error}")
    else:
        if not keys:
            problems.append("keys: none yet (`tdm api keys create --scope read --name NAME`); every data route answers 401")
    return problems


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    problems = not_ready(request.app.state)
    warm = request.app.state.warm_gate
    body = {"ready": not problems, "not_ready": problems, "gate_warm_seconds": warm.seconds}
    return JSONResponse(status_code=200 if not problems else 503, content=body)
