"""``/v1/stats`` and ``/v1/queue`` (scope ``read``): what ``tdm stats`` and the queue show."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from tdm_dagster.api.auth import require

router = APIRouter(prefix="/v1", tags=["stats"], dependencies=[Depends(require("read"))])


@router.get("/stats")
def stats(request: Request) -> dict[str, Any]:
    """Totals over every batch tested, as ``tdm stats --json`` (without ``failed_batches``:
    telling a failed batch from one in flight needs the Dagster instance; see
    ``batches`` with outcome ``no_report`` in ``/metrics``)."""
    from tdm_dagster.gate.reports import iter_reports, summarize

    return summarize(iter_reports(request.app.state.home))


@router.get("/stats/summary")
def stats_summary(request: Request, tokens: bool = False) -> dict[str, Any]:
    """As ``tdm stats summary --json``; ``tokens=true`` also counts approved records' tokens."""
    from tdm_dagster.stats.summary import summary

    return summary(request.app.state.home, tokens=tokens)


@router.get("/stats/daily")
def stats_daily(request: Request, days: int = Query(14, ge=1, le=366)) -> list[dict[str, Any]]:
    from tdm_dagster.stats.summary import daily

    return daily(request.app.state.home, days)


@router.get("/stats/sources")
def stats_sources(request: Request) -> dict[str, Any]:
    from tdm_dagster.stats.summary import sources

    return sources(request.app.state.home)


@router.get("/queue")
def queue(request: Request) -> dict[str, Any]:
    """Queue depth per priority and the waiting files in the order a trainer takes them."""
    from tdm_dagster.queue.store import TrainingQueue

    waiting = TrainingQueue(request.app.state.home)
    files = [{"priority": f.priority, "batch_id": f.batch_id, "modified": f.modified} for f in waiting.files()]
    return {"depth": waiting.depth(), "total": len(files), "files": files}
