"""A real ``tdm serve`` process, one per module, talked to by real clients (httpx, the
``openai`` SDK, tdm's own inference client): dynamic batching gives the same greedy
completions as one request at a time, keeps sampled and greedy requests apart, and
``/health`` reports GPU stats in the shape the inference client reads."""

from __future__ import annotations

import asyncio
from dataclasses import asdict

import httpx
import pytest

from tdm_dagster.generate.inference_client import InferenceClient
from tdm_dagster.http.gpu_stats import GpuStats, health_gpus, local_gpu_stats, parse_gpu_stats
from tdm_dagster.serving.deploy import deploy
from tests.support.tdm_serve import tdm_serve
from tests.unit.serving.helpers import ADMIN_TOKEN

PROMPTS = [f"request {n}: " + "tell me more " * n for n in range(12)]
MAX_TOKENS = [6 + (n % 4) * 3 for n in range(12)]


@pytest.fixture(scope="module")
def server(checkpoints, tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("serve-process")
    result = deploy(checkpoints["a"], folder / "serving", score=0.5, server_url=None)
    assert result.deployed, result.reason
    with tdm_serve(folder / "serving", folder, TDM_SERVING_ADMIN_TOKEN=ADMIN_TOKEN) as url:
        yield url


def _body(n: int, **extra) -> dict:
    return {"model": "any", "messages": [{"role": "user", "content": PROMPTS[n]}], "max_tokens": MAX_TOKENS[n],
            "temperature": 0, **extra}


async def _concurrently(url: str, bodies: list[dict]) -> list[dict]:
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=64)) as client:
        responses = await asyncio.gather(*(client.post(url + "/v1/chat/completions", json=b) for b in bodies))
    assert [r.status_code for r in responses] == [200] * len(bodies), [r.text[:200] for r in responses]
    return [r.json() for r in responses]


def _batches(url: str) -> dict:
    return httpx.get(url + "/health", timeout=30).json()["batches"]


def test_concurrent_greedy_requests_are_batched_and_equal_the_unbatched(server):
    with httpx.Client(timeout=120) as client:
        alone = [client.post(server + "/v1/chat/completions", json=_body(n)).json() for n in range(len(PROMPTS))]
    before = _batches(server)
    together = asyncio.run(_concurrently(server, [_body(n) for n in range(len(PROMPTS))]))
    after = _batches(server)

    # fewer generate calls than requests, and at least one held several requests
    assert after["count"] - before["count"] < len(PROMPTS)
    assert after["largest"] > 1
    for n, (one, batched) in enumerate(zip(alone, together, strict=True)):
        assert batched["choices"][0]["message"] == one["choices"][0]["message"], n
        assert batched["choices"][0]["finish_reason"] == one["choices"][0]["finish_reason"], n
        assert batched["usage"] == one["usage"], n
        assert batched["usage"]["completion_tokens"] <= MAX_TOKENS[n]
    assert len({tuple(r["usage"].values()) for r in together}) > 1  # prompts and lengths really differ


def test_greedy_sampled_and_too_long_requests_in_one_burst(server):
    """Requests whose sampling parameters differ cannot share a batch: each still gets
    its own answer; a prompt too long for the model fails alone, not its batch."""
    greedy = [_body(n) for n in range(4)]
    sampled = [_body(n, temperature=0.8, top_p=0.9) for n in range(4)]
    too_long = {"messages": [{"role": "user", "content": "word " * 5000}], "max_tokens": 4, "temperature": 0}

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=120) as client:
            return await asyncio.gather(*(client.post(server + "/v1/chat/completions", json=b)
                                          for b in [*greedy, too_long, *sampled]))  # fmt: skip

    responses = asyncio.run(burst())
    statuses = [r.status_code for r in responses]
    assert statuses == [200] * 4 + [400] + [200] * 4, [r.text[:200] for r in responses]
    assert responses[4].json()["error"]["code"] == "context_length_exceeded"
    with httpx.Client(timeout=120) as client:
        for n in range(4):
            alone = client.post(server + "/v1/chat/completions", json=greedy[n]).json()
            assert responses[n].json()["choices"][0]["message"] == alone["choices"][0]["message"]
    for response, body in zip(responses[5:], sampled, strict=True):
        assert 1 <= response.json()["usage"]["completion_tokens"] <= body["max_tokens"]


def test_openai_sdk_client(server):
    from openai import OpenAI

    client = OpenAI(base_url=server + "/v1", api_key="unused", max_retries=0)
    [model] = client.models.list().data
    completion = client.chat.completions.create(model=model.id, messages=[{"role": "user", "content": PROMPTS[3]}],
                                                max_tokens=MAX_TOKENS[3], temperature=0)  # fmt: skip
    direct = httpx.post(server + "/v1/chat/completions", json=_body(3), timeout=60).json()
    assert completion.model == model.id == "ckpt-a"
    assert completion.choices[0].message.content == direct["choices"][0]["message"]["content"]
    assert completion.usage.completion_tokens == direct["usage"]["completion_tokens"]


def test_health_gpu_shape_is_the_one_the_inference_client_reads(server):
    body = httpx.get(server + "/health", timeout=30).json()
    report = InferenceClient(server).health()
    assert report.ok, report.detail
    # the server reports GPU stats (a list, empty on a machine without CUDA): never "none reported"
    assert isinstance(body["gpus"], list)
    assert report.gpus is not None
    assert [asdict(gpu) for gpu in report.gpus] == body["gpus"]
    if local_gpu_stats():  # a CUDA machine: the server's GPUs, with their memory
        assert report.gpus and all(gpu.memory_total_mb and gpu.name for gpu in report.gpus)


def test_gpu_stats_round_trip():
    stats = [GpuStats("NVIDIA H200", 1234.5, 143771.0, 12.0), GpuStats("second", 0.0, 81559.0, None)]
    assert parse_gpu_stats(health_gpus(stats)) == stats
    assert parse_gpu_stats(health_gpus([])) == []
