"""Record checks: functions of one record that return issues, the built-in ones and yours.

A check gets a record as the gate reads it (``{"messages": [...], "metadata": {...}}``:
every shape as chat messages, each content its reading view,
:mod:`tdm_dagster.gate.reading_view`) and returns (or yields) :class:`RecordIssue` s,
none for a record it has nothing against. Its issues carry its own codes and
severities (ERROR rejects the record, WARNING costs a tier, INFO is a note).

Where checks come from, all run at levels standard and deep:

- the decorator, like verifiers (:func:`register_quality_check`), in a module your code
  location imports; the built-in structural checks register this way
  (:mod:`.structure`);
- the config: ``gate.quality_checks: ["my_checks:no_urls"]`` imports ``my_checks`` and
  runs its ``no_urls``;
- an installed package's entry points in group :data:`ENTRY_POINT_GROUP`
  (``[project.entry-points."tdm_dagster.quality_checks"] no_urls = "my_checks:no_urls"``).

A check that cannot be loaded (a configured module that does not import, an entry point
that does not load, something that is not callable) stops the gate with
:class:`QualityCheckError` naming it: a check asked for must run. A check that raises on
a record, or returns something other than issues, does not stop the gate: that record
gets an ERROR ``check.failed`` naming the check and the error (it was not judged by a
check that was asked to judge it), and the other records and checks go on.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from tdm_dagster.gate.named_functions import NamedFunctions
from tdm_dagster.records.issues import SEVERITIES, RecordIssue

QualityCheck = Callable[[Mapping[str, Any]], Iterable[RecordIssue] | None]
ENTRY_POINT_GROUP = "tdm_dagster.quality_checks"
CHECK_FAILED = "check.failed"
_SHOWN_ERROR_CHARS = 200

_CHECKS: NamedFunctions[QualityCheck] = NamedFunctions("quality check")


class QualityCheckError(ValueError):
    """A check that was asked for cannot be loaded; the message names it and why."""


def register_quality_check(name: str, *, replace: bool = False) -> Callable[[QualityCheck], QualityCheck]:
    """Decorator: run ``function`` on every record as the check called ``name``. A taken
    name raises unless ``replace=True``, so two plugins cannot silently shadow each other."""
    return _CHECKS.register(name, replace=replace)


def unregister_quality_check(name: str) -> None:
    """Remove a registered check (a plugin unloading, a test cleaning up)."""
    _CHECKS.unregister(name)


def _callable(name: str, found: Any, where: str) -> QualityCheck:
    if not callable(found):
        raise QualityCheckError(f"{where} {name!r} is a {type(found).__name__}, not a function of a record")
    return found


def _from_reference(reference: str) -> QualityCheck:
    """``module:function`` from ``gate.quality_checks``."""
    module_name, _, attribute = reference.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except Exception as error:  # ImportError, AttributeError, or whatever the module raises on import
        raise QualityCheckError(f"gate.quality_checks: cannot load {reference!r}: {type(error).__name__}: {error}") from None
    return _callable(reference, found, "gate.quality_checks:")


@cache
def _from_entry_points() -> tuple[tuple[str, QualityCheck], ...]:
    """The installed packages' checks (loaded once per process)."""
    loaded = []
    for point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda point: point.name):
        try:
            found = point.load()
        except Exception as error:
            raise QualityCheckError(f"entry point {point.name!r} ({point.value}) in group {ENTRY_POINT_GROUP}: "
                                    f"cannot load: {type(error).__name__}: {error}") from None  # fmt: skip
        loaded.append((point.name, _callable(point.name, found, f"entry point in group {ENTRY_POINT_GROUP}")))
    return tuple(loaded)


def quality_checks(references: Sequence[str] = ()) -> list[tuple[str, QualityCheck]]:
    """Every check to run, named: the registered ones, the installed entry points', then
    ``references`` (``gate.quality_checks``), each name once."""
    checks = dict(_CHECKS.items())
    for name, check in _from_entry_points():
        if checks.setdefault(name, check) is not check:
            raise QualityCheckError(f"entry point {name!r} in group {ENTRY_POINT_GROUP} has the name of a registered check; rename one")
    for reference in references:
        checks.setdefault(reference, _from_reference(reference))
    return list(checks.items())


def _failed(name: str, problem: str) -> RecordIssue:
    problem = problem if len(problem) <= _SHOWN_ERROR_CHARS else f"{problem[:_SHOWN_ERROR_CHARS]}..."
    return RecordIssue("check", CHECK_FAILED, f"quality check {name!r} {problem}", "")


def run_check(name: str, check: QualityCheck, record: Mapping[str, Any]) -> list[RecordIssue]:
    """The check's issues for ``record``, or one ``check.failed`` when it raises or
    returns something other than issues."""
    try:
        found = list(check(record) or ())
    except Exception as error:
        return [_failed(name, f"raised {type(error).__name__}: {error}")]
    wrong = next((item for item in found if not isinstance(item, RecordIssue)), None)
    if wrong is not None:
        return [_failed(name, f"returned a {type(wrong).__name__}, not a RecordIssue")]
    unknown = next((issue.severity for issue in found if issue.severity not in SEVERITIES), None)
    if unknown is not None:
        return [_failed(name, f"returned an issue of severity {unknown!r}, not one of {', '.join(SEVERITIES)}")]
    return found
