"""Uploaded files on disk under the name the client gave them.

The domain code reads a file's format from its extension, records a file's name with its
checksum, and names records ``file:line``; so an upload is written, streamed, into its
own temporary folder under its client-side base name (never a path: folders are
dropped), and read from there exactly as the CLI reads the client's file.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi import HTTPException, UploadFile

from tdm_dagster.http.limits import shorten

CHUNK_BYTES = 1 << 20


def base_name(filename: str | None, field: str) -> str:
    """The last part of the client's file name, refused (422) when there is none."""
    name = Path((filename or "").replace("\\", "/")).name
    if not name or name in {".", ".."} or "\x00" in name or len(name.encode()) > 255:
        raise HTTPException(422, f"{field}: the upload needs a file name with its extension (e.g. data.jsonl), got {shorten(repr(filename), 80)}")
    return name


@contextmanager
def saved(uploads: list[tuple[str, UploadFile]]) -> Iterator[list[Path]]:
    """Each ``(field, upload)`` written to a folder of its own; all removed on exit."""
    folder = Path(tempfile.mkdtemp(prefix="tdm-api-upload-"))
    try:
        paths = []
        for index, (field, upload) in enumerate(uploads):
            target = folder / str(index) / base_name(upload.filename, field)
            target.parent.mkdir()
            with open(target, "wb") as out:
                shutil.copyfileobj(upload.file, out, CHUNK_BYTES)
            paths.append(target)
        yield paths
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def as_client_named(value: Any, names: dict[str, str]) -> Any:
    """``value`` (a report: dicts, lists, strings) with each saved upload's path, where a
    message quotes it, replaced by the name the client gave that file."""
    if isinstance(value, str):
        for saved_path, client_name in names.items():
            value = value.replace(saved_path, client_name)
        return value
    if isinstance(value, dict):
        return {key: as_client_named(item, names) for key, item in value.items()}
    if isinstance(value, list):
        return [as_client_named(item, names) for item in value]
    return value
