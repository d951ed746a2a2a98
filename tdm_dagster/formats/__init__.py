"""Import and export datasets of records in the formats people train with.

Formats (name: what is written):

- ``jsonl``: one JSON object a line. ``json``: one JSON array of objects.
- ``csv``: a header row, then one record a row; string fields as plain cells, anything
  else (``messages``, ``metadata``, integer ids, keys some records lack) as JSON text in
  a column whose header ends in ``:json``.
- ``parquet``: one record a row; chats as native ``list<struct<role, content>>``, other
  nested or mixed fields as JSON text, so heterogeneous records come back identical.
- ``hf``: a Hugging Face ``datasets`` folder (``Dataset.save_to_disk``), loadable with
  ``datasets.load_from_disk``; columns as in Parquet.
- ``spacy``: a spaCy ``DocBin`` for text classification (``label``) and entity spans
  (``entities``); see ``tdm_dagster.formats.spacy_docbin`` for the shapes.
- ``chat_jsonl`` (export only): ``{"messages": [...]}`` a line for any record spec, plus
  ``text`` rendered by a tokenizer's chat template when ``tokenizer_path`` is given.
- ``pickle`` (export only): importing needs ``allow_pickle=True``, since unpickling an
  untrusted file runs its code.

- CSV cells that a spreadsheet would run as a formula (starting with ``= + - @``, tab or
  CR) are written with a leading ``'``, and so are cells that start with ``'``; import
  removes one leading ``'``, so every record comes back exactly.

Every export is atomic: readers see the previous file or folder or the complete new one,
and writes strict JSON (NaN or Infinity is an error, never written). Every import returns
an ``ImportResult``: the records read, and each record it could not take (not strict JSON,
too big, a ragged row, ...) with its place, reason and bytes, the rest of the file still
imported; a problem with the whole file raises ``FormatError`` naming the file. Heavy
libraries load only when their format is used.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tdm_dagster.formats.arrow_files import (
    read_hf,
    read_parquet,
    write_hf,
    write_parquet,
)
from tdm_dagster.formats.chat import write_chat_jsonl
from tdm_dagster.formats.errors import FormatError
from tdm_dagster.formats.imported import ImportResult
from tdm_dagster.formats.pickled import read_pickle, write_pickle
from tdm_dagster.formats.spacy_docbin import read_spacy, write_spacy
from tdm_dagster.formats.text_files import (
    read_csv,
    read_json,
    read_jsonl,
    write_csv,
    write_json,
    write_jsonl,
)

__all__ = ["EXPORT_FORMATS", "IMPORT_FORMATS", "FormatError", "ImportResult", "export_records", "import_records", "infer_format"]

Records = list[dict[str, Any]]

EXPORT_FORMATS: dict[str, Callable[[Records, Path], int]] = {
    "jsonl": write_jsonl,
    "json": write_json,
    "csv": write_csv,
    "parquet": write_parquet,
    "hf": write_hf,
    "spacy": write_spacy,
    "chat_jsonl": write_chat_jsonl,
    "pickle": write_pickle,
}
IMPORT_FORMATS: dict[str, Callable[[Path], ImportResult]] = {
    "jsonl": read_jsonl,
    "json": read_json,
    "csv": read_csv,
    "parquet": read_parquet,
    "hf": read_hf,
    "spacy": read_spacy,
}
_EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".parquet": "parquet",
    ".spacy": "spacy",
    ".docbin": "spacy",
    ".pkl": "pickle",
    ".pickle": "pickle",
}
_HF_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")


def infer_format(path: str | os.PathLike[str]) -> str:
    """The format a path's extension (or, for a folder, its contents) says it holds."""
    path = Path(path)
    if path.is_dir():
        if any((path / marker).exists() for marker in _HF_MARKERS):
            return "hf"
        raise FormatError(path, "a folder that is not a Hugging Face dataset (no dataset_info.json or state.json)")
    fmt = _EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(_EXTENSIONS))
        raise FormatError(path, f"cannot tell the format from extension {path.suffix!r} (known: {known}); pass fmt")
    return fmt


def export_records(
    records: Iterable[dict[str, Any]],
    path: str | os.PathLike[str],
    fmt: str | None = None,
    *,
    spec: str | None = None,
    tokenizer_path: str | os.PathLike[str] | None = None,
) -> int:
    """Write ``records`` to ``path`` in ``fmt`` (by default from the extension); returns the count.

    ``spec`` and ``tokenizer_path`` apply to ``chat_jsonl`` only: the record spec to read
    records as chats with (default: whichever spec each record fits), and a tokenizer
    folder whose chat template renders each chat into ``text``.
    """
    path = Path(path)
    fmt = fmt or _format_from_extension(path)
    if fmt not in EXPORT_FORMATS:
        raise FormatError(path, f"unknown export format {fmt!r} (known: {', '.join(EXPORT_FORMATS)})")
    if fmt != "chat_jsonl" and (spec is not None or tokenizer_path is not None):
        raise FormatError(path, f"spec and tokenizer_path apply to chat_jsonl only, not {fmt}")
    rows = list(records)
    for position, record in enumerate(rows):
        if not isinstance(record, dict):
            raise FormatError(path, f"record {position} is a {type(record).__name__}, not a dict")
    try:
        if fmt == "chat_jsonl":
            return write_chat_jsonl(rows, path, spec=spec, tokenizer_path=tokenizer_path)
        return EXPORT_FORMATS[fmt](rows, path)
    except FormatError:
        raise
    except (ValueError, RecursionError) as exc:  # e.g. strict JSON refusing NaN or a lone surrogate
        raise FormatError(path, f"cannot write the records, nothing written: {exc}") from exc


def import_records(path: str | os.PathLike[str], fmt: str | None = None, *, allow_pickle: bool = False) -> ImportResult:
    """Read every record in ``path``; ``fmt`` defaults to what the path looks like.

    ``allow_pickle=True`` lets a pickle be loaded; pass it only for a file you trust.
    """
    path = Path(path)
    if not path.exists():
        raise FormatError(path, "no such file or folder")
    fmt = fmt or infer_format(path)
    if fmt == "pickle":
        return read_pickle(path, allow_pickle=allow_pickle)
    if fmt not in IMPORT_FORMATS:
        only_export = " (it is export only)" if fmt in EXPORT_FORMATS else ""
        raise FormatError(path, f"cannot import format {fmt!r}{only_export}; importable: {', '.join(IMPORT_FORMATS)}, pickle")
    return IMPORT_FORMATS[fmt](path)


def _format_from_extension(path: Path) -> str:
    """Export's default format: by extension; a folder, or a path without one, is ``hf``."""
    return "hf" if path.is_dir() or not path.suffix else infer_format(path)
