"""Domain errors as HTTP answers, with the messages the CLI prints for the same problem.

``{"detail": message}`` throughout, as FastAPI answers: 404 for an unknown dataset or
version, 409 for what the state refuses (a delete of the current version, a file already
added), 422 for input the domain refuses (a bad name, version, format, a file with no
usable record), 413 for a body over the limit, and validation errors without the
offending input.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from tdm_dagster.datasets.errors import (
    AlreadyAddedError,
    DatasetError,
    DatasetExistsError,
    DatasetNotFoundError,
    DeletionRefusedError,
    VersionExistsError,
    VersionNotFoundError,
)
from tdm_dagster.http.limits import shorten, validation_problems


def reject(status: int, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": message})


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

    @app.exception_handler(DatasetError)
    async def _dataset(request: Request, exc: DatasetError) -> JSONResponse:
        status, message = _status_of(exc)
        return reject(status, shorten(message, 2000))

    @app.exception_handler(ValueError)
    async def _value(request: Request, exc: ValueError) -> JSONResponse:  # FormatError, a bad ratio...
        return reject(422, shorten(str(exc), 2000))
