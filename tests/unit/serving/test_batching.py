"""The dynamic batcher on a real loaded checkpoint: batch sizes, the bound on waiting
requests, and a request cancelled while waiting (a client that hung up)."""

from __future__ import annotations

import asyncio

import pytest

from tdm_dagster.serving.batching import DynamicBatcher
from tdm_dagster.serving.generation_queue import ServerBusy
from tdm_dagster.serving.model import GenerationParams, load_checkpoint


@pytest.fixture(scope="module")
def model(checkpoints):
    return load_checkpoint(checkpoints["a"])


def _request(n: int, **overrides) -> GenerationParams:
    fields = {"messages": [{"role": "user", "content": f"question {n} " * (n + 1)}], "max_tokens": 4 + n,
              "temperature": 0.0, **overrides}  # fmt: skip
    return GenerationParams(**fields)


def test_batches_bound_waiting_and_drop_cancelled(model):
    async def scenario():
        batcher = DynamicBatcher(max_batch=4, window_s=0.05, max_pending=6)
        tasks = [asyncio.create_task(batcher.run(model, _request(n))) for n in range(6)]
        await asyncio.sleep(0)  # every task has queued its request
        assert batcher.pending == 6
        with pytest.raises(ServerBusy, match="6 completion requests are already waiting"):
            await batcher.run(model, _request(9))
        tasks[1].cancel()  # its client hung up before the batch ran
        results = await asyncio.gather(*tasks, return_exceptions=True)
        return batcher, results

    batcher, results = asyncio.run(scenario())
    assert isinstance(results[1], asyncio.CancelledError)
    assert batcher.pending == 0
    # the first batch took the 4 oldest and dropped the cancelled one; the second, the other 2
    assert batcher.stats == {"count": 2, "requests": 5, "largest": 3}
    for n, result in enumerate(results):
        if n != 1:
            alone = model.generate(**{k: getattr(_request(n), k) for k in ("messages", "max_tokens", "temperature")})
            assert result == alone, n


def test_one_batch_needs_one_sampling_key(model):
    with pytest.raises(ValueError, match="one sampling key"):
        model.generate_batch([_request(0), _request(1, temperature=0.7)])
    # requests whose sampling parameters are equal share a key; greedy ignores top_p
    assert _request(0, temperature=0.7, top_p=0.9).sampling_key == _request(3, temperature=0.7, top_p=0.9).sampling_key
    assert _request(0, top_p=0.5).sampling_key == _request(1).sampling_key
