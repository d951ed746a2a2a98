"""Checking that a running ``tdm serve`` took a deployment: reload it (the server
refuses weights that are not all finite), then ask ``/health`` and two test completions,
greedy and sampled, which checkpoint answers."""

from __future__ import annotations

import os
from typing import Any

from tdm_dagster.serving import ADMIN_TOKEN_ENV

RELOAD_TIMEOUT_S = 600.0
REQUEST_TIMEOUT_S = 120.0
TEST_COMPLETIONS = (("greedy", 0.0), ("sampled", 1.0))
"""The test completions a deploy asks for. Both: a model whose logits are not finite
still answers greedily (argmax of inf), and only sampling fails on them."""


def reload_server(server_url: str) -> dict[str, Any]:
    """POST /admin/reload with the admin token from ``$TDM_SERVING_ADMIN_TOKEN`` (without
    it the server refuses, and the refusal's message is in the result)."""
    import httpx

    token = os.environ.get(ADMIN_TOKEN_ENV)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(server_url.rstrip("/") + "/admin/reload", headers=headers, timeout=RELOAD_TIMEOUT_S)
    try:
        body = response.json()
    except ValueError:
        body = {"raw": response.text[:500]}
    body["status_code"] = response.status_code
    return body


def verify_server(server_url: str, name: str) -> str | None:
    """Reload the server and check it serves ``name``; a reason on failure, else None."""
    import httpx

    base = server_url.rstrip("/")
    try:
        reload = reload_server(base)
        if reload["status_code"] != 200 or reload.get("checkpoint") != name:
            error = reload.get("error") if isinstance(reload.get("error"), dict) else {}
            return f"server did not load {name}: {error.get('error') or error.get('message') or reload}"
        health = httpx.get(base + "/health", timeout=REQUEST_TIMEOUT_S)
        if health.status_code != 200 or health.json().get("model") != name:
            return f"/health does not report {name}: {health.status_code} {health.text[:300]}"
        for kind, temperature in TEST_COMPLETIONS:
            completion = httpx.post(
                base + "/v1/chat/completions",
                json={"model": name, "messages": [{"role": "user", "content": "Say hello."}],
                      "max_tokens": 4, "temperature": temperature},
                timeout=REQUEST_TIMEOUT_S,
            )
            if completion.status_code != 200:
                return f"{kind} test completion failed: {completion.status_code} {completion.text[:300]}"
            body = completion.json()
            if body.get("model") != name or not body.get("choices"):
                return f"{kind} test completion came from {body.get('model')!r}, not {name}"
    except httpx.HTTPError as exc:
        return f"server at {base} unreachable during verification: {type(exc).__name__}: {exc}"
    return None


def reachable(url: str) -> str | None:
    """``url`` if a server answers ``/health`` there (then a deploy reloads and verifies
    it), else None."""
    import httpx

    try:
        httpx.get(f"{url}/health", timeout=2.0)
    except httpx.HTTPError:
        return None
    return url
