"""The Arrow readers: ``.parquet`` files and any Arrow record batches (a Hugging Face
folder, see ``tdm_dagster.formats.arrow_files``), one record per row. pyarrow is imported
only when such a file arrives."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tdm_dagster.ingest.shapes import columns_problem
from tdm_dagster.ingest.source import FileProblem, SourceRecord, describe_place, read_issue, too_large_record, value_issue
from tdm_dagster.records.strict_json import value_problem

_PARQUET_BATCH_ROWS = 1024


def parquet_records(path: Path, file: str, limit: int) -> Iterator[SourceRecord]:
    import pyarrow as pa  # heavy: only when a Parquet file arrives
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except pa.ArrowException as exc:
        raise FileProblem(file, "not_parquet", f"not a readable Parquet file: {exc}", "check the file is complete Parquet") from exc
    schema = parquet.schema_arrow
    mismatch = columns_problem(schema.names)
    if mismatch:
        types = ", ".join(f"{field.name}: {field.type}" for field in schema)
        raise FileProblem(file, "unexpected_schema", f"{mismatch} (column types: {types})",
                          "rename the columns to one of those shapes")  # fmt: skip
    yield from arrow_records(parquet.iter_batches(batch_size=_PARQUET_BATCH_ROWS), file, limit)


_ARROW_CONVERSION_ERRORS = (ValueError, OverflowError, UnicodeDecodeError, ArithmeticError)
"""What turning an Arrow value into Python can raise (a timestamp past year 9999, invalid
UTF-8 in a string column, ...); ``pa.ArrowException`` is added where pyarrow is loaded."""


def _batch_rows(batch: Any, errors: tuple[type[BaseException], ...]) -> Iterator[dict[str, Any] | tuple[str, BaseException]]:
    """The batch's rows as dicts; a row Arrow cannot convert comes as (its column, the error)."""
    try:
        yield from batch.to_pylist()
        return
    except errors:
        pass
    for row in range(batch.num_rows):
        values: dict[str, Any] = {}
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            try:
                values[name] = column[row].as_py()
            except errors as exc:
                yield name, exc
                break
        else:
            yield values


def _row_raw(row: dict[str, Any], strict: bool) -> bytes:
    """A row as JSON text, its ``raw``; a row that is not strict JSON is shown as best it can be."""
    if strict:
        return json.dumps(row, ensure_ascii=False).encode("utf-8")
    try:
        return json.dumps(row, ensure_ascii=True, default=repr).encode("ascii")
    except (ValueError, RecursionError):
        return b""


def arrow_records(batches: Iterable[Any], file: str, limit: int) -> Iterator[SourceRecord]:
    """One record per row of Arrow record batches (a Parquet file, a Hugging Face folder).

    A row is rejected with its column when Arrow cannot convert it, or when it holds what
    JSON has no value for (timestamps, decimals, bytes, NaN: see ``tdm_dagster.records.strict_json``),
    so that every record passed on can be written as JSON; the other rows go on.
    """
    import pyarrow as pa

    errors = (pa.ArrowException, *_ARROW_CONVERSION_ERRORS)
    index = 0
    try:
        for batch in batches:
            for row in _batch_rows(batch, errors):
                place = describe_place(file, index + 1, index, "row")
                if isinstance(row, tuple):
                    column, exc = row
                    issue = read_issue("unconvertible_value", f"{place}: column {column}: cannot convert the value: {exc}",
                                       "check the column's values, or cast the column to string", column)  # fmt: skip
                    yield SourceRecord(file, index + 1, b"", None, issue, index, unit="row")
                elif (problem := value_problem(row)) is not None:
                    yield SourceRecord(file, index + 1, _row_raw(row, False)[:limit], None, value_issue(problem, place), index, "row")
                elif len(raw := _row_raw(row, True)) > limit:
                    yield too_large_record(file, index + 1, index, raw, len(raw), limit, unit="row")
                else:
                    yield SourceRecord(file, index + 1, raw, row, None, index, unit="row")
                index += 1
    except (pa.ArrowException, OSError) as exc:
        raise FileProblem(file, "corrupt_file", f"cannot read past row {index}: {exc}", "check the file is complete Parquet") from exc

