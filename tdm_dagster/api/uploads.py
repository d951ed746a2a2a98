"""Uploaded files on disk under the name the client gave them, and what the client may
see of the server's paths: nothing.

The domain code reads a file's format from its extension, records a file's name with its
checksum, and names records ``file:line``; so an upload is written, streamed, into its
own temporary folder under its client-side base name (never a path: folders are
dropped), and read from there exactly as the CLI reads the client's file. Messages
about it quote that temporary path; ``client_view`` turns it back into the client's
file name, ``$TDM_HOME`` into just that, and any other upload folder into ``<upload>``,
before an answer (success or error) leaves the server.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request, UploadFile

from tdm_dagster.http.limits import shorten

CHUNK_BYTES = 1 << 20
TEMP_PREFIX = "tdm-api-"
"""Every temporary folder the service makes (uploads, exports, the gate's warm-up) starts so."""
UPLOAD_NAMES = "tdm_upload_names"
"""Where ``saved`` leaves {saved path: the client's file name} in the request's state."""


def base_name(filename: str | None, field: str) -> str:
    """The last part of the client's file name, refused (422) when there is none."""
    name = Path((filename or "").replace("\\", "/")).name
    if not name or name in {".", ".."} or "\x00" in name or len(name.encode()) > 255:
        raise HTTPException(422, f"{field}: the upload needs a file name with its extension (e.g. data.jsonl), got {shorten(repr(filename), 80)}")
    return name


@contextmanager
def saved(request: Request, uploads: list[tuple[str, UploadFile]]) -> Iterator[list[Path]]:
    """Each ``(field, upload)`` written to a folder of its own; all removed on exit. The
    request remembers each saved path's client name, for ``client_view``."""
    folder = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX + "upload-"))
    names = request.scope.setdefault("state", {}).setdefault(UPLOAD_NAMES, {})
    try:
        paths = []
        for index, (field, upload) in enumerate(uploads):
            target = folder / str(index) / base_name(upload.filename, field)
            target.parent.mkdir()
            names[str(target)] = str(upload.filename)
            with open(target, "wb") as out:
                shutil.copyfileobj(upload.file, out, CHUNK_BYTES)
            paths.append(target)
        yield paths
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def client_view(value: Any, request: Request) -> Any:
    """``value`` (a message or a report: dicts, lists, strings) as a client may see it:
    each saved upload's path as the client's file name, ``$TDM_HOME`` instead of the
    home's path, ``<upload>`` for any other of the service's temporary paths."""
    names = {**request.scope.get("state", {}).get(UPLOAD_NAMES, {}), str(request.app.state.home.root): "$TDM_HOME"}
    temporary = re.compile(re.escape(str(Path(tempfile.gettempdir()) / TEMP_PREFIX)) + r"[^\s'\":,)]*")

    def shown(text: str) -> str:
        for path, name in names.items():
            text = text.replace(path, name)
        return temporary.sub("<upload>", text)

    return _each_string(value, shown)


def _each_string(value: Any, change: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {key: _each_string(item, change) for key, item in value.items()}
    if isinstance(value, list):
        return [_each_string(item, change) for item in value]
    return value
