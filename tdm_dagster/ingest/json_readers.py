"""JSON readers: ``.jsonl``/``.ndjson`` (one object per line; blank lines are not
records) and ``.json`` (one array of objects), both streamed in chunks so a huge file or
a huge record never sits in memory whole."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from tdm_dagster.ingest.source import RAW_PREVIEW_BYTES, FileProblem, SourceRecord, describe_place, read_issue, too_large_record
from tdm_dagster.ingest.text_bytes import parse_json_record, skip_byte_order_mark, skip_rest_of_line, strip_line_end

_CHUNK_BYTES = 1 << 20


def jsonl_records(path: Path, file: str, limit: int) -> Iterator[SourceRecord]:
    with path.open("rb") as stream:
        offset = skip_byte_order_mark(stream, file)
        line_no = index = 0
        while line := stream.readline(limit + 1):
            line_no += 1
            if len(line) > limit and not line.endswith(b"\n"):
                preview, size, line = line[:RAW_PREVIEW_BYTES], len(line), b""  # let go of the long head first
                rest, consumed = skip_rest_of_line(stream)
                offset += size + consumed
                yield too_large_record(file, line_no, index, preview, size + rest, limit)
                index += 1
                continue
            raw = strip_line_end(line)
            if raw.strip():
                place = describe_place(file, line_no, index)
                hint = "" if line.endswith(b"\n") else " (the last line has no newline: the file may be truncated)"
                value, issue = parse_json_record(raw, place, offset, line_no, truncation_hint=hint)
                yield SourceRecord(file, line_no, raw, value, issue, index)
                index += 1
            offset += len(line)


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
        self.buf_offset = skip_byte_order_mark(self.stream, self.file)
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
            return too_large_record(self.file, skipped.line, index, skipped.preview, size, self.limit)
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
            return too_large_record(self.file, line, index, raw, len(raw), self.limit)
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


def json_array_records(path: Path, file: str, limit: int) -> Iterator[SourceRecord]:
    with path.open("rb") as stream:
        yield from _JsonArraySplitter(stream, file, limit).records()

