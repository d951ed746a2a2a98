"""Reference answers kept beside a data file (``tdm validate --answers FILE``).

Data exported without its answers (a model's replies, a dataset's outputs) can be
checked against answers kept elsewhere: a JSON Lines file whose objects name a record by
``id`` (the record's ``id`` or ``metadata.id``) or by ``line`` (its line in the data
file, 1-based) and give its ``answer`` (or ``reference_answer``), and optionally its
``skill``, which picks the verifier::

    {"line": 3, "answer": ["apple", "river", "honest"], "skill": "syllo"}
    {"id": "q-17", "answer": "72"}

Each matched record gets ``metadata.reference_answer`` (and ``metadata.skill`` when
given) before the gate runs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

ANSWER_KEYS = ("answer", "reference_answer")


class AnswersFileError(ValueError):
    """The answers file is malformed; the message names the file and line."""


def read_answers(path: str | os.PathLike[str]) -> dict[tuple[str, Any], dict[str, Any]]:
    """``{("line", n) | ("id", x): {"reference_answer": ..., "skill"?: ...}}``; a malformed
    line raises :class:`AnswersFileError` naming the file and line."""
    found: dict[tuple[str, Any], dict[str, Any]] = {}
    with open(path, encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            where = f"{path}:{number}"
            try:
                item = json.loads(text)
            except json.JSONDecodeError as exc:
                raise AnswersFileError(f"{where}: not JSON ({exc.msg} at column {exc.colno})") from None
            key = next(((name, item[name]) for name in ("id", "line") if isinstance(item, dict) and name in item), None)
            answer = next((item[name] for name in ANSWER_KEYS if isinstance(item, dict) and name in item), None)
            if key is None or answer is None:
                raise AnswersFileError(f'{where}: expected an object with "id" or "line" and "answer", got {text.strip()[:80]}')
            if key in found:
                raise AnswersFileError(f"{where}: a second answer for {key[0]} {key[1]!r}")
            found[key] = {"reference_answer": answer, **({"skill": item["skill"]} if "skill" in item else {})}
    return found


def _record_id(record: dict[str, Any]) -> Any:
    metadata = record.get("metadata")
    return record.get("id", metadata.get("id") if isinstance(metadata, dict) else None)


def attach_answers(
    records: Sequence[Any],
    sources: Sequence[dict[str, Any]],
    answers: dict[tuple[str, Any], dict[str, Any]],
    used: set[tuple[str, Any]] | None = None,
) -> int:
    """Put each answer into its record's metadata (in place); how many answers matched no
    record. ``used`` (the answers matched so far, for a file read in parts) gets the
    answers matched here added."""
    used = set() if used is None else used
    for record, source in zip(records, sources):
        if not isinstance(record, dict):
            continue
        key = next((k for k in (("id", _record_id(record)), ("line", source.get("line"))) if k in answers), None)
        if key is not None:
            record["metadata"] = {**record.get("metadata", {}), **answers[key]}
            used.add(key)
    return len(answers) - len(used)
