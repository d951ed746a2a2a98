"""What the registry needs to know about one chat record: its bytes, hash, text and fields.

A record's identity in storage is the sha256 of its *canonical JSON* (keys sorted, no
spaces, UTF-8), so the same content always hashes the same whatever its key order.
"""

from __future__ import annotations

import hashlib
import json
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


def conversation_text(record: Record) -> str:
    """All message contents joined by newlines: what duplicate detection compares."""
    messages = record.get("messages") or []
    return "\n".join(str(message.get("content", "")) for message in messages if isinstance(message, dict))


def prompt_text(record: Record) -> str | None:
    """Content of the first user message, or None when there is none."""
    for message in record.get("messages") or []:
        if isinstance(message, dict) and message.get("role") == "user":
            return str(message.get("content", ""))
    return None


def identity(record: Record) -> str | None:
    """What makes two versions of one record "the same record": its ``id``, else its prompt."""
    if record.get("id") is not None:
        return f"id:{record['id']}"
    prompt = prompt_text(record)
    return None if prompt is None else f"prompt:{prompt}"


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
