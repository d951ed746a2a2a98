"""Structural checks of replies: code blocks closed, brackets balanced, markdown well formed.

A generator cut off mid-reply, or one that lost track of its own nesting, leaves marks a
careful reader sees at once: a code block that never closes, a parenthesis opened and
never closed, bold that runs to the end, a table whose rows do not fit its header. Each
check reads every assistant turn (its reading view) and names the rule, the turn, the
offset and what it found.

What real data does that must not count (measured on GSM8K, GPTeacher roleplay and the
Alpaca seed tasks): brackets inside code (fenced or inline) and quoted single
characters (``"("``) are not text; smileys (``:)``, ``;-(``, ``=]``) and list markers
(``1)``, ``a)`` after a line start or a space) are not brackets; roleplay's single
asterisks (``*waves*``) are not judged, only ``**`` emphasis, and only where it can
open or close (``2**3`` and a lone ``**`` between spaces are not emphasis).

Severities: an unclosed code block is an ERROR (everything after its fence renders as
code: the reply was cut off, or its end is lost); unbalanced brackets, unclosed
emphasis and a broken table are WARNINGs (the text is still readable, and real data has
the odd typo of this kind; the record is kept a tier lower).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from tdm_dagster.gate.record_checks.registry import register_quality_check
from tdm_dagster.records.issues import RecordIssue

UNCLOSED_CODE_BLOCK = "structure.unclosed_code_block"
UNBALANCED_BRACKETS = "structure.unbalanced_brackets"
UNCLOSED_EMPHASIS = "structure.unclosed_emphasis"
BROKEN_TABLE = "structure.broken_table"

_FENCE = re.compile(r"^[ ]{0,3}(`{3,}|~{3,})(.*)$", re.MULTILINE)
_INLINE_CODE = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.DOTALL)
_MAYBE_BRACKETS = re.compile(
    r"""(?<![^\s(])[:;=8][-o^'"]?[()\[\]{}](?![^\s.,!?)])"""  # smileys :) ;-( =] (alone, or before punctuation)
    r"""|(?:^|(?<=\s))(?:\d{1,3}|[A-Za-z]|[ivxlcdmIVXLCDM]{1,5})\)"""  # list markers 1) a) iv)
    r"""|["'“‘][()\[\]{}]["'”’]""",  # a bracket quoted as a character
    re.MULTILINE,
)
"""Brackets that may not be brackets: they pair up when something fits, else are let be."""
_OPENS = {"(": ")", "[": "]", "{": "}"}
_CLOSES = {close: open_ for open_, close in _OPENS.items()}
_BRACKET = re.compile(r"[()\[\]{}]")
_STARS = re.compile(r"\*{2,}")
_DELIMITER_ROW = re.compile(r"^\s*\|?\s*:?-+:?\s*(?:\|\s*:?-+:?\s*)+\|?\s*$|^\s*\|\s*:?-+:?\s*\|\s*$")
_CELL_SEPARATOR = re.compile(r"(?<!\\)\|")


def _replies(record: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """``(where, text)`` of each assistant turn."""
    for index, message in enumerate(record.get("messages") or ()):
        if isinstance(message, Mapping) and message.get("role") == "assistant" and isinstance(message.get("content"), str):
            yield f"messages[{index}].content", message["content"]


def _issue(code: str, where: str, offset: int, what: str, severity: str = "WARNING") -> RecordIssue:
    return RecordIssue("structure", code, f"{where} at offset {offset}: {what}", where, severity=severity)


def _blank(text: str, start: int, end: int) -> str:
    """``text`` with ``[start, end)`` replaced by spaces (offsets stay put)."""
    return text[:start] + " " * (end - start) + text[end:]


def _code_blocks(text: str) -> tuple[list[tuple[int, int]], int | None]:
    """The spans of the fenced code blocks (fences included), and the offset of a fence
    that never closes (None when every block closes)."""
    spans, opened = [], None
    for fence in _FENCE.finditer(text):
        marker = fence.group(1)
        if opened is None:
            opened = (fence.start(), marker)
        elif marker[0] == opened[1][0] and len(marker) >= len(opened[1]) and not fence.group(2).strip():
            spans.append((opened[0], fence.end()))
            opened = None
    if opened is not None:
        return [*spans, (opened[0], len(text))], opened[0]
    return spans, None


def prose(text: str) -> str:
    """``text`` with code (fenced blocks and inline spans) blanked out, offsets kept."""
    for start, end in _code_blocks(text)[0]:
        text = _blank(text, start, end)
    for span in _INLINE_CODE.finditer(text):
        text = _blank(text, *span.span())
    return text


@register_quality_check("tdm.code_blocks")
def code_blocks(record: Mapping[str, Any]) -> list[RecordIssue]:
    """A fenced code block (``` or ~~~) that is never closed: ERROR."""
    found = []
    for where, text in _replies(record):
        unclosed = _code_blocks(text)[1]
        if unclosed is not None:
            fence = text[unclosed:].split("\n", 1)[0].strip()
            found.append(_issue(UNCLOSED_CODE_BLOCK, where, unclosed, f"the code block opened by {fence[:40]!r} is never closed", "ERROR"))
    return found


def first_unbalanced(text: str) -> tuple[int, str] | None:
    """The first bracket problem in ``text``: ``(offset, what)``, or None when every
    bracket pairs up. A bracket that may be a smiley, a list marker or a quoted
    character (``_MAYBE_BRACKETS``) pairs up where it fits and is let be where it does
    not: ``(fine :)`` and ``I am sad :(`` and ``1) first`` are all balanced."""
    maybe = {match.end() - 1 if match.group()[-1] in "()[]{}" else match.start() + 1 for match in _MAYBE_BRACKETS.finditer(text)}
    problem = _first_unpaired(text, maybe)
    if problem is not None and maybe:  # a smiley may have taken a real bracket's partner: "(smile :-) )"
        without = "".join(" " if offset in maybe else char for offset, char in enumerate(text))
        return None if _first_unpaired(without, set()) is None else problem
    return problem


def _first_unpaired(text: str, maybe: set[int]) -> tuple[int, str] | None:
    stack: list[tuple[int, str]] = []
    for bracket in _BRACKET.finditer(text):
        offset, char = bracket.start(), bracket.group()
        if char in _OPENS:
            stack.append((offset, char))
        elif char in _CLOSES:
            while stack and stack[-1][0] in maybe and stack[-1][1] != _CLOSES[char]:
                stack.pop()
            if stack and stack[-1][1] == _CLOSES[char]:
                stack.pop()
            elif offset in maybe:
                continue
            elif not stack:
                return offset, f"{char!r} closes nothing"
            else:
                opened_at, opened = stack[-1]
                return offset, f"{char!r} closes the {opened!r} opened at offset {opened_at}"
    unclosed = [(offset, char) for offset, char in stack if offset not in maybe]
    if unclosed:
        offset, char = unclosed[0]
        return offset, f"{char!r} is never closed"
    return None


@register_quality_check("tdm.brackets")
def brackets(record: Mapping[str, Any]) -> list[RecordIssue]:
    """Parentheses, square and curly brackets that do not pair up, outside code: WARNING."""
    found = []
    for where, text in _replies(record):
        if not any(char in text for char in "()[]{}"):
            continue
        problem = first_unbalanced(prose(text))
        if problem is not None:
            found.append(_issue(UNBALANCED_BRACKETS, where, *problem))
    return found


def _unclosed_emphasis(text: str) -> int | None:
    """The offset of ``**`` (or ``***``...) emphasis opened and never closed, or None.

    A run of asterisks opens when a non-space follows it and closes when a non-space
    precedes it; one between two word characters (``2**3``) or between two spaces is
    not emphasis."""
    opened = None
    for run in _STARS.finditer(text):
        start, end = run.span()
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if (before.isalnum() and after.isalnum()) or (before.isspace() and after.isspace()):
            continue
        if opened is None and not after.isspace():
            opened = start
        elif opened is not None and not before.isspace():
            opened = None
    return opened


def _cells(row: str) -> int:
    row = row.strip()
    row = row[1:] if row.startswith("|") else row
    row = row[:-1] if row.endswith("|") and not row.endswith("\\|") else row
    return len(_CELL_SEPARATOR.split(row))


def _broken_table(text: str) -> tuple[int, str] | None:
    """The first table row whose cells do not match its header: ``(offset, what)``."""
    lines = text.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    for number, line in enumerate(lines[1:], start=1):
        if "|" not in line or not _DELIMITER_ROW.match(line) or "|" not in lines[number - 1]:
            continue
        header = _cells(lines[number - 1])
        if _cells(line) != header:
            return starts[number], f"the table's delimiter row has {_cells(line)} cells, its header {header}"
        for row in range(number + 1, len(lines)):
            if "|" not in lines[row] or not lines[row].strip():
                break
            if _cells(lines[row]) != header:
                return starts[row], f"a table row has {_cells(lines[row])} cells, its header {header}"
    return None


@register_quality_check("tdm.markdown")
def markdown(record: Mapping[str, Any]) -> list[RecordIssue]:
    """``**`` emphasis never closed, and tables whose rows do not fit their header
    (outside code): WARNING each."""
    found = []
    for where, text in _replies(record):
        if "**" not in text and "|" not in text:
            continue
        text = prose(text)
        opened = _unclosed_emphasis(text) if "**" in text else None
        if opened is not None:
            found.append(_issue(UNCLOSED_EMPHASIS, where, opened, f"the emphasis {text[opened:opened + 3].strip()!r} opened here is never closed"))
        table = _broken_table(text) if "|" in text else None
        if table is not None:
            found.append(_issue(BROKEN_TABLE, where, *table))
    return found
