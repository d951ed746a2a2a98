"""send_with_retries against a real server on loopback: what is retried, how long it waits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest

from tdm_dagster.http.retry import (
    RequestFailedError,
    RetryPolicy,
    retry_after_s,
    safe_url,
    send_with_retries,
)
from tests.support.fake_inference_server import FakeInference
from tests.support.http_servers import refused_port

CHAT = "/v1/chat/completions"
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
NO_JITTER = RetryPolicy(max_attempts=3, backoff_base_s=0.01, backoff_max_s=0.04, jitter=False)


@pytest.fixture
def client(server: tuple[FakeInference, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server[1], timeout=5) as http:
        yield http


class SleepRecorder:
    """Records the waits instead of sleeping, so the tests check them and stay fast."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def test_backoff_doubles_then_caps() -> None:
    policy = RetryPolicy(backoff_base_s=0.5, backoff_max_s=3.0, jitter=False)
    assert [policy.backoff_s(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_jitter_draws_from_upper_half_of_the_backoff() -> None:
    policy = RetryPolicy(backoff_base_s=1.0, backoff_max_s=8.0, jitter=True)
    draws = [policy.backoff_s(3) for _ in range(200)]
    assert all(2.0 <= d <= 4.0 for d in draws)
    assert len(set(draws)) > 1


def test_policy_refuses_zero_attempts() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


def test_5xx_is_retried_with_backoff_until_success(fake: FakeInference, client: httpx.Client) -> None:
    fake.fail_first = 2
    sleep = SleepRecorder()
    response = send_with_retries(client, "POST", CHAT, policy=NO_JITTER, sleep=sleep, json=BODY)
    assert response.status_code == 200
    assert len(fake.chat_requests) == 3
    assert sleep.waits == [0.01, 0.02]


def test_4xx_is_returned_without_retry(fake: FakeInference, client: httpx.Client) -> None:
    fake.fail_prompts_containing = "hi"
    sleep = SleepRecorder()
    response = send_with_retries(client, "POST", CHAT, policy=NO_JITTER, sleep=sleep, json=BODY)
    assert response.status_code == 400
    assert len(fake.chat_requests) == 1
    assert sleep.waits == []


def test_small_retry_after_is_honoured(fake: FakeInference, client: httpx.Client) -> None:
    fake.fail_first, fake.fail_status, fake.retry_after = 1, 429, "0.03"
    sleep = SleepRecorder()
    response = send_with_retries(client, "POST", CHAT, policy=NO_JITTER, sleep=sleep, json=BODY)
    assert response.status_code == 200
    assert sleep.waits == [0.03]


def test_long_retry_after_gives_up_at_once(fake: FakeInference, client: httpx.Client) -> None:
    fake.fail_first, fake.fail_status, fake.retry_after = 5, 503, "120"
    with pytest.raises(RequestFailedError) as caught:
        send_with_retries(client, "POST", CHAT, policy=NO_JITTER, sleep=SleepRecorder(), json=BODY)
    assert caught.value.attempts == 1
    assert caught.value.status_code == 503
    assert "retry after 120s" in str(caught.value)
    assert len(fake.chat_requests) == 1


def test_exhausted_5xx_error_names_method_url_attempts_status_and_body(
    fake: FakeInference, client: httpx.Client
) -> None:
    fake.fail_first = 10
    with pytest.raises(RequestFailedError) as caught:
        send_with_retries(client, "POST", CHAT, policy=NO_JITTER, sleep=SleepRecorder(), json=BODY)
    message = str(caught.value)
    assert message.startswith(f"POST {client.base_url.join(CHAT)} failed after 3 attempts: HTTP 500")
    assert "injected failure 3" in message
    assert len(fake.chat_requests) == 3


def test_connection_refused_is_retried_and_headers_stay_out_of_the_error() -> None:
    sleep = SleepRecorder()
    with refused_port() as base_url, httpx.Client(
        base_url=base_url, headers={"Authorization": "Bearer top-secret"}
    ) as http:
        with pytest.raises(RequestFailedError) as caught:
            send_with_retries(http, "GET", "/health", policy=NO_JITTER, sleep=sleep)
    message = str(caught.value)
    assert f"GET {base_url}/health failed after 3 attempts: ConnectError" in message
    assert "top-secret" not in message
    assert len(sleep.waits) == 2


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    def with_header(value: str) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": value})

    assert retry_after_s(with_header("7")) == 7.0
    in_a_minute = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=60), usegmt=True)
    assert 55 <= retry_after_s(with_header(in_a_minute)) <= 60
    assert retry_after_s(with_header("soon")) is None
    assert retry_after_s(httpx.Response(503)) is None


def test_safe_url_drops_credentials() -> None:
    assert safe_url("http://user:pw@box:8765/v1/x") == "http://box:8765/v1/x"
    assert safe_url("http://box:8765/health") == "http://box:8765/health"
