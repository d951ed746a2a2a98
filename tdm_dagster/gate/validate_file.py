"""``tdm validate``: check one file the way the inbox would, without ingesting it."""

from __future__ import annotations

import os
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from tdm_dagster.config.settings import TdmConfig
from tdm_dagster.gate.run import CHUNK_RECORDS, GateInput, gate_chunks
from tdm_dagster.gate.schemas import get_spec
from tdm_dagster.gate.verify.side_file import attach_answers, read_answers
from tdm_dagster.home import TdmHome
from tdm_dagster.ingest.load import LoadedFile, iter_parts
from tdm_dagster.records.issues import RecordIssue


def _force_spec(loaded: LoadedFile, spec: str) -> None:
    """With ``--spec``, a record whose shape maps to another spec is a mismatch: refused
    (``None``) with that reason, which names the shape it has."""
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


@dataclass
class _Reading:
    """What the report needs of a file read in parts, kept as the parts go by: where each
    position came from (its line; its instance, for a seed task's), and the file's totals."""

    lines: array = field(default_factory=lambda: array("q"))
    """Each position's line (-1: none, the file's own problem), 8 bytes each."""
    instances: dict[int, int] = field(default_factory=dict)
    input_records: int = 0
    file_problem: Any = None
    answers_used: set = field(default_factory=set)

    def parts(
        self, path: str | os.PathLike[str], config: TdmConfig, spec: str | None, answers: dict | None, chunk_records: int
    ) -> Iterator[GateInput]:
        for loaded in iter_parts(path, max_record_bytes=config.gate.max_record_bytes, part_records=chunk_records):
            if spec:
                _force_spec(loaded, spec)
            if answers:
                attach_answers(loaded.records, loaded.sources, answers, self.answers_used)
            for source in loaded.sources:
                if "instance" in source:
                    self.instances[len(self.lines)] = source["instance"]
                line = source.get("line")
                self.lines.append(-1 if line is None else line)
            self.input_records += loaded.input_records
            self.file_problem = self.file_problem or loaded.file_problem
            gate_input = GateInput.from_loaded(loaded, os.path.basename(str(path)))
            if spec:  # the batch is judged as the spec asked for, so its verdict names that spec
                gate_input = replace(gate_input, specs=spec)
            yield gate_input


def validate_file(
    path: str | os.PathLike[str],
    config: TdmConfig,
    *,
    spec: str | None = None,
    level: str | None = None,
    home: TdmHome | None = None,
    answers: str | os.PathLike[str] | None = None,
    shown_as: str | None = None,
    chunk_records: int = CHUNK_RECORDS,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """What the gate would say of the file; nothing is written. ``home`` lets the deep
    level compare against data already queued there; ``answers`` is a side file of
    reference answers (:mod:`tdm_dagster.gate.verify.side_file`); ``shown_as`` is the name
    the report gives the file (the REST API validates an upload under its client's name);
    ``progress`` is told how many more records have been judged, as they are (once per
    chunk). The file is read and judged ``chunk_records`` records at a time
    (:func:`gate_chunks`), so memory stays bounded whatever its size."""
    level = level or config.gate.level
    if spec:
        get_spec(spec)  # an unknown name fails here, clearly
    answer_keys = read_answers(answers) if answers else None
    reading = _Reading()
    chunks = reading.parts(path, config, spec, answer_keys, chunk_records)
    outcome = gate_chunks(chunks, config, level=level, queued_in=home, progress=progress)
    issues = [
        {
            "line": reading.lines[position] if reading.lines[position] >= 0 else None,
            **({"instance": reading.instances[position]} if position in reading.instances else {}),
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
    unmatched = len(answer_keys) - len(reading.answers_used) if answer_keys is not None else 0
    return {
        "file": shown_as or str(path),
        "level": level,
        "spec": spec or report["spec"],
        "readable": reading.file_problem is None,
        "file_problem": str(reading.file_problem) if reading.file_problem else None,
        "totals": {
            "input_records": reading.input_records,
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
