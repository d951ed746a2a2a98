"""Work off the event loop, with a bound on how much may wait for it.

:class:`GenerationQueue` runs calls in worker threads, ``GENERATION_CONCURRENCY`` at a
time, with at most ``MAX_PENDING_GENERATIONS`` running or waiting; the event loop stays
free, so ``/health`` answers at once however busy the model is. The server's batcher
(:mod:`tdm_dagster.serving.batching`) runs each batch through one.
"""

from __future__ import annotations

from typing import Any

GENERATION_CONCURRENCY = 1
MAX_PENDING_GENERATIONS = 256
"""Completion requests beyond this many running or waiting for the model get 503 at once."""


class ServerBusy(RuntimeError):
    """Too many completion requests are already waiting for the model."""


class GenerationQueue:
    """Runs generations in worker threads, ``concurrency`` at a time, off the event loop.

    Requests over ``max_pending`` (running plus waiting) are refused at once with
    ``ServerBusy`` instead of piling up. Waiting requests wait on the event loop, not in
    threads, so the thread pool stays free for ``/health`` and the other endpoints.
    """

    def __init__(self, concurrency: int = GENERATION_CONCURRENCY, max_pending: int = MAX_PENDING_GENERATIONS) -> None:
        import anyio

        self._limiter = anyio.CapacityLimiter(concurrency)
        self.max_pending = max_pending
        self.pending = 0  # touched only on the event loop

    async def run(self, func: Any, *args: Any) -> Any:
        import anyio

        if self.pending >= self.max_pending:
            raise ServerBusy(f"server busy: {self.pending} completion requests are already waiting; retry later")
        self.pending += 1
        try:
            return await anyio.to_thread.run_sync(func, *args, limiter=self._limiter)
        finally:
            self.pending -= 1
