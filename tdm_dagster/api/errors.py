"""Domain errors as HTTP answers, with the messages the CLI prints for the same problem.

``{"detail": message}`` throughout, as FastAPI answers: 404 for an unknown dataset or
version, 409 for what the state refuses (a delete of the current version, a file already
added), 422 for input the domain refuses (a bad name, version, format, a file with no
usable record), 413 for a body over the limit, and validation errors without the
offending input. Every message passes ``uploads.client_view`` on the way out, so no
answer names a path on the server (an upload's temporary folder, ``$TDM_HOME``).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from tdm_dagster.datasets.errors import (
    AlreadyAddedError,
    DatasetError,
    DatasetExistsError,
    DatasetNotFoundError,
    DeletionRefusedError,
    VersionExistsError,
    VersionNotFoundError,
)
from tdm_dagster.api.keys import KeyStoreUnreadable
from tdm_dagster.api.uploads import client_view
from tdm_dagster.http.limits import shorten, validation_problems


def reject(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": message}, headers=headers)


def _status_of(error: Exception) -> tuple[int, str]:
    if isinstance(error, (DatasetNotFoundError, VersionNotFoundError)):
        return 404, str(error)
    if isinstance(error, DeletionRefusedError):
        return 409, f"{error.refusal}; add force=true to delete it anyway"
    if isinstance(error, (AlreadyAddedError, DatasetExistsError, VersionExistsError)):
        return 409, str(error)
    return 422, str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)  # no KeyError quotes


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": validation_problems(exc.errors())})

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code, content={"detail": client_view(exc.detail, request)}, headers=exc.headers)

    @app.exception_handler(KeyStoreUnreadable)
    async def _keys(request: Request, exc: KeyStoreUnreadable) -> JSONResponse:  # broken after the key check passed
        return reject(503, str(exc))

    @app.exception_handler(DatasetError)
    async def _dataset(request: Request, exc: DatasetError) -> JSONResponse:
        status, message = _status_of(exc)
        return reject(status, shorten(client_view(message, request), 2000))

    @app.exception_handler(ValueError)
    async def _value(request: Request, exc: ValueError) -> JSONResponse:  # FormatError, a bad ratio...
        return reject(422, shorten(client_view(str(exc), request), 2000))
