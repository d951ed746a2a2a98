"""``/v1/keys`` (scope ``admin``): list, create and revoke keys over the API, as
``tdm api keys`` does. A created key is in that one response and nowhere else."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict

from tdm_dagster.api.auth import require
from tdm_dagster.api.keys import ApiKeyError

router = APIRouter(prefix="/v1/keys", tags=["keys"], dependencies=[Depends(require("admin"))])


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    scopes: list[str]


@router.get("")
def list_keys(request: Request) -> list[dict[str, Any]]:
    return [key.public() for key in request.app.state.keys.list()]


@router.post("", status_code=201)
def create_key(new: NewKey, request: Request) -> dict[str, Any]:
    try:
        key, token = request.app.state.keys.create(new.name, new.scopes)
    except ApiKeyError as exc:
        raise HTTPException(422, str(exc)) from exc
    return {**key.public(), "key": token}


@router.delete("/{name}")
def revoke_key(name: str, request: Request) -> dict[str, Any]:
    try:
        return {"revoked": request.app.state.keys.revoke(name).name}
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from exc
