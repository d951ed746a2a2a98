"""What the registry needs to know about one record: its bytes, hash, text and fields.

A record's identity in storage is the sha256 of its *canonical JSON* (keys sorted, no
spaces, UTF-8), so the same content always hashes the same whatever its key order.

A dataset keeps records in the shape they came in (chat ``messages``, ShareGPT,
instruction/input/output, prompt/completion, seed tasks), so what duplicate detection,
splits and diffs compare is the record *read as chat turns* through the shape mapping
the inbox uses (``ingest.shapes`` and the specs' ``to_messages``): the same
conversation stored in two shapes has the same content. A record of no known shape is
compared by its canonical JSON without ``id`` and ``metadata``.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from typing import Any

Record = dict[str, Any]
_MISSING = object()


def canonical_json(record: Record) -> str:
    """Strict JSON: a record holding NaN or Infinity raises ``ValueError`` rather than enter a version."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sha256_digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def record_hash(record: Record) -> bytes:
    """32-byte sha256 of the record's canonical JSON."""
    return sha256_digest(canonical_json(record))


def record_messages(record: Record) -> list[dict[str, Any]] | None:
    """The record as chat turns whatever shape it was stored in (a seed task: every
    instance's turns, in order); None when it has no shape we know."""
    from tdm_dagster.gate.schemas import get_spec
    from tdm_dagster.ingest.shapes import map_record

    messages = record.get("messages") if isinstance(record, dict) else None
    if isinstance(messages, list):  # chat as stored, whatever else the record carries
        return [message for message in messages if isinstance(message, dict)]
    mapped = map_record(record)
    if not isinstance(mapped, list):
        return None
    try:
        return [turn for part in mapped for turn in get_spec(part.spec).to_messages(part.record)]
    except (AttributeError, KeyError, TypeError):  # a field of the wrong type: not readable as chat
        return None


def conversation_text(record: Record) -> str:
    """All turn contents joined by newlines, for any shape: what duplicate detection compares."""
    messages = record_messages(record)
    if messages is None:
        return canonical_json({key: value for key, value in record.items() if key not in ("id", "metadata")})
    return "\n".join(str(message.get("content", "")) for message in messages)


def prompt_text(record: Record) -> str | None:
    """Content of the first user turn (for instruction data: instruction and input), or None."""
    for message in record_messages(record) or []:
        if message.get("role") == "user":
            return str(message.get("content", ""))
    return None


_HORIZONTAL_SPACE = re.compile(r"[^\S\n]+")
_SPACE_AROUND_NEWLINE = re.compile(r" *\n *")
_BLANK_LINES = re.compile(r"\n{3,}")


def clean_text(text: str) -> str:
    """Unicode NFC, runs of spaces/tabs to one space, at most one blank line, ends stripped."""
    text = _HORIZONTAL_SPACE.sub(" ", unicodedata.normalize("NFC", text))
    return _BLANK_LINES.sub("\n\n", _SPACE_AROUND_NEWLINE.sub("\n", text)).strip()


def identity(record: Record) -> str | None:
    """What makes two versions of one record "the same record": its ``id``, else its prompt
    as ``clean_text`` leaves it, so a record whose prompt a derive only re-spaced (``--clean``)
    is the same record, edited, not one removed and another added."""
    if record.get("id") is not None:
        return f"id:{record['id']}"
    prompt = prompt_text(record)
    return None if prompt is None else f"prompt:{clean_text(prompt)}"


def get_field(record: Record, path: str, default: Any = None) -> Any:
    """Value at a dotted path such as ``metadata.skill``; ``default`` when any step is missing."""
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict):
            return default
        value = value.get(part, _MISSING)
        if value is _MISSING:
            return default
    return value


def with_field(record: Record, path: str, value: Any) -> Record:
    """A copy of ``record`` with ``path`` set to ``value`` (intermediate dicts copied, not shared)."""
    head, _, rest = path.partition(".")
    copy = dict(record)
    if rest:
        inner = copy.get(head)
        copy[head] = with_field(inner if isinstance(inner, dict) else {}, rest, value)
    else:
        copy[head] = value
    return copy
