"""Dynamic batching: concurrent completion requests share one ``generate`` call.

A request joins a queue on the event loop. One collector task takes the oldest request,
waits up to ``BATCH_WINDOW_S`` for others to arrive (not at all once ``MAX_BATCH_SIZE``
are waiting), and sends every waiting request with the same model and sampling key
(:attr:`~tdm_dagster.serving.model.GenerationParams.sampling_key`), up to
``MAX_BATCH_SIZE``, to :meth:`~tdm_dagster.serving.model.LoadedModel.generate_batch` in
a worker thread; requests that cannot share it wait for the next batch, in arrival
order. Batches run one at a time (a :class:`GenerationQueue` of one), so the model is
never asked for two at once, and while one runs the next fills up: under load, batches
grow by themselves. The event loop stays free throughout, so ``/health`` answers at once.

At most ``MAX_PENDING_GENERATIONS`` requests may be waiting or running; beyond that a
request is refused at once with :class:`ServerBusy`. A client that hangs up leaves its
row in the batch; the result is dropped.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from tdm_dagster.serving.generation_queue import MAX_PENDING_GENERATIONS, GenerationQueue, ServerBusy
from tdm_dagster.serving.model import GenerationParams, LoadedModel

MAX_BATCH_SIZE = 16
"""The most requests one ``generate`` call serves."""
BATCH_WINDOW_S = 0.005
"""How long the oldest waiting request waits for others to join its batch."""


class DynamicBatcher:
    """Collects concurrent requests into batches; see the module docstring."""

    def __init__(self, max_batch: int = MAX_BATCH_SIZE, window_s: float = BATCH_WINDOW_S,
                 max_pending: int = MAX_PENDING_GENERATIONS) -> None:
        self.max_batch = max_batch
        self.window_s = window_s
        self.max_pending = max_pending
        self.stats = {"count": 0, "requests": 0, "largest": 0}  # batches run, for /health
        self._waiting: deque[tuple[LoadedModel, GenerationParams, asyncio.Future[Any]]] = deque()
        self._runner = GenerationQueue(concurrency=1, max_pending=max_pending)
        self._collector: asyncio.Task[None] | None = None
        self.pending = 0  # waiting or running; touched only on the event loop

    async def run(self, model: LoadedModel, request: GenerationParams) -> dict[str, Any]:
        """The completion for ``request`` from ``model``; raises ``PromptTooLong`` or
        ``ServerBusy``."""
        if self.pending >= self.max_pending:
            raise ServerBusy(f"server busy: {self.pending} completion requests are already waiting; retry later")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((model, request, future))
        self.pending += 1
        if self._collector is None or self._collector.done():
            self._collector = asyncio.create_task(self._collect())
        try:
            return await future
        finally:
            self.pending -= 1

    def _take_batch(self) -> tuple[LoadedModel, list[tuple[GenerationParams, asyncio.Future[Any]]]]:
        model, first, _ = self._waiting[0]
        key = (id(model), first.sampling_key)
        batch, rest = [], deque()
        for item in self._waiting:
            if len(batch) < self.max_batch and (id(item[0]), item[1].sampling_key) == key:
                batch.append((item[1], item[2]))
            else:
                rest.append(item)
        self._waiting = rest
        return model, batch

    async def _collect(self) -> None:
        while self._waiting:
            if len(self._waiting) < self.max_batch:
                await asyncio.sleep(self.window_s)
            model, batch = self._take_batch()
            batch = [(request, future) for request, future in batch if not future.done()]
            if not batch:
                continue
            self.stats["count"] += 1
            self.stats["requests"] += len(batch)
            self.stats["largest"] = max(self.stats["largest"], len(batch))
            try:
                results = await self._runner.run(model.generate_batch, [request for request, _ in batch])
            except Exception as exc:  # noqa: BLE001 - every request of the batch gets the error
                results = [exc] * len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)
