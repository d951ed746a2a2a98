"""``/v1/lineage`` (scope ``read``): what ``tdm lineage`` answers, over HTTP."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from tdm_dagster.api.auth import require

router = APIRouter(prefix="/v1", tags=["lineage"], dependencies=[Depends(require("read"))])


@router.get("/lineage/{checkpoint:path}")
def checkpoint_lineage(request: Request, checkpoint: str) -> dict[str, Any]:
    """As ``tdm lineage CHECKPOINT --json``: a training run, ``RUN/checkpoint-N`` or
    ``deployed``; 404 when no checkpoint goes by that name. Only checkpoints under the
    home's ``training/`` and ``serving/`` are named: a client does not point the server at
    its other folders."""
    from tdm_dagster.lineage.trace import LineageError, lineage_of

    try:
        return lineage_of(request.app.state.home, checkpoint, only_home=True)
    except LineageError as error:
        raise HTTPException(404, str(error)) from None


@router.get("/lineage")
def trained_on(request: Request, batch: str = Query(..., max_length=200), line: int | None = Query(None, ge=1)) -> dict[str, Any]:
    """As ``tdm lineage --batch ID`` (with ``line``: ``--record ID:LINE``): the checkpoints
    trained on that batch or record, with their evaluations and deployments."""
    from tdm_dagster.lineage.trace import trained_on as checkpoints_trained_on

    return checkpoints_trained_on(request.app.state.home, batch, line)
