"""Pickle: export only, unless the user vouches for the file.

Unpickling runs whatever code the file names, so a pickle from anyone else can take
over the machine. Import refuses unless ``allow_pickle=True`` is passed for a file the
user trusts (typically one they exported themselves).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from tdm_dagster.files.atomic import atomic_open
from tdm_dagster.formats.errors import FormatError
from tdm_dagster.formats.imported import ImportResult, checked

REFUSAL = (
    "refusing to unpickle: loading a pickle runs arbitrary code from the file, so a "
    "malicious or tampered pickle can take over this machine. Use a data format "
    "(jsonl, json, csv, parquet, hf) instead, or pass allow_pickle=True only for a "
    "file you created yourself or otherwise trust"
)


def write_pickle(records: list[dict[str, Any]], path: Path) -> int:
    with atomic_open(path, "wb") as handle:
        pickle.dump(records, handle, protocol=pickle.HIGHEST_PROTOCOL)
    return len(records)


def read_pickle(path: Path, *, allow_pickle: bool) -> ImportResult:
    if not allow_pickle:
        raise FormatError(path, REFUSAL)
    try:
        with open(path, "rb") as handle:
            value = pickle.load(handle)
    except Exception as exc:  # unpickling can raise anything the file's code raises
        raise FormatError(path, f"cannot unpickle: {exc}") from exc
    if not isinstance(value, list):
        raise FormatError(path, f"expected a pickled list of dict records, got {type(value).__name__}")
    return checked(path, value, "record")
