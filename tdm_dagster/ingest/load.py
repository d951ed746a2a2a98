"""A file read and mapped into one batch: every input record has a position.

Position ``i`` of a loaded batch is one example (a seed task with three instances gives
three), or one record that could not be read or mapped (its record is ``None`` and its
issue says why), or, last, a problem with the rest of the file (truncated, unreadable).
So ``approved + rejected`` always equals the positions, and every position can be
traced to its place in the file and its exact bytes.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tdm_dagster.ingest.readers import read_records
from tdm_dagster.ingest.shapes import map_source
from tdm_dagster.ingest.source import FileProblem, SourceRecord
from tdm_dagster.records.issues import RecordIssue


def raw_field(raw: bytes) -> dict[str, str]:
    """The bytes as they arrived: as text when they are valid UTF-8, else base64."""
    try:
        return {"raw": raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {"raw_base64": base64.b64encode(raw).decode("ascii")}


@dataclass
class LoadedFile:
    path: str
    records: list[dict[str, Any] | None] = field(default_factory=list)
    specs: list[str | None] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)
    issues: dict[int, list[RecordIssue]] = field(default_factory=dict)
    input_records: int = 0
    """Records in the file as read (before seed tasks expand into their instances)."""
    file_problem: FileProblem | None = None
    has_more: bool = False
    """The file has records after ``limit``: they belong to the next part."""

    def _add(self, record: dict[str, Any] | None, spec: str | None, source: dict[str, Any], issue: RecordIssue | None) -> None:
        if issue is not None:
            self.issues[len(self.records)] = [issue]
        self.records.append(record)
        self.specs.append(spec)
        self.sources.append(source)


def _location(source: SourceRecord, sub_index: int | None = None) -> dict[str, Any]:
    where = {"file": source.file, "line": source.line, "index": source.index, "unit": source.unit}
    if sub_index is not None:
        where["instance"] = sub_index
    return where


def source_fields(source: SourceRecord, sub_index: int | None = None) -> dict[str, Any]:
    """Where a record came from and its bytes as they arrived, as kept beside a rejected record."""
    return {**_location(source, sub_index), **raw_field(source.raw)}


def iter_mapped(path: str | os.PathLike[str], *, max_record_bytes: int) -> Iterator[tuple[SourceRecord, list | RecordIssue]]:
    """Each record as read, with what it maps to (streamed: nothing is held)."""
    for source in read_records(path, max_record_bytes=max_record_bytes):
        yield source, map_source(source)


def _add_mapped(loaded: LoadedFile, source: SourceRecord, mapped: list | RecordIssue) -> None:
    loaded.input_records += 1
    if isinstance(mapped, RecordIssue):
        loaded._add(None, None, source_fields(source), mapped)
        return
    for example in mapped:
        loaded._add(example.record, example.spec, source_fields(source, example.sub_index), None)


def _add_problem(loaded: LoadedFile, path: str | os.PathLike[str], problem: FileProblem) -> None:
    loaded.file_problem = problem
    loaded._add(None, None, {"file": str(path), "records_read_before": problem.records_read}, problem.as_issue())


def load_file(
    path: str | os.PathLike[str], *, max_record_bytes: int = 8 * 1024 * 1024, start: int = 0, limit: int | None = None
) -> LoadedFile:
    """Input records ``start`` to ``start + limit`` of the file (all by default), streamed:
    earlier records are read past, not kept."""
    loaded = LoadedFile(str(path))
    try:
        for seen, (source, mapped) in enumerate(iter_mapped(path, max_record_bytes=max_record_bytes)):
            if seen < start:
                continue
            if limit is not None and loaded.input_records >= limit:
                loaded.has_more = True
                break
            _add_mapped(loaded, source, mapped)
    except FileProblem as problem:
        if problem.code == "read.empty_file" and start > 0:
            return loaded  # the previous part ended exactly at the end of the file
        _add_problem(loaded, path, problem)
    return loaded


def iter_parts(path: str | os.PathLike[str], *, max_record_bytes: int, part_records: int) -> Iterator[LoadedFile]:
    """The whole file as consecutive parts of ``part_records`` input records, read once
    (each part's positions count from 0): what ``load_file`` gives, a part at a time. The
    last part holds the file's problem, if any; an empty file gives one part."""
    part = LoadedFile(str(path))
    try:
        for source, mapped in iter_mapped(path, max_record_bytes=max_record_bytes):
            if part.input_records >= part_records:
                yield part
                part = LoadedFile(str(path))
            _add_mapped(part, source, mapped)
    except FileProblem as problem:
        _add_problem(part, path, problem)
    yield part
