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
"""

from __future__ import annotations

import codecs
import csv
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from tdm_dagster.ingest.shapes import columns_problem
from tdm_dagster.records.issues import RecordIssue
from tdm_dagster.records.strict_json import JsonValueProblem, loads_strict, value_problem

DEFAULT_MAX_RECORD_BYTES = 8 * 1024 * 1024
RAW_PREVIEW_BYTES = 1024
"""How much of a record over the limit is kept as its ``raw``, to show what it was."""

_CHUNK_BYTES = 1 << 20
_SKIP_CHUNK_BYTES = 64 * 1024
_PARQUET_BATCH_ROWS = 1024
_WIDE_BOMS = {  # UTF-32 first: its little-endian mark starts with UTF-16's
    codecs.BOM_UTF32_LE: "UTF-32",
    codecs.BOM_UTF32_BE: "UTF-32",
    codecs.BOM_UTF16_LE: "UTF-16",
    codecs.BOM_UTF16_BE: "UTF-16",
}


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


# --- checks shared by every text format ---------------------------------------------------


def _bytes_problem(raw: bytes, place: str, offset: int) -> RecordIssue | None:
    """A NUL byte or invalid UTF-8 in a record's bytes, with its byte offsets."""
    nul = raw.find(b"\0")
    if nul >= 0:
        return read_issue("nul_byte", f"{place}: NUL byte at byte {nul} of the record (byte {offset + nul} of the file)",
                          "the file looks binary or corrupted: re-export it as UTF-8 text")  # fmt: skip
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return read_issue("invalid_utf8", f"{place}: invalid UTF-8 at byte {exc.start} of the record "
                          f"(byte {offset + exc.start} of the file): {exc.reason}", "re-export the file as UTF-8")  # fmt: skip
    return None


def parse_json_record(raw: bytes, place: str, offset: int, line: int, *, truncation_hint: str = "") -> tuple[Any, RecordIssue | None]:
    """Parse one record's bytes into a strict JSON object (``loads_strict``), or say why not."""
    problem = _bytes_problem(raw, place, offset)
    if problem:
        return None, problem
    try:
        value = loads_strict(raw.decode("utf-8"))
    except JsonValueProblem as refused:
        return None, value_issue(refused, place)
    except json.JSONDecodeError as exc:
        at = f"line {line + exc.lineno - 1} column {exc.colno}"
        return None, read_issue("invalid_json", f"{place}: invalid JSON at {at}: {exc.msg}{truncation_hint}",
                                "fix the record's JSON syntax (a truncated file cuts the last record)")  # fmt: skip
    if not isinstance(value, dict):
        kind = {list: "an array", str: "a string", type(None): "null", bool: "a boolean"}.get(type(value), "a number")
        return None, read_issue("not_an_object", f"{place}: record is {kind}, not a JSON object",
                                "each record must be a JSON object such as {\"instruction\": ..., \"output\": ...}")  # fmt: skip
    return value, None


def _too_large(file: str, line: int, index: int, preview: bytes, size: int, limit: int, unit: str = "line") -> SourceRecord:
    place = describe_place(file, line, index, unit)
    issue = read_issue("too_large", f"{place}: record is {size} bytes, over the limit {limit} bytes",
                       "split the record, or raise max_record_bytes if records this big are expected")  # fmt: skip
    return SourceRecord(file, line, preview[:RAW_PREVIEW_BYTES], None, issue, index, unit)


def _skip_byte_order_mark(stream: BinaryIO, file: str) -> int:
    """Skip a UTF-8 byte order mark; refuse UTF-16/32 text. Returns the bytes skipped."""
    start = stream.peek(4)[:4]
    for mark, encoding in _WIDE_BOMS.items():
        if start.startswith(mark):
            raise FileProblem(file, "unsupported_encoding", f"file is {encoding} text (byte order mark {mark.hex()})",
                              "re-export the file as UTF-8")  # fmt: skip
    if start.startswith(codecs.BOM_UTF8):
        stream.read(len(codecs.BOM_UTF8))
        return len(codecs.BOM_UTF8)
    return 0


