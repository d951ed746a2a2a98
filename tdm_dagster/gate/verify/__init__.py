"""Answer verification: records that carry a reference answer are checked against it.

A record's reference is ``metadata.reference_answer``, else ``metadata.answer`` (what the
built-in generators and the inference source write; ``tdm ingest`` moves top-level
``reference_answer`` / ``answer`` fields there). Its reply is its last assistant turn.
The verifier is chosen by ``metadata.skill`` (see :mod:`.registry`). A wrong answer is an
ERROR ``answer.wrong`` naming the expected and given values, so a model's fluent but
wrong reply is rejected however well it scores on shape and content. Records without a
reference are not touched.

:func:`tdm_dagster.gate.run.run_gate` runs this at levels ``standard`` and ``deep``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tdm_dagster.gate.verify import builtin as _builtin  # noqa: F401  (registers the shipped verifiers)
from tdm_dagster.gate.verify.registry import (
    GENERIC,
    AnswerCheck,
    AnswerVerdict,
    UnusableReference,
    register_verifier,
    unregister_verifier,
    verifier_for,
    verifier_names,
)
from tdm_dagster.records.issues import RecordIssue

__all__ = [
    "GENERIC",
    "AnswerCheck",
    "AnswerVerdict",
    "AnswerResults",
    "UnusableReference",
    "reference_of",
    "register_verifier",
    "unregister_verifier",
    "verifier_names",
    "verify_answers",
]

REFERENCE_KEYS = ("reference_answer", "answer")
"""Where a record's metadata keeps its reference answer, first found wins."""
SHOWN_CHARS = 120
"""Expected and given values are cut to this many characters in a message."""


@dataclass
class AnswerResults:
    findings: dict[int, list[RecordIssue]] = field(default_factory=dict)
    """Issues by batch position: ``answer.wrong`` (ERROR), ``answer.unverifiable`` (INFO)."""
    verdicts: dict[int, AnswerVerdict] = field(default_factory=dict)
    """What a verifier decided, by batch position, for every record it could judge."""

    def summary(self) -> dict[str, Any]:
        """Counts for the report: checked, correct, wrong, unverifiable, and by skill."""
        by_skill: dict[str, dict[str, int]] = {}
        for verdict in self.verdicts.values():
            counts = by_skill.setdefault(verdict.skill, {"correct": 0, "wrong": 0})
            counts["correct" if verdict.correct else "wrong"] += 1
        correct = sum(1 for verdict in self.verdicts.values() if verdict.correct)
        return {
            "checked": len(self.verdicts),
            "correct": correct,
            "wrong": len(self.verdicts) - correct,
            "unverifiable": sum(1 for found in self.findings.values() for i in found if i.code == "answer.unverifiable"),
            "by_skill": by_skill,
        }


def reference_of(record: Any) -> Any:
    """The record's reference answer, or None when it carries none."""
    metadata = record.get("metadata") if isinstance(record, dict) else None
    if not isinstance(metadata, dict):
        return None
    return next((metadata[key] for key in REFERENCE_KEYS if metadata.get(key) not in (None, "", [])), None)


def _shown(text: str) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= SHOWN_CHARS else f"{flat[:SHOWN_CHARS]}... ({len(flat) - SHOWN_CHARS} more chars)")


def _last_reply(messages: Sequence[Mapping[str, Any]]) -> tuple[int, str]:
    """Index and text of the last assistant turn (-1 and "" when there is none)."""
    index = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=-1)
    return index, str(messages[index].get("content", "")) if index >= 0 else ""


def verify_answers(
    records: Sequence[Any],
    valid_indices: Sequence[int],
    conversations: Sequence[Sequence[Mapping[str, Any]]],
    chosen: Mapping[str, str] | None = None,
) -> AnswerResults:
    """Check every schema-valid record that carries a reference (``conversations`` are
    the schema gate's, aligned with ``valid_indices``); ``chosen`` is ``gate.verifiers``."""
    results = AnswerResults()
    for position, messages in zip(valid_indices, conversations):
        reference = reference_of(records[position])
        if reference is None:
            continue
        skill = str(records[position]["metadata"].get("skill") or GENERIC)
        name, verifier = verifier_for(skill, chosen)
        index, reply = _last_reply(messages)
        where = f"messages[{index}].content" if index >= 0 else "messages"
        try:
            check = verifier(reference, reply, records[position]["metadata"])
        except UnusableReference as exc:
            results.findings[position] = [RecordIssue("answer", "answer.unverifiable", f"{where}: not checked by the {name} verifier: {exc}",
                                                      where, severity="INFO")]  # fmt: skip
            continue
        results.verdicts[position] = AnswerVerdict(skill, name, check.correct)
        if not check.correct:
            message = f"{where}: wrong answer ({name} verifier): expected {_shown(check.expected)}, given {_shown(check.given)}"
            results.findings[position] = [RecordIssue("answer", "answer.wrong", message, where)]
    return results
