"""``/v1/datasets``: the registry over HTTP, as ``tdm datasets`` does it.

list, show, versions and diff (scope ``read``); ``export`` downloads a version in a file
format (``read``); ``import`` uploads a file into a dataset through the gate (``write``),
with the same rules as ``tdm datasets import``, except that a pickle is never imported
(unpickling runs code from the file, and the file is a client's); ``DELETE`` removes a
dataset or one version (``delete``), refused for the current version or a parent unless
``force``.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from tdm_dagster.api.auth import require
from tdm_dagster.api.uploads import TEMP_PREFIX, client_view, saved
from tdm_dagster.datasets import DatasetRegistry
from tdm_dagster.datasets.names import check_name, check_version

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])

DOWNLOAD_FORMATS = {"jsonl": ".jsonl", "json": ".json", "csv": ".csv", "parquet": ".parquet",
                    "chat_jsonl": ".jsonl", "spacy": ".spacy", "pickle": ".pkl"}  # fmt: skip
"""Formats that are one file (``hf`` is a folder: export it with the CLI)."""
PICKLE_REFUSAL = (
    "a pickle is never imported over the API, whatever the key or the form says: unpickling runs code from the "
    "file. Upload a data format (jsonl, json, csv, parquet, spacy), or import a pickle you trust on the server "
    "with `tdm datasets import --allow-pickle`"
)


def _registry(request: Request) -> DatasetRegistry:
    return DatasetRegistry(request.app.state.home)


def _version(version: str | None, label: str = "version") -> str | None:
    return None if version is None else check_version(version, label)


@router.get("", dependencies=[Depends(require("read"))])
def list_datasets(request: Request) -> list[dict[str, Any]]:
    return [asdict(info) for info in _registry(request).list_datasets()]


@router.get("/{name}", dependencies=[Depends(require("read"))])
def show(name: str, request: Request) -> dict[str, Any]:
    registry = _registry(request)
    info = registry.describe(check_name(name))
    current = registry.version_info(name) if info.current_version else None
    return {**asdict(info), "current": asdict(current) if current else None}


@router.get("/{name}/versions", dependencies=[Depends(require("read"))])
def versions(name: str, request: Request) -> list[dict[str, Any]]:
    return [asdict(v) for v in _registry(request).versions(check_name(name))]


@router.get("/{name}/diff", dependencies=[Depends(require("read"))])
def diff(name: str, old: str, new: str, request: Request) -> dict[str, Any]:
    return _registry(request).diff(check_name(name), _version(old, "old"), _version(new, "new")).summary()


@router.get("/{name}/export", dependencies=[Depends(require("read"))], response_class=FileResponse)
def export(name: str, request: Request, version: str | None = None,
           format: Literal[tuple(DOWNLOAD_FORMATS)] = "jsonl") -> FileResponse:  # type: ignore[valid-type]  # noqa: A002
    """The version (default: current) as one file to download."""
    from tdm_dagster.formats import export_records

    registry = _registry(request)
    info = registry.version_info(check_name(name), _version(version))
    folder = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX + "export-"))
    filename = f"{name}-{info.version}{DOWNLOAD_FORMATS[format]}"
    try:
        written = export_records(registry.records(name, info.version), folder / filename, format)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    headers = {"X-TDM-Records": str(written), "X-TDM-Version": info.version}
    return FileResponse(folder / filename, filename=filename, headers=headers,
                        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True))  # fmt: skip


@router.post("/{name}/import", dependencies=[Depends(require("write"))], status_code=201)
def import_dataset(
    name: str,
    request: Request,
    file: UploadFile = File(description="The file; its name's extension gives the format unless `format` does."),
    format: str | None = Form(None),  # noqa: A002
    gate: bool = Form(True, description="Run the gate first (false: import every readable record)."),
    level: Literal["quick", "standard", "deep"] | None = Form(None),
    salvage: bool | None = Form(None, description="When the batch fails as a whole, still import the records that pass on their own "
                                "(true) or none (false); default: gate.on_batch_failure.import."),
    description: str = Form(""),
) -> dict[str, Any]:
    """Append the upload's records (creating the dataset if needed) as a new version, as
    ``tdm datasets import`` does; rejected records are kept in ``rejected/`` with reasons.

    A pickle (``format=pickle``, or a ``.pkl``/``.pickle`` name) is refused with 422
    before anything is read: unpickling runs the file's code, so it is never done for
    an HTTP client, whatever its key or form fields (``allow_pickle`` has no effect)."""
    from tdm_dagster.datasets.intake import choose_format, import_file

    check_name(name)
    state = request.app.state
    with saved(request, [("file", file)]) as (path,):
        fmt = choose_format(path, format, export=False)
        if fmt == "pickle":
            raise HTTPException(422, PICKLE_REFUSAL)
        added = import_file(DatasetRegistry(state.home), state.home, state.config, name, path, fmt,
                            gate=gate, level=level, salvage=salvage, description=description)  # fmt: skip
    return client_view({**added.to_dict(), "messages": added.lines}, request)


@router.delete("/{name}", dependencies=[Depends(require("delete"))])
def delete(name: str, request: Request, version: str | None = None, force: bool = False) -> dict[str, Any]:
    """Delete a version or the whole dataset; refused (409) for the current version or a
    parent of another unless ``force=true``."""
    registry = _registry(request)
    check_name(name)
    if version is not None:
        registry.delete_version(name, check_version(version), force=force)
    else:
        registry.delete_dataset(name, force=force)
    return {"deleted": f"{name} {version}" if version is not None else name}
