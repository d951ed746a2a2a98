"""``tdm validate``: check one file the way the inbox would, without ingesting it."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from tdm_dagster.config.settings import TdmConfig
from tdm_dagster.gate.run import GateInput, run_gate
from tdm_dagster.gate.schemas import get_spec
from tdm_dagster.gate.verify.side_file import attach_answers, read_answers
from tdm_dagster.home import TdmHome
from tdm_dagster.ingest.load import LoadedFile, load_file
from tdm_dagster.records.issues import RecordIssue


def _force_spec(loaded: LoadedFile, spec: str) -> None:
    """With ``--spec``, a record whose shape maps to another spec is a mismatch: refused
    (``None``) with that reason, which names the shape it has."""
    get_spec(spec)  # an unknown name fails here, clearly
    for position, mapped_spec in enumerate(loaded.specs):
        if mapped_spec is not None and mapped_spec != spec:
            loaded.issues[position] = [
                RecordIssue(
                    "schema", "schema.spec_mismatch", f"record has the shape of {mapped_spec}, not {spec}", "",
                    suggestion=f"check the file's format, or validate with --spec {mapped_spec}",
                )
            ]
            loaded.specs[position] = None
            loaded.records[position] = None


def validate_file(
    path: str | os.PathLike[str],
    config: TdmConfig,
    *,
    spec: str | None = None,
    level: str | None = None,
    home: TdmHome | None = None,
    answers: str | os.PathLike[str] | None = None,
    shown_as: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """What the gate would say of the file; nothing is written. ``home`` lets the deep
    level compare against data already queued there; ``answers`` is a side file of
    reference answers (:mod:`tdm_dagster.gate.verify.side_file`); ``shown_as`` is the name
    the report gives the file (the REST API validates an upload under its client's name);
    ``progress`` is told how many more records have been judged, as they are."""
    level = level or config.gate.level
    loaded = load_file(path, max_record_bytes=config.gate.max_record_bytes)
    if spec:
        _force_spec(loaded, spec)
    unmatched = attach_answers(loaded.records, loaded.sources, read_answers(answers)) if answers else 0
    gate_input = GateInput.from_loaded(loaded, os.path.basename(str(path)))
    if spec:  # the batch is judged as the spec asked for, so its verdict names that spec
        gate_input = replace(gate_input, specs=spec)
    outcome = run_gate(gate_input, config, level=level, queued_in=home)
    if progress:
        progress(outcome.total)
    issues = [
        {
            "line": loaded.sources[position].get("line"),
            **({"instance": loaded.sources[position]["instance"]} if "instance" in loaded.sources[position] else {}),
            "severity": issue.severity,
            "code": issue.code,
            "message": issue.message,
            "field": issue.field,
            "suggestion": issue.suggestion,
        }
        for position, found in sorted(outcome.issues.items())
        for issue in found
        if issue.code != "batch.rejected"
    ]
    report = outcome.report
    return {
        "file": shown_as or str(path),
        "level": level,
        "spec": spec or report["spec"],
        "readable": loaded.file_problem is None,
        "file_problem": str(loaded.file_problem) if loaded.file_problem else None,
        "totals": {
            "input_records": loaded.input_records,
            "records": outcome.total,
            "accepted": report["records"]["approved"],
            "rejected": report["records"]["rejected"],
        },
        "overall_pass": report["overall_pass"],
        "recommendation": report["recommendation"],
        "metrics": report["metrics"],
        "tiers": report["tiers"],
        "checks": {name: result["passed"] for name, result in report["results"].items()},
        "issues": issues,
        "answers": {**report.get("answers", {}), **({"unmatched_in_answers_file": unmatched} if answers else {})} or None,
    }
