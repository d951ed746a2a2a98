"""What every text format's reader shares: byte order marks, line ends, and the checks of
one record's bytes (NUL bytes, invalid UTF-8, strict JSON) with their byte offsets."""

from __future__ import annotations

import codecs
import json
from typing import Any, BinaryIO

from tdm_dagster.ingest.source import FileProblem, read_issue, value_issue
from tdm_dagster.records.issues import RecordIssue
from tdm_dagster.records.strict_json import JsonValueProblem, loads_strict

_SKIP_CHUNK_BYTES = 64 * 1024
_WIDE_BOMS = {  # UTF-32 first: its little-endian mark starts with UTF-16's
    codecs.BOM_UTF32_LE: "UTF-32",
    codecs.BOM_UTF32_BE: "UTF-32",
    codecs.BOM_UTF16_LE: "UTF-16",
    codecs.BOM_UTF16_BE: "UTF-16",
}


def bytes_problem(raw: bytes, place: str, offset: int) -> RecordIssue | None:
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
    problem = bytes_problem(raw, place, offset)
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


def skip_byte_order_mark(stream: BinaryIO, file: str) -> int:
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


def skip_rest_of_line(stream: BinaryIO) -> tuple[int, int]:
    """Read past the rest of an over-long line chunk by chunk: (content bytes, bytes consumed)."""
    consumed = 0
    while chunk := stream.readline(_SKIP_CHUNK_BYTES):
        consumed += len(chunk)
        if chunk.endswith(b"\n"):
            return consumed - 1, consumed
    return consumed, consumed


def strip_line_end(line: bytes) -> bytes:
    return line[:-2] if line.endswith(b"\r\n") else line[:-1] if line.endswith(b"\n") else line

