"""Parquet and Hugging Face ``datasets`` folders: both are Arrow tables underneath.

Columns are stored as planned in ``columns``: strings, native chats, or JSON text. Which
string columns hold JSON is recorded beside the data: in the Parquet schema metadata,
and in a ``tdm_columns.json`` file in the dataset folder (``datasets`` drops custom
schema metadata on save). A Parquet file or dataset made elsewhere has no such record:
its values come back as Arrow gives them, with nulls dropped as missing keys.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tdm_dagster.atomic import atomic_open, atomic_write_json
from tdm_dagster.formats.columns import (
    Column,
    encode_cell,
    plan_columns,
    rows_to_records,
)
from tdm_dagster.formats.errors import FormatError
from tdm_dagster.formats.files import atomic_directory

if TYPE_CHECKING:
    import pyarrow as pa

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


def _json_columns_of(table: pa.Table) -> list[str]:
    """The JSON-text columns ``records_to_table`` recorded (none for a foreign file)."""
    return json.loads((table.schema.metadata or {}).get(JSON_COLUMNS_KEY.encode(), b"[]"))


def table_to_records(path: Path, table: pa.Table, json_columns: list[str]) -> list[dict[str, Any]]:
    columns = [Column(name, "json" if name in json_columns else "text") for name in table.column_names]
    rows = zip(*(table.column(name).to_pylist() for name in table.column_names), strict=True)
    try:
        return rows_to_records(columns, list(rows))
    except json.JSONDecodeError as exc:
        raise FormatError(path, f"a column recorded as JSON holds a value that is not JSON: {exc}") from exc


def write_parquet(records: list[dict[str, Any]], path: Path) -> int:
    import pyarrow.parquet as pq

    with atomic_open(path, "wb") as handle:
        pq.write_table(records_to_table(records), handle)
    return len(records)


def read_parquet(path: Path) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise FormatError(path, f"cannot read as Parquet: {exc}") from exc
    return table_to_records(path, table, _json_columns_of(table))


def write_hf(records: list[dict[str, Any]], path: Path) -> int:
    """Save with ``Dataset.save_to_disk``; ``datasets.load_from_disk(path)`` reads it."""
    import datasets

    table = records_to_table(records)
    with atomic_directory(path) as staging:
        datasets.Dataset(table).save_to_disk(str(staging))
        atomic_write_json(staging / HF_COLUMNS_FILE, {"json_columns": _json_columns_of(table)})
    return len(records)


def read_hf(path: Path) -> list[dict[str, Any]]:
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
    json_columns = json.loads(columns_file.read_text(encoding="utf-8"))["json_columns"] if columns_file.exists() else []
    return table_to_records(path, loaded.with_format("arrow")[:], json_columns)