def _skip_rest_of_line(stream: BinaryIO) -> tuple[int, int]:
    """Read past the rest of an over-long line chunk by chunk: (content bytes, bytes consumed)."""
    consumed = 0
    while chunk := stream.readline(_SKIP_CHUNK_BYTES):
        consumed += len(chunk)
        if chunk.endswith(b"\n"):
            return consumed - 1, consumed
    return consumed, consumed


def _strip_line_end(line: bytes) -> bytes:
    return line[:-2] if line.endswith(b"\r\n") else line[:-1] if line.endswith(b"\n") else line


# --- JSON lines -------------------------------------------------------------------------


def _jsonl_records(path: Path, file: str, limit: int) -> Iterator[SourceRecord]:
    with path.open("rb") as stream:
        offset = _skip_byte_order_mark(stream, file)
        line_no = index = 0
        while line := stream.readline(limit + 1):
            line_no += 1
            if len(line) > limit and not line.endswith(b"\n"):
                preview, size, line = line[:RAW_PREVIEW_BYTES], len(line), b""  # let go of the long head first
                rest, consumed = _skip_rest_of_line(stream)
                offset += size + consumed
                yield _too_large(file, line_no, index, preview, size + rest, limit)
                index += 1
                continue
            raw = _strip_line_end(line)
            if raw.strip():
                place = describe_place(file, line_no, index)
                hint = "" if line.endswith(b"\n") else " (the last line has no newline: the file may be truncated)"
                value, issue = parse_json_record(raw, place, offset, line_no, truncation_hint=hint)
                yield SourceRecord(file, line_no, raw, value, issue, index)
                index += 1
            offset += len(line)


# --- JSON array -------------------------------------------------------------------------

