"""Records as columns, for the tabular formats (CSV, Parquet, Hugging Face).

Records are heterogeneous: a key may be missing from some records, ``metadata`` dicts
differ from record to record, ``id`` may be a string in one record and an integer in
the next. Native nested types (structs) would merge those dicts and fill the gaps with
nulls, so they would not come back identical. Each column therefore gets one kind:

- ``text``: every value present is a string; stored as is.
- ``messages``: every value present is a chat, a list of exactly ``{role, content}``
  string pairs; stored natively (Parquet/HF ``list<struct<role, content>>``) because
  that is what trainers read, and the shape is fixed so it round trips exactly.
- ``json``: anything else; each value stored as its JSON text.

Records are JSON data: keys are strings, values what JSON holds. A key missing from a
record is a null cell; no stored value is ever null otherwise (a ``None`` value makes
the column ``json``, stored as the text ``null``), so import tells "missing" from every
real value. CSV has no null (an empty cell is also the empty string), so there a text
column with gaps, and every chat, is stored as JSON text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tdm_dagster.records.strict_json import dumps_strict

ColumnKind = Literal["text", "messages", "json"]
_MESSAGE_KEYS = {"role", "content"}


@dataclass(frozen=True)
class Column:
    name: str
    kind: ColumnKind


def _is_messages(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(m, dict) and m.keys() == _MESSAGE_KEYS and all(isinstance(v, str) for v in m.values()) for m in value
    )


def _kind_of(values: list[Any], complete: bool, has_nulls: bool) -> ColumnKind:
    if all(isinstance(v, str) for v in values) and (complete or has_nulls):
        return "text"
    if has_nulls and all(_is_messages(v) for v in values):
        return "messages"
    return "json"


def plan_columns(records: Sequence[dict[str, Any]], *, has_nulls: bool = True) -> list[Column]:
    """One column per key, in first-seen order, with the kind that stores it exactly;
    ``has_nulls=False`` plans for CSV."""
    values: dict[str, list[Any]] = {}
    for record in records:
        for key, value in record.items():
            values.setdefault(key, []).append(value)
    return [Column(name, _kind_of(found, len(found) == len(records), has_nulls)) for name, found in values.items()]


def encode_cell(value: Any, kind: ColumnKind) -> Any:
    """A record's value as stored in a column of ``kind`` (strict JSON text for ``json``)."""
    return dumps_strict(value, ensure_ascii=False) if kind == "json" else value
