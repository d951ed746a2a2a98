"""Strict JSON values: what every record must be before anything stores, hashes or queues it.

Python's ``json`` accepts more than JSON and more than the rest of the pipeline can
handle: ``NaN``/``Infinity`` literals and ``1e999`` (which becomes ``inf``), integers
longer than Python will print back (over 4,300 digits), nesting deep enough to exhaust
the interpreter's recursion limit, ``\\ud800`` escapes that decode to a lone surrogate
(no UTF-8 encoding exists for it, so writing or hashing the record fails later), and a
key given twice (the first value silently lost). Values from Parquet, Arrow or pickles can
also be datetimes, decimals or bytes, which JSON has no type for.

``loads_strict`` parses one record's text and ``value_problem`` checks a value from any
other source; both name the first problem's field path (``metadata.score``,
``messages[2].content``) so that a reader can reject that one record with a located
reason and go on with the rest. ``dumps_strict`` is the writers' last line of defence:
it raises instead of writing non-JSON.
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any

MAX_DEPTH = 100
"""Deepest nesting of arrays and objects a record may have: far more than any record
format needs, far less than the recursion limits of the code that walks records."""

_MAX_INT_DIGITS = sys.get_int_max_str_digits() or None
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_JSON_SCALARS = (str, int, float, bool, type(None))


class JsonValueProblem(ValueError):
    """Why a value is not strict JSON: a stable ``code``, the ``field`` path, a message."""

    def __init__(self, code: str, field: str, message: str, suggestion: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.code, self.field, self.message, self.suggestion = code, field, message, suggestion


def _too_deep(trail: Any) -> JsonValueProblem:
    return JsonValueProblem("too_deep", _field(trail), f"arrays/objects nested more than {MAX_DEPTH} levels deep",
                    f"flatten the record (at most {MAX_DEPTH} levels), or store the deep part as a string")  # fmt: skip


_refusals = 0
"""How many refused literals the parse hooks have seen, process-wide: a parse that did not
raise it needs no walk to find them (another thread's count only costs a needless walk)."""


class _Invalid:
    """What a parse hook returns for a literal strict JSON refuses; found again by the walk."""

    __slots__ = ("code", "message", "suggestion")

    def __init__(self, code: str, message: str, suggestion: str) -> None:
        global _refusals
        _refusals += 1
        self.code, self.message, self.suggestion = code, message, suggestion


class _DuplicateKeys(dict):
    """An object that gave a key more than once (the parse keeps the last value)."""

    duplicated: str = ""


def _non_finite(literal: str) -> _Invalid:
    return _Invalid("non_finite_number", f"{literal} is not a JSON number (NaN and infinities are not JSON)",
                    "write the value as null, or as a string if it matters")  # fmt: skip


def _parse_float(literal: str) -> float | _Invalid:
    value = float(literal)
    if math.isinf(value):
        return _non_finite(f"{literal[:40]} (overflows to infinity)")
    return value


def _parse_int(literal: str) -> int | _Invalid:
    digits = len(literal) - literal.startswith("-")
    if _MAX_INT_DIGITS is not None and digits > _MAX_INT_DIGITS:
        return _Invalid("integer_too_long", f"an integer of {digits} digits (at most {_MAX_INT_DIGITS})",
                        "store very long numbers as strings")  # fmt: skip
    return int(literal)


def _object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) == len(pairs):
        return value
    global _refusals
    _refusals += 1
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            break
        seen.add(key)
    marked = _DuplicateKeys(value)
    marked.duplicated = key
    return marked


