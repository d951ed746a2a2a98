"""The skill API and SkillApiClient, end to end over loopback HTTP."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from tdm_dagster.generate.generators import get_generator, skill_names
from tdm_dagster.http.retry import RetryPolicy
from tdm_dagster.http.limits import uvicorn_settings
from tdm_dagster.generate.skill_api import MAX_BODY_BYTES, MAX_COUNT, create_app
from tdm_dagster.generate.skill_client import SkillApiClient, SkillApiError
from tests.support.http_servers import LOOPBACK, refused_port, running_server

FAST_RETRY = RetryPolicy(max_attempts=2, backoff_base_s=0.01, backoff_max_s=0.02, jitter=False)
SKILLS = list(skill_names())


@pytest.fixture(scope="module")
def all_skills_url() -> Iterator[str]:
    with running_server(create_app()) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def first_skill_only_url() -> Iterator[str]:
    with running_server(create_app([SKILLS[0]])) as base_url:
        yield base_url


@pytest.fixture
def client(all_skills_url: str) -> Iterator[SkillApiClient]:
    urls = {skill: all_skills_url for skill in SKILLS}
    with SkillApiClient(urls, timeout_s=10, retry=FAST_RETRY) as skill_client:
        yield skill_client


def post_generate(base_url: str, body: Any) -> httpx.Response:
    return httpx.post(f"{base_url}/v1/generate", json=body, timeout=10)


def test_there_are_at_least_two_skills_to_serve() -> None:
    assert len(SKILLS) >= 2, "the seed design serves SYLLO and Binary"


@pytest.mark.parametrize("skill", SKILLS)
def test_round_trip_equals_local_generation(client: SkillApiClient, skill: str) -> None:
    generator = get_generator(skill)
    for level in (1, generator.max_level):
        remote = client.generate(skill, level, count=7, seed=20240601)
        local = generator.generate(level, 7, 20240601)
        assert remote == local


def test_health_and_skill_listing(all_skills_url: str, client: SkillApiClient) -> None:
    assert httpx.get(f"{all_skills_url}/health").json() == {"status": "ok", "skills": SKILLS}
    listed = httpx.get(f"{all_skills_url}/v1/skills").json()
    assert listed == [
        {"name": s, "spec": get_generator(s).spec, "max_level": get_generator(s).max_level}
        for s in SKILLS
    ]
    report = client.health(SKILLS[0])
    assert report.ok and report.status_code == 200 and report.gpus is None


def test_one_skill_instance_refuses_other_skills_with_404(first_skill_only_url: str) -> None:
    served, other = SKILLS[0], SKILLS[1]
    response = post_generate(first_skill_only_url, {"skill": other, "level": 1, "count": 1, "seed": 1})
    assert response.status_code == 404
    assert "not served by this instance" in response.json()["detail"]
    assert httpx.get(f"{first_skill_only_url}/health").json()["skills"] == [served]


def test_health_flags_an_instance_serving_a_different_skill(first_skill_only_url: str) -> None:
    other = SKILLS[1]
    with SkillApiClient({other: first_skill_only_url}, retry=FAST_RETRY) as swapped:
        report = swapped.health(other)
        assert not report.ok and f"not {other!r}" in report.detail
        with pytest.raises(SkillApiError, match=r"HTTP 404: .*not served by this instance"):
            swapped.generate(other, 1, 1, 1)


def test_create_app_refuses_an_unknown_skill() -> None:
    with pytest.raises(ValueError, match="cannot serve skills .*unknown skill 'no-such-skill'"):
        create_app(["no-such-skill"])


def test_create_app_accepts_skill_names_in_any_case() -> None:
    with running_server(create_app([f" {SKILLS[0].upper()} "])) as url:
        assert httpx.get(f"{url}/health").json()["skills"] == [SKILLS[0]]


@pytest.mark.parametrize(
    ("change", "status", "detail_part"),
    [
        ({"skill": "no-such-skill"}, 404, "does not exist"),
        ({"level": 0}, 422, "level must be an integer from 1 to"),
        ({"level": 99}, 422, "level must be an integer from 1 to"),
        ({"count": 0}, 422, "greater than or equal to 1"),
        ({"count": MAX_COUNT + 1}, 422, "less than or equal to 10000"),
        ({"count": -1}, 422, "greater than or equal to 1"),
        ({"count": 10**18}, 422, "less than or equal to 10000"),
        ({"count": "3"}, 422, "valid integer"),
        ({"level": True}, 422, "valid integer"),
        ({"seed": 1.5}, 422, "valid integer"),
        ({"surprise": 1}, 422, "Extra inputs are not permitted"),
    ],
)
def test_bad_requests_get_4xx_with_detail(
    all_skills_url: str, change: dict[str, Any], status: int, detail_part: str
) -> None:
    body = {"skill": SKILLS[0], "level": 1, "count": 2, "seed": 5, **change}
    response = post_generate(all_skills_url, body)
    assert response.status_code == status
    assert detail_part in json.dumps(response.json()["detail"])


def test_client_error_carries_url_status_and_server_detail(
    all_skills_url: str, client: SkillApiClient
) -> None:
    with pytest.raises(SkillApiError) as caught:
        client.generate(SKILLS[0], level=99, count=1, seed=1)
    message = str(caught.value)
    assert f"POST {all_skills_url}/v1/generate -> HTTP 422: level must be an integer" in message


def test_client_flattens_validation_errors(client: SkillApiClient) -> None:
    with pytest.raises(SkillApiError, match=r"HTTP 422: count: Input should be greater than or equal to 1"):
        client.generate(SKILLS[0], level=1, count=0, seed=1)


def test_client_error_for_an_unconfigured_skill(client: SkillApiClient) -> None:
    with pytest.raises(SkillApiError, match="no skill API URL configured for 'nope'"):
        client.generate("nope", 1, 1, 1)


def test_down_server_fails_health_and_generate_after_retries() -> None:
    with refused_port() as url, SkillApiClient({"syllo": url}, retry=FAST_RETRY) as down:
        assert not down.health("syllo").ok
        with pytest.raises(SkillApiError, match=f"POST {url}/v1/generate failed after 2 attempts"):
            down.generate("syllo", 1, 1, 1)


def lying_app(response_body: Any) -> FastAPI:
    """A server that answers every generate request with ``response_body``."""
    app = FastAPI()

    @app.post("/v1/generate")
    def generate() -> Any:
        if isinstance(response_body, str):
            return PlainTextResponse(response_body)
        return response_body

    return app


GOOD_REPLY = {"skill": "syllo", "level": 1, "seed": 3, "examples": [{"messages": []}]}


@pytest.mark.parametrize(
    ("response_body", "problem"),
    [
        ("<html>not json</html>", "malformed JSON"),
        ([1, 2], "expected a JSON object, got list"),
        ({**GOOD_REPLY, "seed": 4}, "response seed=4 does not match the request's 3"),
        ({**GOOD_REPLY, "examples": "none"}, "no list of example objects"),
        ({**GOOD_REPLY, "examples": [{}, {}]}, "asked for 1 examples, got 2"),
    ],
)
def test_client_rejects_malformed_responses(response_body: Any, problem: str) -> None:
    with running_server(lying_app(response_body)) as url, SkillApiClient({"syllo": url}) as client:
        with pytest.raises(SkillApiError, match=problem):
            client.generate("syllo", 1, 1, 3)


def test_client_accepts_the_good_reply_used_above() -> None:
    """Guards the malformed-response cases: each differs from this accepted reply in one way."""
    with running_server(lying_app(GOOD_REPLY)) as url, SkillApiClient({"syllo": url}) as client:
        assert client.generate("syllo", 1, 1, 3) == [{"messages": []}]


# --- hostile clients: body size, count, echoed input -----------------------------------


def test_count_is_bounded_at_ten_thousand(all_skills_url: str, client: SkillApiClient) -> None:
    assert MAX_COUNT == 10_000  # as the docs say (docs/concepts/loop.md, Sources)
    assert len(client.generate(SKILLS[-1], 1, count=MAX_COUNT, seed=9)) == MAX_COUNT
    over = post_generate(all_skills_url, {"skill": SKILLS[0], "level": 1, "count": MAX_COUNT + 1, "seed": 1})
    assert over.status_code == 422
    assert over.json()["detail"][0]["msg"] == "Input should be less than or equal to 10000"


def test_oversized_bodies_get_413_before_they_are_read(all_skills_url: str) -> None:
    url = f"{all_skills_url}/v1/generate"
    big = {"skill": "x" * MAX_BODY_BYTES, "level": 1, "count": 1, "seed": 1}
    response = httpx.post(url, json=big, timeout=10)
    assert response.status_code == 413 and "limit" in response.json()["detail"]

    def chunked() -> Iterator[bytes]:  # no Content-Length: the server counts the bytes itself
        yield b'{"skill": "'
        for _ in range(MAX_BODY_BYTES // 4096 + 2):
            yield b"y" * 4096
        yield b'", "level": 1, "count": 1, "seed": 1}'

    streamed = httpx.post(url, content=chunked(), headers={"content-type": "application/json"}, timeout=10)
    assert streamed.status_code == 413

    # a client that announces 1 GiB and sends none of it is refused at once
    port = int(all_skills_url.rsplit(":", 1)[1])
    with socket.create_connection((LOOPBACK, port), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /v1/generate HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                     b"content-length: 1073741824\r\n\r\n")
        reply = sock.recv(4096)
        assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
        assert time.monotonic() - started < 2
    assert post_generate(all_skills_url, {"skill": SKILLS[0], "level": 1, "count": 1, "seed": 1}).status_code == 200


HUGE = 900_000  # under the body limit, so the request is parsed and refused on its merits


@pytest.mark.parametrize(
    ("label", "body", "status"),
    [
        ("huge skill name", {"skill": "s" * HUGE, "level": 1, "count": 1, "seed": 1}, 404),
        ("huge string level", {"skill": "syllo", "level": "9" * HUGE, "count": 1, "seed": 1}, 422),
        ("huge list seed", {"skill": "syllo", "level": 1, "count": 1, "seed": [7] * (HUGE // 3)}, 422),
        ("huge extra key", {"skill": "syllo", "level": 1, "count": 1, "seed": 1, "k" * HUGE: 1}, 422),
        ("4000-digit level", {"skill": "syllo", "level": 10**4000, "count": 1, "seed": 1}, 422),
        ("4000-digit count", {"skill": "syllo", "level": 1, "count": 10**4000, "seed": 1}, 422),
        ("huge nested body", {"skill": {"a": ["b" * 1000] * (HUGE // 1100)}, "level": 1, "count": 1, "seed": 1}, 422),
    ],
)
def test_errors_never_echo_huge_inputs(all_skills_url: str, label: str, body: Any, status: int) -> None:
    response = post_generate(all_skills_url, body)
    assert response.status_code == status, (label, response.text[:300])
    assert len(response.content) < 4000, (label, len(response.content))
    assert '"input":' not in response.text  # FastAPI's default would echo the value here


def test_half_sent_request_is_closed_with_408() -> None:
    with running_server(create_app(), **uvicorn_settings(request_timeout_s=0.5)) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection((LOOPBACK, port), timeout=10) as sock:
            started = time.monotonic()
            sock.sendall(b"POST /v1/generate HTTP/1.1\r\nHost: x\r\ncontent-length: 60\r\n\r\n{\"skill\"")
            reply = b""
            while chunk := sock.recv(4096):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
        assert time.monotonic() - started < 2.5
