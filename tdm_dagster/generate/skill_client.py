"""Client for the skill API (``tdm_dagster.generate.skill_api``), one base URL per skill.

The seed design serves each skill from its own instance, so the client is configured
with a map such as ``{"syllo": "http://127.0.0.1:8080", "binary": "http://127.0.0.1:8090"}``.
A response is checked against the request before it is trusted: examples that do not
match what was asked for must not reach the training queue.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import httpx

from tdm_dagster.http.limits import shorten
from tdm_dagster.http.retry import (
    RequestFailedError,
    RetryPolicy,
    body_excerpt,
    send_with_retries,
)
from tdm_dagster.generate.inference_client import HEALTH_PATH, HealthReport, check_health

GENERATE_PATH = "/v1/generate"


class SkillApiError(Exception):
    """The skill API refused a request, could not be reached, or answered nonsense."""


class SkillApiClient:
    def __init__(
        self,
        base_urls: Mapping[str, str],
        *,
        timeout_s: float = 30.0,
        retry: RetryPolicy = RetryPolicy(),
    ) -> None:
        self.base_urls = {skill: url.rstrip("/") for skill, url in base_urls.items()}
        self.retry = retry
        self._client = httpx.Client(timeout=timeout_s)

    def __repr__(self) -> str:
        return f"SkillApiClient(base_urls={self.base_urls!r})"

    def __enter__(self) -> SkillApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def health(self, skill: str) -> HealthReport:
        """Probe the instance serving ``skill``; never raises for a server problem.

        ``ok`` is also False when the instance is up but does not serve ``skill``
        (two skills' ports swapped in the config, say).
        """
        report = check_health(self._client, self._url(skill, HEALTH_PATH))
        served = report.body.get("skills") if isinstance(report.body, dict) else None
        if report.ok and isinstance(served, list) and skill not in served:
            detail = f"instance at {self.base_urls[skill]} serves {served}, not {skill!r}"
            return dataclasses.replace(report, ok=False, detail=detail)
        return report

    def generate(self, skill: str, level: int, count: int, seed: int) -> list[dict[str, Any]]:
        """``count`` examples of ``skill`` at ``level`` from ``seed``; ``SkillApiError`` if not."""
        url = self._url(skill, GENERATE_PATH)
        request = {"skill": skill, "level": level, "count": count, "seed": seed}
        try:
            response = send_with_retries(self._client, "POST", url, policy=self.retry, json=request)
        except RequestFailedError as exc:
            raise SkillApiError(str(exc)) from exc
        where = f"POST {url} -> HTTP {response.status_code}"
        if not response.is_success:
            raise SkillApiError(f"{where}: {_server_detail(response)}")
        try:
            data = response.json()
        except json.JSONDecodeError as exc:
            raise SkillApiError(f"{where}: malformed JSON ({exc}): {body_excerpt(response)}") from exc
        problem = _mismatch(data, request)
        if problem:
            raise SkillApiError(f"{where}: {problem}")
        return data["examples"]

    def _url(self, skill: str, path: str) -> str:
        try:
            return self.base_urls[skill] + path
        except KeyError:
            raise SkillApiError(
                f"no skill API URL configured for {skill!r}; configured: {sorted(self.base_urls)}"
            ) from None


def _server_detail(response: httpx.Response) -> str:
    """The server's ``detail`` (FastAPI's error field), else the start of the body."""
    try:
        detail = response.json()["detail"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return body_excerpt(response)
    if isinstance(detail, list):  # request validation errors: [{"loc": [...], "msg": ...}]
        return shorten("; ".join(_validation_message(item) for item in detail))
    return shorten(str(detail))


def _validation_message(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    field_path = ".".join(str(part) for part in item.get("loc", []) if part != "body")
    return f"{field_path}: {item.get('msg', item)}" if field_path else str(item.get("msg", item))


def _mismatch(data: Any, request: dict[str, Any]) -> str | None:
    """Why ``data`` is not a valid answer to ``request``, or ``None`` if it is."""
    if not isinstance(data, dict):
        return f"expected a JSON object, got {type(data).__name__}"
    for key in ("skill", "level", "seed"):
        if data.get(key) != request[key]:
            return f"response {key}={data.get(key)!r} does not match the request's {request[key]!r}"
    examples = data.get("examples")
    if not isinstance(examples, list) or not all(isinstance(item, dict) for item in examples):
        return "response has no list of example objects under 'examples'"
    if len(examples) != request["count"]:
        return f"asked for {request['count']} examples, got {len(examples)}"
    return None
