"""Checks of one record at a time: the built-in structural checks and the users' own.

See :mod:`.registry` for how to register a check (decorator, ``gate.quality_checks``,
entry point group ``tdm_dagster.quality_checks``) and :mod:`.structure` for the
built-in ones. :func:`record_check_issues` runs them all at levels standard and deep
(:func:`tdm_dagster.gate.run.gate_findings`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from tdm_dagster.gate.record_checks import generation as _generation  # noqa: F401  (registers the built-in checks)
from tdm_dagster.gate.record_checks import structure as _structure  # noqa: F401
from tdm_dagster.gate.record_checks.registry import (
    CHECK_FAILED,
    ENTRY_POINT_GROUP,
    QualityCheck,
    QualityCheckError,
    quality_checks,
    register_quality_check,
    run_check,
    unregister_quality_check,
)
from tdm_dagster.records.issues import RecordIssue

__all__ = [
    "CHECK_FAILED",
    "ENTRY_POINT_GROUP",
    "QualityCheck",
    "QualityCheckError",
    "quality_checks",
    "record_check_issues",
    "register_quality_check",
    "unregister_quality_check",
]


def _built_in(check: QualityCheck) -> bool:
    """Whether ``check`` is the project's own (:mod:`tdm_dagster.gate.record_checks.structure`, ``.generation``):
    those read a record and never change it, so they are given the reading view itself; a
    user's check is given copies (deep-copying every record's metadata for every check
    cost half of the record checks' time)."""
    return getattr(check, "__module__", "") in (_structure.__name__, _generation.__name__)


def record_check_issues(
    records: Sequence[Any],
    valid_indices: Sequence[int],
    views: Sequence[Sequence[Mapping[str, Any]]],
    references: Sequence[str] = (),
) -> dict[int, list[RecordIssue]]:
    """Every check's issues by batch position, for the schema-valid records; ``views``
    are their conversations' reading views, ``references`` is ``gate.quality_checks``."""
    checks = quality_checks(references)
    own = [(name, check) for name, check in checks if _built_in(check)]
    users = [(name, check) for name, check in checks if not _built_in(check)]
    found: dict[int, list[RecordIssue]] = {}
    for position, messages in zip(valid_indices, views):
        metadata = records[position].get("metadata") if isinstance(records[position], Mapping) else None
        for name, check in own:  # the project's own checks read, never change: no copy
            issues = run_check(name, check, {"messages": messages, "metadata": metadata if isinstance(metadata, Mapping) else {}})
            if issues:
                found.setdefault(position, []).extend(issues)
        if not users:
            continue
        # copies: a user's check that changes what it is given never changes the stored record
        record = {"messages": [dict(message) for message in messages],
                  "metadata": copy.deepcopy(dict(metadata)) if isinstance(metadata, Mapping) else {}}  # fmt: skip
        for name, check in users:
            issues = run_check(name, check, record)
            if issues:
                found.setdefault(position, []).extend(issues)
    return found
