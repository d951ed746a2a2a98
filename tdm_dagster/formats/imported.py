"""What an import read: the records it takes, and each one it cannot take, with why and its bytes.

Imports read record by record through the inbox's readers (``tdm_dagster.ingest.readers``),
so one bad record (invalid JSON, NaN, a lone surrogate, nesting too deep, a value JSON has
no type for) is rejected with its place and reason and the rest of the file is still
imported. Only a problem with the whole file (unreadable, not the format, cut off) raises
``FormatError``, and then nothing is imported.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from tdm_dagster.formats.errors import FormatError
from tdm_dagster.ingest.readers import DEFAULT_MAX_RECORD_BYTES
from tdm_dagster.ingest.source import RAW_PREVIEW_BYTES, FileProblem, SourceRecord, read_issue, value_issue
from tdm_dagster.ingest.load import source_fields
from tdm_dagster.records.strict_json import value_problem

MAX_RECORD_BYTES = DEFAULT_MAX_RECORD_BYTES
"""A bigger single record is rejected, as in the inbox."""



def _preview_repr() -> reprlib.Repr:
    """Shows a rejected record that has no bytes of its own (it came from a pickle): bounded, however deep or big."""
    preview = reprlib.Repr()
    preview.maxlevel, preview.maxdict, preview.maxlist, preview.maxstring, preview.maxother = 20, 50, 50, RAW_PREVIEW_BYTES, 200
    return preview


_PREVIEW = _preview_repr()


@dataclass
class ImportResult:
    records: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[SourceRecord] = field(default_factory=list)
    """Records as read whose ``issue`` says why they were not imported; ``raw`` keeps their bytes."""
    sources: list[SourceRecord] = field(default_factory=list)
    """Where each of ``records`` was read, aligned with it (so a later rejection, e.g. by
    the gate, can keep the record's place and bytes)."""
    reasons: dict[int, list[Any]] = field(default_factory=dict)
    """All the reasons of ``rejected[i]`` when it has more than its ``issue`` (the gate's)."""

    @property
    def input_records(self) -> int:
        return len(self.records) + len(self.rejected)

    def rejected_rows(self) -> list[dict[str, Any]]:
        """The rejected records as kept in ``rejected/``: place, reasons, bytes as they arrived."""
        return [
            {"line": source.line, "reasons": [asdict(issue) for issue in self.reasons.get(i, [source.issue])], "source": source_fields(source)}
            for i, source in enumerate(self.rejected)
        ]

    def extend(self, other: ImportResult) -> None:
        self.reasons.update({len(self.rejected) + i: found for i, found in other.reasons.items()})
        self.records.extend(other.records)
        self.rejected.extend(other.rejected)
        self.sources.extend(other.sources)

    def keep_only(self, keep: list[bool], reasons: dict[int, list[Any]]) -> None:
        """Reject the records whose ``keep`` is false, each with ``reasons[position]``
        (its first reason becomes its ``issue``)."""
        for position, (source, kept) in enumerate(zip(self.sources, keep)):
            if not kept:
                self.reasons[len(self.rejected)] = reasons[position]
                self.rejected.append(replace(source, value=None, issue=reasons[position][0]))
        self.records = [record for record, kept in zip(self.records, keep) if kept]
        self.sources = [source for source, kept in zip(self.sources, keep) if kept]


def collect(path: Path, sources: Iterable[SourceRecord], decode: Callable[[SourceRecord], SourceRecord] | None = None) -> ImportResult:
    """Sort records as read into imported and rejected; ``decode`` turns a read record into
    its final form (or a rejection). A file with no records imports none."""
    result = ImportResult()
    try:
        for source in sources:
            if decode is not None and source.issue is None:
                source = decode(source)
            if source.issue is None:
                result.records.append(source.value)
                result.sources.append(source)
            else:
                result.rejected.append(source)
    except FileProblem as problem:
        if problem.code != "read.empty_file":
            raise FormatError(path, f"{problem.message} ({problem.suggestion}); nothing imported") from problem
    return result


def checked(path: Path, records: Iterable[Any], unit: str) -> ImportResult:
    """Records from a format that is not JSON text (spaCy, pickle), each checked to be a
    strict JSON object; ``unit`` names what a position counts (``doc``, ``record``)."""
    result = ImportResult()
    for index, record in enumerate(records):
        place = f"{path} {unit} {index + 1}"
        raw = _PREVIEW.repr(record)[:RAW_PREVIEW_BYTES].encode("utf-8", "backslashreplace")
        if not isinstance(record, dict):
            issue = read_issue("not_an_object", f"{place}: a {type(record).__name__}, not a dict record", "give each record as a dict")
        elif (problem := value_problem(record)) is not None:
            issue = value_issue(problem, place)
        else:
            result.records.append(record)
            result.sources.append(SourceRecord(str(path), index + 1, raw, record, None, index, unit))
            continue
        result.rejected.append(SourceRecord(str(path), index + 1, raw, None, issue, index, unit))
    return result
