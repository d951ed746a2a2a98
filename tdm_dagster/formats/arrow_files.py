"""Parquet and Hugging Face ``datasets`` folders: both are Arrow tables underneath.

Columns are stored as planned in ``columns``: strings, native chats, or JSON text. Which
string columns hold JSON is recorded beside the data: in the Parquet schema metadata,
and in a ``tdm_columns.json`` file in the dataset folder (``datasets`` drops custom
schema metadata on save). A Parquet file or dataset made elsewhere has no such record:
its values come back as Arrow gives them, with nulls dropped as missing keys; a row
holding what JSON has no type for (timestamps, decimals, bytes, NaN) is rejected with its
column, and the other rows are imported.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tdm_dagster.files.atomic import atomic_open, atomic_write_json
from tdm_dagster.formats.columns import Column, encode_cell, plan_columns
from tdm_dagster.formats.errors import FormatError
from tdm_dagster.files.directories import atomic_directory
from tdm_dagster.formats.imported import MAX_RECORD_BYTES, ImportResult, collect
from tdm_dagster.ingest.arrow_reader import arrow_records
from tdm_dagster.ingest.source import SourceRecord, read_issue
from tdm_dagster.records.strict_json import JsonValueProblem, loads_strict

if TYPE_CHECKING:
    import pyarrow as pa

_BATCH_ROWS = 1024
JSON_COLUMNS_KEY = "tdm_dagster.json_columns"
HF_COLUMNS_FILE = "tdm_columns.json"


def _arrow_type(column: Column) -> pa.DataType:
    import pyarrow as pa

    if column.kind == "messages":
        return pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    return pa.string()


def records_to_table(records: list[dict[str, Any]]) -> pa.Table:
    import pyarrow as pa

    columns = plan_columns(records)
    arrays = [
        pa.array([encode_cell(r[c.name], c.kind) if c.name in r else None for r in records], type=_arrow_type(c)) for c in columns
    ]
    json_columns = [c.name for c in columns if c.kind == "json"]
    schema = pa.schema([pa.field(c.name, _arrow_type(c)) for c in columns], metadata={JSON_COLUMNS_KEY: json.dumps(json_columns)})
    return pa.Table.from_arrays(arrays, schema=schema)


def _json_columns_of(schema: pa.Schema) -> list[str]:
    """The JSON-text columns ``records_to_table`` recorded (none for a foreign file)."""
    return _column_names(loads_strict((schema.metadata or {}).get(JSON_COLUMNS_KEY.encode(), b"[]").decode("utf-8")))


def _column_names(value: Any) -> list[str]:
    if not (isinstance(value, list) and all(isinstance(name, str) for name in value)):
        raise ValueError(f"the list of JSON columns is not a list of names: {str(value)[:80]}")
    return value


def _row_decoder(json_columns: list[str]) -> Callable[[SourceRecord], SourceRecord]:
    """A stored row as its record: null cells are missing keys, JSON-text columns parsed (strictly)."""
    json_set = frozenset(json_columns)

    def decode(source: SourceRecord) -> SourceRecord:
        record = {}
        for name, cell in source.value.items():
            if cell is None:
                continue
            if name not in json_set:
                record[name] = cell
                continue
            try:
                record[name] = loads_strict(cell)
            except (JsonValueProblem, json.JSONDecodeError) as exc:
                field = f"{name}.{exc.field}".rstrip(".") if isinstance(exc, JsonValueProblem) else name
                message = f"{source.where()}: column {name} (recorded as JSON): {exc}"
                return replace(source, value=None, issue=read_issue("invalid_json_column", message,
                               "export the dataset again, or check what rewrote the file", field))  # fmt: skip
        return replace(source, value=record)

    return decode


def write_parquet(records: list[dict[str, Any]], path: Path) -> int:
    import pyarrow.parquet as pq

    with atomic_open(path, "wb") as handle:
        pq.write_table(records_to_table(records), handle)
    return len(records)


def read_parquet(path: Path) -> ImportResult:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException, ValueError) as exc:
        raise FormatError(path, f"cannot read as Parquet: {exc}") from exc
    try:
        json_columns = _json_columns_of(parquet.schema_arrow)
    except ValueError as exc:
        raise FormatError(path, f"the schema metadata {JSON_COLUMNS_KEY} is not a list of column names: {exc}") from exc
    rows = arrow_records(parquet.iter_batches(batch_size=_BATCH_ROWS), str(path), MAX_RECORD_BYTES)
    return collect(path, rows, _row_decoder(json_columns))


def write_hf(records: list[dict[str, Any]], path: Path) -> int:
    """Save with ``Dataset.save_to_disk``; ``datasets.load_from_disk(path)`` reads it."""
    import datasets

    table = records_to_table(records)
    with atomic_directory(path) as staging:
        datasets.Dataset(table).save_to_disk(str(staging))
        atomic_write_json(staging / HF_COLUMNS_FILE, {"json_columns": _json_columns_of(table.schema)})
    return len(records)


def read_hf(path: Path) -> ImportResult:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except (OSError, ValueError) as exc:
        raise FormatError(path, f"cannot load as a Hugging Face dataset folder: {exc}") from exc
    if isinstance(loaded, datasets.DatasetDict):
        if len(loaded) != 1:
            raise FormatError(path, f"a DatasetDict with splits {list(loaded)}: import one split folder at a time")
        loaded = next(iter(loaded.values()))
    columns_file = path / HF_COLUMNS_FILE
    try:
        json_columns = _column_names(loads_strict(columns_file.read_text(encoding="utf-8"))["json_columns"]) if columns_file.exists() else []
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FormatError(path, f"{HF_COLUMNS_FILE} is not a list of JSON columns: {exc}") from exc
    batches = loaded.with_format("arrow")[:].to_batches(max_chunksize=_BATCH_ROWS)
    return collect(path, arrow_records(batches, str(path), MAX_RECORD_BYTES), _row_decoder(json_columns))