_QUOTE, _COMMA, _CLOSE_ARRAY = ord('"'), ord(","), ord("]")
_OPENERS, _CLOSERS = frozenset(b"[{"), frozenset(b"]}")
_WHITESPACE = b" \t\r\n"
_STRING_BODY = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*', re.DOTALL)
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|["\[\]{},]', re.DOTALL)
"""A whole string, or a structural byte (a lone quote: a string running on past the buffer)."""
_NON_SPACE = re.compile(rb"[^ \t\r\n]")


@dataclass
class _Skipping:
    """An element over the limit, streaming past: where it started and its first bytes."""

    line: int
    offset: int
    preview: bytes


class _JsonArraySplitter:
    """Cuts a JSON array into its elements' bytes, reading the file in chunks.

    It tracks only strings and bracket depth to find the commas between elements, then
    ``json`` parses each element on its own: one broken element is one rejected record
    and the rest of the array is still read, and an element over the limit is measured
    and dropped as it streams past instead of being held.
    """

    def __init__(self, stream: BinaryIO, file: str, limit: int) -> None:
        self.stream, self.file, self.limit = stream, file, limit
        self.buf = bytearray()
        self.pos = 0
        """Scan position in ``buf``."""
        self.buf_offset = 0
        """File offset of ``buf[0]``."""
        self.line, self.counted = 1, 0
        """``line`` is the line number at ``buf[counted]``; newlines are counted as positions are asked for."""
        self.element_start: int | None = None
        """Where in ``buf`` the current element's bytes begin (None while skipping one)."""
        self.skipping: _Skipping | None = None
        self.eof = False

    def records(self) -> Iterator[SourceRecord]:
        self.buf_offset = _skip_byte_order_mark(self.stream, self.file)
        if not self._open_array():
            return
        index, end = 0, None
        while True:
            self.element_start = self.pos
            end = self._scan_to_boundary()
            record = self._element(index, end)
            if record is not None:
                yield record
                index += 1
            if end != _COMMA:
                break
        if end is None:
            raise FileProblem(self.file, "truncated_file",
                              f"file ends at line {self._line_at(len(self.buf))} inside the JSON array (no closing ']')",
                              "the file is probably cut off: copy or export it again")  # fmt: skip
        self._expect_nothing_after_array()

    def _line_at(self, position: int) -> int:
        self.line += self.buf.count(b"\n", self.counted, position)
        self.counted = position
        return self.line

    def _fill(self) -> bool:
        """Read one more chunk, first dropping bytes nothing needs any more; False at end of file."""
        if self.eof:
            return False
        if self.element_start is not None and len(self.buf) - self.element_start > self.limit:
            self._start_skipping()
        keep = self.pos if self.element_start is None else self.element_start
        self._line_at(keep)
        del self.buf[:keep]
        self.buf_offset += keep
        self.pos -= keep
        self.counted -= keep
        if self.element_start is not None:
            self.element_start -= keep
        chunk = self.stream.read(_CHUNK_BYTES)
        self.buf += chunk
        self.eof = not chunk
        return bool(chunk)

    def _start_skipping(self) -> None:
        assert self.element_start is not None
        first = _NON_SPACE.search(self.buf, self.element_start)
        start = first.start() if first else self.element_start
        preview = bytes(self.buf[start : start + RAW_PREVIEW_BYTES])
        self.skipping = _Skipping(self._line_at(start), self.buf_offset + start, preview)
        self.element_start = None

    def _open_array(self) -> bool:
        """Move past the opening '['; False for a file of only whitespace."""
        while (first := _NON_SPACE.search(self.buf, self.pos)) is None:
            self.pos = len(self.buf)
            if not self._fill():
                return False
        if self.buf[first.start()] != ord("["):
            found = chr(self.buf[first.start()])
            hint = "; for one object per line, name the file .jsonl" if found == "{" else ""
            raise FileProblem(self.file, "not_an_array",
                              f"a .json file must hold a JSON array of records, but line {self._line_at(first.start())} "
                              f"starts with {found!r}", f"wrap the records in [ ... ]{hint}")  # fmt: skip
        self.pos = first.end()
        return True

    def _scan_to_boundary(self) -> int | None:
        """Advance past the current element to the ',' or ']' that ends it; that byte, or None at end of file."""
        depth, in_string = 0, False
        buf = self.buf
        while True:
            if in_string:
                self.pos = _STRING_BODY.match(buf, self.pos).end()  # type: ignore[union-attr]  # always matches
                if self.pos < len(buf) and buf[self.pos] == _QUOTE:
                    in_string = False
                    self.pos += 1
                elif not self._fill():  # the string, or an escape in it, goes on in the next chunk
                    return None
                continue
            found = _TOKEN.search(buf, self.pos)
            if found is None:
                self.pos = len(buf)
                if not self._fill():
                    return None
                continue
            byte = buf[found.start()]
            self.pos = found.end()
            if byte == _QUOTE:
                in_string = found.end() - found.start() == 1  # a lone quote: the string goes on past the buffer
            elif byte in _OPENERS:
                depth += 1
            elif depth == 0 and byte in (_COMMA, _CLOSE_ARRAY):
                return byte
            elif byte in _CLOSERS:
                depth = max(depth - 1, 0)  # a stray closer stays inside this element, which then fails to parse

    def _element(self, index: int, end: int | None) -> SourceRecord | None:
        """The record for the element just scanned; None where there is none (``[]``, a trailing comma)."""
        stop = len(self.buf) if end is None else self.pos - 1
        if self.skipping is not None:
            skipped, self.skipping = self.skipping, None
            size = self.buf_offset + stop - skipped.offset
            return _too_large(self.file, skipped.line, index, skipped.preview, size, self.limit)
        assert self.element_start is not None
        first = _NON_SPACE.search(self.buf, self.element_start, stop)
        if first is None:
            if end != _COMMA:
                return None
            return self._empty_element(index)
        start = first.start()
        raw = bytes(self.buf[start:stop]).rstrip(_WHITESPACE)
        line, offset = self._line_at(start), self.buf_offset + start
        if len(raw) > self.limit:
            return _too_large(self.file, line, index, raw, len(raw), self.limit)
        place = describe_place(self.file, line, index)
        value, issue = parse_json_record(raw, place, offset, line)
        if end is None and issue is not None and issue.code == "read.invalid_json":
            issue = read_issue("truncated", f"{place}: the file ends inside this record ({len(raw)} bytes read)",
                               "the file is probably cut off: copy or export it again")  # fmt: skip
        return SourceRecord(self.file, line, raw, value, issue, index)

    def _empty_element(self, index: int) -> SourceRecord:
        line = self._line_at(self.pos - 1)
        place = describe_place(self.file, line, index)
        issue = read_issue("invalid_json", f"{place}: empty array element (two commas in a row?)", "remove the extra comma")
        return SourceRecord(self.file, line, b"", None, issue, index)

    def _expect_nothing_after_array(self) -> None:
        self.element_start = None
        while (extra := _NON_SPACE.search(self.buf, self.pos)) is None:
            self.pos = len(self.buf)
            if not self._fill():
                return
        start = extra.start()
        shown = bytes(self.buf[start : start + 40]).decode("utf-8", "replace")
        raise FileProblem(self.file, "trailing_content",
                          f"unexpected content after the array's closing ']' at line {self._line_at(start)}: {shown!r}",
                          "a .json file holds one JSON array; check for a stray ']' or two arrays in one file")  # fmt: skip


def _json_array_records(path: Path, file: str, limit: int) -> Iterator[SourceRecord]:
    with path.open("rb") as stream:
        yield from _JsonArraySplitter(stream, file, limit).records()


# --- CSV ----------------------------------------------------------------------------------


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
        return _strip_line_end(b"".join(self.row_parts))

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
        size, ending = len(line), len(line) - len(_strip_line_end(line))
        if size > self.limit and not line.endswith(b"\n"):
            content, consumed = _skip_rest_of_line(self.stream)
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
        lines = _CsvLines(stream, limit, _skip_byte_order_mark(stream, file))
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
    problem = _bytes_problem(lines.row_raw, f"header line {lines.line_no}", lines.row_offset)
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
        return _too_large(file, line, index, raw, lines.row_content_size, lines.limit)
    place = describe_place(file, line, index)
    issue = _bytes_problem(raw, place, lines.row_offset)
    if issue is None and row is None:
        issue = read_issue("bad_csv", f"{place}: {error}",
                           "check the row's quoting: a quote opened and never closed runs to the end of the file")  # fmt: skip
    if issue is None and row is not None and len(row) != len(header):
        issue = read_issue("ragged_row", f"{place}: row has {len(row)} columns, expected {len(header)} ({', '.join(header)})",
                           "quote values that contain commas, and give every row one value per column")  # fmt: skip
    value = dict(zip(header, row)) if issue is None and row is not None else None
    return SourceRecord(file, line, raw, value, issue, index)


# --- Parquet -----------------------------------------------------------------------------


def _parquet_records(path: Path, file: str, limit: int) -> Iterator[SourceRecord]:
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
                    yield _too_large(file, index + 1, index, raw, len(raw), limit, unit="row")
                else:
                    yield SourceRecord(file, index + 1, raw, row, None, index, unit="row")
                index += 1
    except (pa.ArrowException, OSError) as exc:
        raise FileProblem(file, "corrupt_file", f"cannot read past row {index}: {exc}", "check the file is complete Parquet") from exc


Reader = Callable[[Path, str, int], Iterator[SourceRecord]]
_READERS: dict[str, Reader] = {
    ".jsonl": _jsonl_records,
    ".ndjson": _jsonl_records,
    ".json": _json_array_records,
    ".csv": csv_records,
    ".parquet": _parquet_records,
}
SUPPORTED_EXTENSIONS = tuple(_READERS)

__all__ = [
    "DEFAULT_MAX_RECORD_BYTES",
    "RAW_PREVIEW_BYTES",
    "SUPPORTED_EXTENSIONS",
    "FileProblem",
    "SourceRecord",
    "describe_place",
    "read_records",
]