def _nesting_problem(text: str) -> JsonValueProblem | None:
    """Nesting over ``MAX_DEPTH``, found before parsing (deep nesting is what crashes the parser)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return None
    depth = 0
    for bracket in _BRACKETS.finditer(_STRING.sub('""', text)):
        depth += 1 if bracket.group() in "[{" else -1
        if depth > MAX_DEPTH:
            return _too_deep(None)
    return None


def loads_strict(text: str) -> Any:
    """``json.loads`` for strict JSON: raises ``JsonValueProblem`` for what strict JSON or
    this pipeline cannot hold (see the module doc), ``json.JSONDecodeError`` for bad syntax."""
    nesting = _nesting_problem(text)
    if nesting is not None:
        raise nesting
    refusals_before = _refusals
    value = json.loads(
        text,
        parse_constant=_non_finite,
        parse_float=_parse_float,
        parse_int=_parse_int,
        object_pairs_hook=_object_pairs,
    )
    needs_walk = _refusals != refusals_before or _SURROGATE_ESCAPE.search(text)
    if needs_walk and (problem := value_problem(value)) is not None:
        raise problem
    return value


Trail = tuple[Any, str | int] | None
"""Where a value sits: (the parent's trail, key or index); None at the top. Built as the
walk goes (cheap), turned into a path string only for a problem."""


def _field(trail: Trail) -> str:
    parts: list[str] = []
    while trail is not None:
        trail, key = trail
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key.encode('utf-8', 'backslashreplace').decode()}")
    return "".join(reversed(parts)).removeprefix(".")


def _scalar_problem(value: Any, trail: Trail) -> JsonValueProblem | None:
    if isinstance(value, str):
        if _SURROGATE.search(value):
            return JsonValueProblem("lone_surrogate", _field(trail), "text holds a lone UTF-16 surrogate (such as \\ud800), "
                            "which has no UTF-8 encoding", "re-export the text as valid Unicode")  # fmt: skip
        return None
    if isinstance(value, _Invalid):
        return JsonValueProblem(value.code, _field(trail), value.message, value.suggestion)
    if isinstance(value, float) and not math.isfinite(value):
        return JsonValueProblem("non_finite_number", _field(trail), f"{value} is not a JSON number (NaN and infinities are not JSON)",
                        "write the value as null, or as a string if it matters")  # fmt: skip
    if isinstance(value, _JSON_SCALARS):
        return None
    return JsonValueProblem("not_json_type", _field(trail), f"a {type(value).__name__} value ({str(value)[:60]!r}) has no JSON type",
                    "convert it before export: timestamps as ISO 8601 strings, decimals and bytes as strings")  # fmt: skip


def value_problem(value: Any) -> JsonValueProblem | None:
    """The first reason ``value`` is not a strict JSON value (with its field path), or None.

    Accepts what ``json`` reads: dicts with string keys, lists, strings, finite floats,
    ints, booleans and None, nested at most ``MAX_DEPTH`` levels. Walks without recursion.
    """
    stack: list[tuple[Any, Trail, int]] = [(value, None, 0)]
    while stack:
        item, trail, depth = stack.pop()
        if isinstance(item, dict):
            if depth >= MAX_DEPTH:
                return _too_deep(trail)
            if isinstance(item, _DuplicateKeys):
                return JsonValueProblem("duplicate_key", _field((trail, item.duplicated)),
                                f"key {item.duplicated!r} appears more than once in one object (all but the last value "
                                "would be lost)", "give each key once")  # fmt: skip
            for key, child in reversed(item.items()):
                if not isinstance(key, str):
                    return JsonValueProblem("not_json_type", _field(trail), f"key {key!r} is a {type(key).__name__}; JSON keys "
                                    "are strings", "use string keys")  # fmt: skip
                if _SURROGATE.search(key):
                    return _scalar_problem(key, (trail, key))
                stack.append((child, (trail, key), depth + 1))
        elif isinstance(item, list):
            if depth >= MAX_DEPTH:
                return _too_deep(trail)
            stack.extend((child, (trail, position), depth + 1) for position, child in reversed(list(enumerate(item))))
        elif (problem := _scalar_problem(item, trail)) is not None:
            return problem
    return None


def dumps_strict(value: Any, **options: Any) -> str:
    """``json.dumps`` that raises ``ValueError`` rather than write NaN or Infinity."""
    return json.dumps(value, allow_nan=False, **options)
