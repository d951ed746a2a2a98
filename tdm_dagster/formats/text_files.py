"""JSONL, JSON and CSV: the formats people open in an editor or a spreadsheet."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from tdm_dagster.files.atomic import atomic_open
from tdm_dagster.formats.columns import encode_cell, plan_columns
from tdm_dagster.formats.imported import MAX_RECORD_BYTES, ImportResult, collect
from tdm_dagster.ingest.csv_reader import csv_records
from tdm_dagster.ingest.readers import read_records
from tdm_dagster.ingest.source import SourceRecord, read_issue, value_issue
from tdm_dagster.records.strict_json import JsonValueProblem, dumps_strict, loads_strict

JSON_COLUMN_SUFFIX = ":json"
"""CSV header suffix of a column whose cells are JSON text (nested values, numbers, ids
that are sometimes integers, keys some records lack); other columns are plain strings."""

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")


_LINE_SEPARATORS = {"\u2028": "\\u2028", "\u2029": "\\u2029"}


def write_jsonl(records: list[dict[str, Any]], path: Path) -> int:
    """One JSON object a line, UTF-8 as is, except U+2028/U+2029 escaped: readers that
    split lines the Unicode way (Python's ``str.splitlines``, JavaScript) would cut a
    record in two there. JSON decodes the escape to the same character."""
    with atomic_open(path) as handle:
        for record in records:
            line = dumps_strict(record, ensure_ascii=False)
            for raw, escaped in _LINE_SEPARATORS.items():
                line = line.replace(raw, escaped)
            handle.write(line + "\n")
    return len(records)


def read_jsonl(path: Path) -> ImportResult:
    return collect(path, read_records(path, max_record_bytes=MAX_RECORD_BYTES, suffix=".jsonl"))


def write_json(records: list[dict[str, Any]], path: Path) -> int:
    with atomic_open(path) as handle:
        handle.write(dumps_strict(records, ensure_ascii=False, indent=1))
        handle.write("\n")
    return len(records)


def read_json(path: Path) -> ImportResult:
    return collect(path, read_records(path, max_record_bytes=MAX_RECORD_BYTES, suffix=".json"))


def neutralise_formula(cell: str) -> str:
    """A cell as written to CSV: one that a spreadsheet would run as a formula (starting
    with ``= + - @``, tab or CR, per OWASP) gets a leading ``'``. So does one that already
    starts with ``'``, which makes the escape unambiguous: import removes exactly one
    leading ``'`` whenever there is one (``restore_formula``)."""
    return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell


def restore_formula(cell: str) -> str:
    """The cell as it was before ``neutralise_formula``."""
    return cell[1:] if cell.startswith("'") else cell


def write_csv(records: list[dict[str, Any]], path: Path) -> int:
    """Rows end in CRLF as RFC 4180 says: with ``\\n`` alone the csv module would leave a
    value holding a bare CR unquoted, and readers would split the row there."""
    columns = plan_columns(records, has_nulls=False)
    header = [c.name + (JSON_COLUMN_SUFFIX if c.kind == "json" else "") for c in columns]
    with atomic_open(path) as handle:
        writer = csv.writer(handle, lineterminator="\r\n")  # RFC 4180; it also makes the writer quote a lone CR
        writer.writerow([neutralise_formula(name) for name in header])
        for record in records:
            writer.writerow([neutralise_formula(encode_cell(record[c.name], c.kind)) if c.name in record else "" for c in columns])
    return len(records)


def _any_columns(header: list[str]) -> None:
    """CSV import takes whatever columns the file has."""


def _csv_row_record(source: SourceRecord) -> SourceRecord:
    """A CSV row as read (cells as strings) as its record: formula escapes undone,
    ``:json`` cells parsed as strict JSON, an empty ``:json`` cell a missing key."""
    record: dict[str, Any] = {}
    for name, cell in source.value.items():
        name, cell = restore_formula(name), restore_formula(cell)
        if not name.endswith(JSON_COLUMN_SUFFIX):
            record[name] = cell
        elif cell != "":
            column = name.removesuffix(JSON_COLUMN_SUFFIX)
            try:
                record[column] = loads_strict(cell)
            except JsonValueProblem as problem:
                issue = value_issue(problem, f"{source.where()}: column {name}")
                return replace(source, value=None, issue=replace(issue, field=f"{column}.{problem.field}".rstrip(".")))
            except json.JSONDecodeError as exc:
                issue = read_issue("invalid_json", f"{source.where()}: column {name} is not JSON: {exc.msg} at column {exc.colno}",
                                   f"a {JSON_COLUMN_SUFFIX} column holds JSON text; write strings in a plain column", column)  # fmt: skip
                return replace(source, value=None, issue=issue)
    return replace(source, value=record)


def read_csv(path: Path) -> ImportResult:
    rows = csv_records(path, str(path), MAX_RECORD_BYTES, header_problem=_any_columns)
    return collect(path, rows, _csv_row_record)
