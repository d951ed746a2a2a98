"""A record as read from a source file, and the problems reading one can find.

Every reader (``tdm_dagster.ingest.readers`` and its per-format modules, the
``tdm_dagster.formats`` importers) yields ``SourceRecord``s and raises ``FileProblem``;
``tdm_dagster.ingest.shapes`` maps them. They live here, apart from any reader, so that
mapping a record never needs the code that read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tdm_dagster.records.issues import RecordIssue
from tdm_dagster.records.strict_json import JsonValueProblem

RAW_PREVIEW_BYTES = 1024
"""How much of a record over the limit is kept as its ``raw``, to show what it was."""


def read_issue(code: str, message: str, suggestion: str, field: str = "") -> RecordIssue:
    return RecordIssue("read", f"read.{code}", message, field, severity="ERROR", suggestion=suggestion)


def value_issue(problem: JsonValueProblem, place: str) -> RecordIssue:
    """A value that is not strict JSON (NaN, a lone surrogate, nesting too deep, ...) as a read issue at ``place``."""
    return read_issue(problem.code, f"{place}: {problem}", problem.suggestion, problem.field)


def describe_place(file: str, line: int, index: int, unit: str = "line", sub_index: int | None = None) -> str:
    """Where a record is, for messages: ``data.json line 12, record #3 (instance #1)``."""
    place = f"{file} {unit} {line}, record #{index}"
    return place if sub_index is None else f"{place} (instance #{sub_index})"


@dataclass(frozen=True)
class SourceRecord:
    """One record as read from a file: exactly one of ``value`` and ``issue`` is set."""

    file: str
    line: int
    """Line where the record starts (JSONL, JSON array, CSV), or its 1-based row (Parquet)."""
    raw: bytes
    """The record as it arrived, line terminator excluded (Parquet: the row as JSON); for a
    record over the limit only its first ``RAW_PREVIEW_BYTES``."""
    value: Any | None
    issue: RecordIssue | None
    index: int
    """0-based position among the file's records (for a JSON array, the element index)."""
    unit: str = "line"
    """What ``line`` counts: ``line``, or ``row`` for Parquet."""

    def where(self, sub_index: int | None = None) -> str:
        return describe_place(self.file, self.line, self.index, self.unit, sub_index)


class FileProblem(Exception):
    """A problem with a whole file rather than one record.

    Raised while iterating ``read_records``: the ``records_read`` records yielded before
    it were read and stand; nothing after it could be.
    """

    def __init__(self, file: str, code: str, message: str, suggestion: str, records_read: int = 0) -> None:
        super().__init__(f"{file}: {message}")
        self.file, self.code, self.message, self.suggestion = file, f"read.{code}", message, suggestion
        self.records_read = records_read

    def as_issue(self) -> RecordIssue:
        return RecordIssue("read", self.code, str(self), "", severity="ERROR", suggestion=self.suggestion)


def too_large_record(file: str, line: int, index: int, preview: bytes, size: int, limit: int, unit: str = "line") -> SourceRecord:
    """A record rejected for its size: only its first ``RAW_PREVIEW_BYTES`` are kept."""
    place = describe_place(file, line, index, unit)
    issue = read_issue("too_large", f"{place}: record is {size} bytes, over the limit {limit} bytes",
                       "split the record, or raise max_record_bytes if records this big are expected")  # fmt: skip
    return SourceRecord(file, line, preview[:RAW_PREVIEW_BYTES], None, issue, index, unit)

