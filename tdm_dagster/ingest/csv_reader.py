"""The CSV reader: a header row naming the columns, then one record per row (values stay
strings), streamed line by line with ragged rows, bad quoting and over-long rows each
rejected on their own."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from tdm_dagster.ingest.shapes import columns_problem
from tdm_dagster.ingest.source import RAW_PREVIEW_BYTES, FileProblem, SourceRecord, describe_place, read_issue, too_large_record
from tdm_dagster.ingest.text_bytes import bytes_problem, skip_byte_order_mark, skip_rest_of_line, strip_line_end


class _CsvLines:
    """The csv module's line source: decodes each line and keeps the raw bytes of the current row.

    A physical line over the limit is measured and skipped past (the csv module sees only
    its first bytes), and once a row passes the limit only a preview of it is kept.
    """

    def __init__(self, stream: BinaryIO, limit: int, offset: int) -> None:
        self.stream, self.limit, self.offset = stream, limit, offset
        self.line_no = 0
        self.start_row()

    def start_row(self) -> None:
        self.row_line, self.row_offset = self.line_no + 1, self.offset
        self.row_parts: list[bytes] = []
        self.row_size = self.row_ending = 0

    @property
    def row_raw(self) -> bytes:
        return strip_line_end(b"".join(self.row_parts))

    @property
    def row_content_size(self) -> int:
        """The row's bytes without its final line terminator."""
        return self.row_size - self.row_ending

    def __iter__(self) -> _CsvLines:
        return self

    def __next__(self) -> str:
        line = self.stream.readline(self.limit + 1)
        if not line:
            raise StopIteration
        self.line_no += 1
        size, ending = len(line), len(line) - len(strip_line_end(line))
        if size > self.limit and not line.endswith(b"\n"):
            content, consumed = skip_rest_of_line(self.stream)
            size, ending = size + consumed, consumed - content
            line += b"\n"
        within_limit_before = self.row_size <= self.limit
        self.offset += size
        self.row_size += size
        self.row_ending = ending
        if self.row_size <= self.limit:
            self.row_parts.append(line)
        elif within_limit_before:
            self.row_parts = [b"".join([*self.row_parts, line[:RAW_PREVIEW_BYTES]])[:RAW_PREVIEW_BYTES]]
        return line.decode("utf-8", "replace")


def csv_records(
    path: Path, file: str, limit: int, *, header_problem: Callable[[list[str]], str | None] = columns_problem
) -> Iterator[SourceRecord]:
    """One record per CSV row, values as the header names them (strings). ``header_problem``
    says why a header is unacceptable (default: it fits no shape we map), or returns None."""
    csv.field_size_limit(max(csv.field_size_limit(), limit))  # process-wide; only ever raised
    with path.open("rb") as stream:
        lines = _CsvLines(stream, limit, skip_byte_order_mark(stream, file))
        rows = csv.reader(lines, strict=True)
        header = _csv_header(rows, lines, file, header_problem)
        if header is None:
            return
        index = 0
        while True:
            lines.start_row()
            try:
                row, error = next(rows), ""
            except StopIteration:
                return
            except csv.Error as exc:
                row, error = None, str(exc)
            if row == []:  # a blank line
                continue
            yield _csv_record(file, lines, index, header, row, error)
            index += 1


def _csv_header(
    rows: Iterator[list[str]], lines: _CsvLines, file: str, header_problem: Callable[[list[str]], str | None]
) -> list[str] | None:
    """The first non-blank row, checked: unique column names that ``header_problem`` accepts."""
    try:
        header = next((row for row in rows if row), None)
    except csv.Error as exc:
        raise FileProblem(file, "bad_header", f"cannot read the header row: {exc}", "fix the CSV header") from exc
    if header is None:
        return None
    problem = bytes_problem(lines.row_raw, f"header line {lines.line_no}", lines.row_offset)
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if problem is None and duplicates:
        problem = read_issue("bad_header", f"header repeats column(s) {duplicates}", "give every column its own name")
    if problem is None and (mismatch := header_problem(header)):
        problem = read_issue("unexpected_schema", mismatch, "rename the columns to one of those shapes")
    if problem:
        raise FileProblem(file, problem.code.removeprefix("read."), problem.message, problem.suggestion)
    return header


def _csv_record(file: str, lines: _CsvLines, index: int, header: list[str], row: list[str] | None, error: str) -> SourceRecord:
    line, raw = lines.row_line, lines.row_raw
    if lines.row_content_size > lines.limit:
        return too_large_record(file, line, index, raw, lines.row_content_size, lines.limit)
    place = describe_place(file, line, index)
    issue = bytes_problem(raw, place, lines.row_offset)
    if issue is None and row is None:
        issue = read_issue("bad_csv", f"{place}: {error}",
                           "check the row's quoting: a quote opened and never closed runs to the end of the file")  # fmt: skip
    if issue is None and row is not None and len(row) != len(header):
        issue = read_issue("ragged_row", f"{place}: row has {len(row)} columns, expected {len(header)} ({', '.join(header)})",
                           "quote values that contain commas, and give every row one value per column")  # fmt: skip
    value = dict(zip(header, row)) if issue is None and row is not None else None
    return SourceRecord(file, line, raw, value, issue, index)

