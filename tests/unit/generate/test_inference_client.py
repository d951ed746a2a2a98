"""InferenceClient against the fake OpenAI-compatible server on loopback."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tdm_dagster.http.retry import RetryPolicy
from tdm_dagster.generate.inference_client import (
    GenerationRequest,
    GpuStats,
    InferenceClient,
    InferenceError,
    parse_gpu_stats,
)
from tests.support.fake_inference_server import FakeInference
from tests.support.http_servers import refused_port

FAST_RETRY = RetryPolicy(max_attempts=3, backoff_base_s=0.01, backoff_max_s=0.02, jitter=False)
SECRET = "sk-test-0123456789abcdef"
HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture
def base_url(server: tuple[FakeInference, str]) -> str:
    return server[1]


@pytest.fixture
def client(base_url: str) -> Iterator[InferenceClient]:
    with InferenceClient(base_url, model="tiny", timeout_s=5, retry=FAST_RETRY) as inference:
        yield inference


def prompt(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]


# --- health -------------------------------------------------------------------------


def test_health_reports_gpu_stats(fake: FakeInference, client: InferenceClient) -> None:
    report = client.health()
    assert report.ok and report.status_code == 200 and report.detail == "ok"
    assert report.latency_ms > 0
    assert report.gpus == [GpuStats("NVIDIA GeForce RTX 3090", 10240.0, 24576.0, 37.0)]


def test_health_without_gpu_stats_reports_none(fake: FakeInference, client: InferenceClient) -> None:
    fake.health_body = {"status": "ok"}
    report = client.health()
    assert report.ok and report.gpus is None


def test_health_of_a_down_server_is_not_ok() -> None:
    with refused_port() as url, InferenceClient(url, retry=FAST_RETRY) as down:
        report = down.health()
    assert not report.ok
    assert report.status_code is None
    assert "ConnectError" in report.detail and url in report.detail


def test_health_of_an_erroring_server_is_not_ok(fake: FakeInference, client: InferenceClient) -> None:
    fake.health_status, fake.health_body = 503, {"error": "model not loaded"}
    report = client.health()
    assert not report.ok and report.status_code == 503
    assert "model not loaded" in report.detail
    assert len(fake.requests) == 1, "a health probe is not retried"


def test_health_of_a_loading_server_is_not_ok(fake: FakeInference, client: InferenceClient) -> None:
    fake.health_body = {"status": "loading model"}
    report = client.health()
    assert not report.ok and report.status_code == 200
    assert "loading model" in report.detail


def test_gpu_stats_accept_single_gpu_with_bytes_and_unstated_units() -> None:
    gib = 2**30
    body = {"gpu": {"gpu_name": "RTX 3090", "memory_used": 6 * gib, "memory_total": "24576",
                    "gpu_util": 90}}
    assert parse_gpu_stats(body) == [GpuStats("RTX 3090", 6144.0, 24576.0, 90.0)]
    explicit_bytes = {"gpus": [{"memory_used_bytes": gib, "memory_total_bytes": 2 * gib}]}
    assert parse_gpu_stats(explicit_bytes) == [GpuStats(None, 1024.0, 2048.0, None)]
    assert parse_gpu_stats({"gpus": [{"utilization": "n/a"}, "junk"]}) == [GpuStats()]
    assert parse_gpu_stats({"status": "ok"}) is None
    assert parse_gpu_stats(["not", "an", "object"]) is None


# --- chat -----------------------------------------------------------------------------


def test_chat_returns_the_reply_and_sends_model_and_payload(
    fake: FakeInference, client: InferenceClient
) -> None:
    assert client.chat(HELLO, temperature=0.2, max_tokens=8) == "reply to: hello"
    (request,) = fake.chat_requests
    assert request.body == {"model": "tiny", "messages": HELLO, "temperature": 0.2, "max_tokens": 8}
    assert not request.has_authorization


def test_chat_to_a_down_server_raises_after_the_retries() -> None:
    with refused_port() as url, InferenceClient(url, retry=FAST_RETRY) as down:
        with pytest.raises(InferenceError, match="failed after 3 attempts: ConnectError"):
            down.chat(HELLO)


def test_chat_survives_two_500s(fake: FakeInference, client: InferenceClient) -> None:
    fake.fail_first = 2
    assert client.chat(HELLO) == "reply to: hello"
    assert len(fake.chat_requests) == 3


def test_chat_gives_up_on_persistent_500(fake: FakeInference, client: InferenceClient) -> None:
    fake.fail_first = 100
    with pytest.raises(InferenceError) as caught:
        client.chat(HELLO)
    message = str(caught.value)
    assert "/v1/chat/completions failed after 3 attempts: HTTP 500" in message
    assert "injected failure" in message
    assert len(fake.chat_requests) == 3


def test_chat_does_not_retry_a_400(fake: FakeInference, client: InferenceClient) -> None:
    fake.fail_prompts_containing = "hello"
    with pytest.raises(InferenceError, match=r"POST /v1/chat/completions -> HTTP 400: .*prompt refused"):
        client.chat(HELLO)
    assert len(fake.chat_requests) == 1


def test_chat_retries_a_reply_slower_than_the_timeout_then_fails(
    fake: FakeInference, base_url: str
) -> None:
    fake.delay_s = 0.5
    with InferenceClient(base_url, timeout_s=0.1, retry=FAST_RETRY) as impatient:
        with pytest.raises(InferenceError, match="failed after 3 attempts: ReadTimeout"):
            impatient.chat(HELLO)
    assert len(fake.chat_requests) == 3


def test_chat_waits_for_a_slow_reply_within_the_timeout(fake: FakeInference, base_url: str) -> None:
    fake.delay_s = 0.2
    with InferenceClient(base_url, timeout_s=2, retry=FAST_RETRY) as patient:
        assert patient.chat(HELLO) == "reply to: hello"
    assert len(fake.chat_requests) == 1


def test_chat_names_malformed_json(fake: FakeInference, client: InferenceClient) -> None:
    fake.response_mode = "malformed_json"
    with pytest.raises(InferenceError, match=r"HTTP 200: malformed JSON .*\{\"choices\": \["):
        client.chat(HELLO)


def test_chat_names_missing_choices(fake: FakeInference, client: InferenceClient) -> None:
    fake.response_mode = "missing_choices"
    with pytest.raises(InferenceError, match=r"no string choices\[0\]\.message\.content"):
        client.chat(HELLO)


def test_api_key_is_sent_as_bearer_and_never_shown(
    fake: FakeInference, base_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    fake.fail_first = 1  # one retry, so the retry warning is logged too
    fake.fail_prompts_containing, fake.echo_authorization = "leak", True
    caplog.set_level(logging.DEBUG)
    with InferenceClient(base_url, api_key=SECRET, retry=FAST_RETRY) as keyed:
        assert keyed.chat(HELLO) == "reply to: hello"
        with pytest.raises(InferenceError) as caught:
            keyed.chat([{"role": "user", "content": "leak it"}])
        assert "***" in repr(keyed) and SECRET not in repr(keyed)
    assert {r.authorization for r in fake.chat_requests} == {f"Bearer {SECRET}"}
    assert "you sent Authorization: ***" in str(caught.value), "the echoed key is masked"
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value)
    assert "retrying" in caplog.text and SECRET not in caplog.text


def test_trailing_v1_in_base_url_is_accepted(fake: FakeInference, base_url: str) -> None:
    with InferenceClient(base_url + "/v1/", retry=FAST_RETRY) as openai_style:
        assert openai_style.chat(HELLO) == "reply to: hello"
        assert openai_style.health().ok


def test_closed_client_refuses_to_send(base_url: str) -> None:
    with InferenceClient(base_url, retry=FAST_RETRY) as short_lived:
        pass
    with pytest.raises(RuntimeError, match="closed"):
        short_lived.chat(HELLO)


# --- generate_batch -----------------------------------------------------------------------


def test_generate_batch_keeps_input_order_and_builds_examples(
    fake: FakeInference, client: InferenceClient
) -> None:
    count = 6
    # Earlier prompts answer later, so completion order is the reverse of input order.
    fake.delay_s = lambda messages: 0.05 * (count - int(messages[-1]["content"].split()[-1]))
    requests = [GenerationRequest(prompt(f"question {i}"), {"id": i}) for i in range(count)]
    calls: list[tuple[int, int]] = []

    result = client.generate_batch(
        requests, payload={"temperature": 0.0}, progress=lambda done, total: calls.append((done, total))
    )

    assert result.ok and result.failures == []
    assert result.examples == [
        {
            "messages": prompt(f"question {i}")
            + [{"role": "assistant", "content": f"reply to: question {i}"}],
            "metadata": {"id": i, "source": "inference", "model": "tiny", "finish_reason": "stop"},
        }
        for i in range(count)
    ]
    assert calls == [(done, count) for done in range(1, count + 1)]
    assert all(r.body["temperature"] == 0.0 for r in fake.chat_requests)


def test_generate_batch_never_exceeds_max_concurrency(fake: FakeInference, base_url: str) -> None:
    fake.delay_s = 0.1
    requests = [GenerationRequest(prompt(f"q{i}"), {}) for i in range(12)]
    with InferenceClient(base_url, retry=FAST_RETRY, max_concurrency=3) as bounded:
        result = bounded.generate_batch(requests)
    assert result.ok and len(result.examples) == 12
    assert fake.peak_concurrency == 3


def test_generate_batch_reports_failures_by_index(fake: FakeInference, client: InferenceClient) -> None:
    fake.fail_prompts_containing = "BAD"
    texts = ["fine 0", "fine 1", "BAD 2", "fine 3", "fine 4", "BAD 5"]
    result = client.generate_batch([GenerationRequest(prompt(t), {"text": t}) for t in texts])
    assert not result.ok
    assert [index for index, _ in result.failures] == [2, 5]
    assert all("HTTP 400" in reason and "prompt refused" in reason for _, reason in result.failures)
    assert [e["metadata"]["text"] for e in result.examples] == ["fine 0", "fine 1", "fine 3", "fine 4"]


def test_generate_batch_payload_model_overrides_the_metadata_model(
    fake: FakeInference, client: InferenceClient
) -> None:
    result = client.generate_batch([(HELLO, {})], payload={"model": "big"})  # a plain tuple works
    assert result.examples[0]["metadata"]["model"] == "big"
    assert fake.chat_requests[0].body["model"] == "big"


def test_a_reply_stopped_at_its_token_limit_is_marked_and_the_gate_rejects_it(
    fake: FakeInference, client: InferenceClient
) -> None:
    """The server's ``finish_reason`` travels in the record's metadata, so a reply cut off
    by ``max_tokens`` (which reads like any unfinished sentence) is rejected as cut off."""
    from tdm_dagster.config.settings import TdmConfig
    from tdm_dagster.gate.run import GateInput, run_gate

    fake.reply = lambda messages: "To find the total, add the apples in each basket and then multiply by the number of days"
    requests = [GenerationRequest(prompt(f"question {i}"), {"id": i}) for i in range(2)]
    full = client.generate_batch(requests, payload={"max_tokens": 64})
    cut = client.generate_batch(requests, payload={"max_tokens": 6})

    assert [e["metadata"]["finish_reason"] for e in full.examples] == ["stop", "stop"]
    assert [e["metadata"]["finish_reason"] for e in cut.examples] == ["length", "length"]
    assert cut.examples[0]["messages"][-1]["content"] == "To find the total, add the"
    outcome = run_gate(GateInput.from_records(full.examples + cut.examples, "chat_sft_v1", "b"), TdmConfig())
    codes = {i: {issue.code for issue in issues} for i, issues in outcome.issues.items()}
    assert {i for i, found in codes.items() if "content.cut_off" in found} == {2, 3}
