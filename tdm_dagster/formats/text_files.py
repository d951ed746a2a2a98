"""JSONL, JSON and CSV: the formats people open in an editor or a spreadsheet."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

from tdm_dagster.atomic import atomic_open
from tdm_dagster.formats.columns import (
    Column,
    encode_cell,
    plan_columns,
    rows_to_records,
)
from tdm_dagster.formats.errors import FormatError

JSON_COLUMN_SUFFIX = ":json"
"""CSV header suffix of a column whose cells are JSON text (nested values, numbers, ids
that are sometimes integers, keys some records lack); other columns are plain strings."""


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(path, f"cannot read: {exc}") from exc


def _require_object(path: Path, value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FormatError(path, f"{where}: expected a JSON object, got {type(value).__name__}")
    return value


_LINE_SEPARATORS = {"\u2028": "\\u2028", "\u2029": "\\u2029"}


def write_jsonl(records: list[dict[str, Any]], path: Path) -> int:
    """One JSON object a line, UTF-8 as is, except U+2028/U+2029 escaped: readers that
    split lines the Unicode way (Python's ``str.splitlines``, JavaScript) would cut a
    record in two there. JSON decodes the escape to the same character."""
    with atomic_open(path) as handle:
        for record in records:
            line = json.dumps(record, ensure_ascii=False)
            for raw, escaped in _LINE_SEPARATORS.items():
                line = line.replace(raw, escaped)
            handle.write(line + "\n")
    return len(records)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    records = []
    for number, line in enumerate(_read_text(path).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise FormatError(path, f"line {number}: not valid JSON ({exc.msg})") from exc
        records.append(_require_object(path, value, f"line {number}"))
    return records


def write_json(records: list[dict[str, Any]], path: Path) -> int:
    with atomic_open(path) as handle:
        json.dump(records, handle, ensure_ascii=False, indent=1)
        handle.write("\n")
    return len(records)


def read_json(path: Path) -> list[dict[str, Any]]:
    try:
        value = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise FormatError(path, f"not valid JSON: {exc}") from exc
    if not isinstance(value, list):
        raise FormatError(path, f"expected a JSON array of records, got {type(value).__name__}")
    return [_require_object(path, item, f"record {position}") for position, item in enumerate(value)]


def write_csv(records: list[dict[str, Any]], path: Path) -> int:
    columns = plan_columns(records, has_nulls=False)
    header = [c.name + (JSON_COLUMN_SUFFIX if c.kind == "json" else "") for c in columns]
    with atomic_open(path) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        for record in records:
            writer.writerow([encode_cell(record[c.name], c.kind) if c.name in record else "" for c in columns])
    return len(records)


def read_csv(path: Path) -> list[dict[str, Any]]:
    csv.field_size_limit(sys.maxsize)
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise FormatError(path, f"cannot read as CSV: {exc}") from exc
    if not rows:
        raise FormatError(path, "empty file: no header row")
    columns = [
        Column(name.removesuffix(JSON_COLUMN_SUFFIX), "json" if name.endswith(JSON_COLUMN_SUFFIX) else "text") for name in rows[0]
    ]
    cells = []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(columns):
            raise FormatError(path, f"row {number}: {len(row)} cells for {len(columns)} columns")
        cells.append([None if c.kind == "json" and cell == "" else cell for c, cell in zip(columns, row, strict=True)])
    try:
        return rows_to_records(columns, cells)
    except json.JSONDecodeError as exc:
        raise FormatError(path, f"a {JSON_COLUMN_SUFFIX} column holds a cell that is not JSON: {exc}") from exc
