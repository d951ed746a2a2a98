"""Read inbox files one record at a time, whatever their size or state.

Files dropped into the inbox are messy: truncated, wrongly encoded, ragged, huge. Every
record a file holds comes out as a ``SourceRecord``, either parsed (``value``) or with the
reason it could not be read (``issue``), so the caller can account for every one of them:
accepted + rejected = records read. Problems that concern the whole file (unknown type,
not an array, unexpected columns, no records at all, cut off mid-array, unreadable) raise
``FileProblem`` while iterating; the records yielded before it stand, and
``FileProblem.records_read`` says how many there were.

Reading streams: memory holds about one record (at most ``max_record_bytes``, briefly
twice that while a buffer is copied) plus a 1 MB read chunk, whatever the file size. A
record over the limit is rejected with its size while it streams past, keeping only its
first ``RAW_PREVIEW_BYTES`` as ``raw``.

Formats, by extension: ``.jsonl``/``.ndjson`` (one JSON object per line; blank lines are
not records), ``.json`` (one JSON array of objects), ``.csv`` (a header row naming the
columns, then one record per row; values stay strings), ``.parquet`` (one record per row).
A UTF-8 byte order mark at the start of a text file is accepted and stripped.

A record is a strict JSON value (``tdm_dagster.records.strict_json``): NaN, infinities, integers
Python will not print, nesting over ``MAX_DEPTH``, lone surrogates, repeated keys and
Parquet values JSON has no type for reject that record, naming the field, so that
everything passed on can be written, hashed and queued.

This module chooses the reader by extension and accounts for the whole file; the readers
themselves are in ``json_readers``, ``csv_reader`` and ``arrow_reader``, and the record
and problem types they yield and raise in ``source``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

from tdm_dagster.ingest.arrow_reader import parquet_records
from tdm_dagster.ingest.csv_reader import csv_records
from tdm_dagster.ingest.json_readers import json_array_records, jsonl_records
from tdm_dagster.ingest.source import FileProblem, SourceRecord

DEFAULT_MAX_RECORD_BYTES = 8 * 1024 * 1024


Reader = Callable[[Path, str, int], Iterator[SourceRecord]]
_READERS: dict[str, Reader] = {
    ".jsonl": jsonl_records,
    ".ndjson": jsonl_records,
    ".json": json_array_records,
    ".csv": csv_records,
    ".parquet": parquet_records,
}
SUPPORTED_EXTENSIONS = tuple(_READERS)


def read_records(
    path: str | os.PathLike[str], *, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES, suffix: str | None = None
) -> Iterator[SourceRecord]:
    """Every record of the file at ``path``, streamed; the reader is chosen by extension
    (or by ``suffix``, e.g. ``.jsonl``, for a file named otherwise).

    Raises ``FileProblem`` (while iterating) for problems with the whole file, including a
    file with no records at all, so an empty drop never passes for a successful read.
    """
    path = Path(path)
    file = str(path)
    suffix = (suffix or path.suffix).lower()
    reader = _READERS.get(suffix)
    if reader is None:
        found = f"'{suffix}'" if suffix else "no extension"
        raise FileProblem(file, "unknown_format", f"unknown file type ({found}); expected one of {', '.join(_READERS)}",
                          "rename the file to say its format, or convert it to JSON lines")  # fmt: skip
    count = 0
    try:
        for record in reader(path, file, max_record_bytes):
            count += 1
            yield record
    except FileProblem as problem:
        problem.records_read = count
        raise
    except OSError as exc:
        raise FileProblem(file, "io_error", f"cannot read the file after {count} records: {exc.strerror or exc}",
                          "check that the file exists, is a regular file and is readable", count) from exc  # fmt: skip
    if count == 0:
        size = path.stat().st_size
        what = "file is empty (0 bytes)" if size == 0 else f"no records in the file ({size} bytes)"
        raise FileProblem(file, "empty_file", f"{what}: 0 records", "check the export that wrote this file")
