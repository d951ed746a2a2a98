"""``tdm datasets import`` through the gate, as an inbox file would go.

Imported records keep the shape they came in, but the gate reads specs, so each record
is mapped first (``ingest.shapes.map_record``: alpaca, prompt/completion, chat,
ShareGPT, a seed task into one example per instance) and the mapped records run
through ``gate.run.run_gate`` at the configured level. A record is imported when every
example it maps to is approved; otherwise it is rejected with all its examples'
reasons (a record of no known shape: the shape's reason), kept in ``rejected/`` like a
record that could not be read. When the batch fails as a whole, ``gate.on_batch_failure.import``
(default ``salvage``, see :mod:`tdm_dagster.gate.salvage`) decides whether the records
that pass on their own are still imported.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from tdm_dagster.records.issues import RecordIssue

if TYPE_CHECKING:
    from tdm_dagster.config.settings import TdmConfig
    from tdm_dagster.formats.imported import ImportResult


def gate_import(
    read: ImportResult, config: TdmConfig, batch_id: str, level: str | None = None, salvage: bool | None = None
) -> dict[str, Any]:
    """Keep in ``read`` only the records the gate approves (the rest move to its rejected
    records with their reasons); returns the gate's summary (level, counts, verdict).
    ``salvage`` overrides ``gate.on_batch_failure.import`` for this import."""
    from tdm_dagster.gate.run import GateInput, run_gate
    from tdm_dagster.gate.salvage import on_batch_failure
    from tdm_dagster.ingest.shapes import map_record

    examples: list[dict[str, Any] | None] = []
    specs: list[str | None] = []
    owner: list[int] = []
    places: list[str] = []
    read_issues: dict[int, list[RecordIssue]] = {}
    for index, (record, source) in enumerate(zip(read.records, read.sources)):
        mapped = map_record(record)
        if isinstance(mapped, RecordIssue):
            read_issues[len(examples)] = [mapped]
            mapped = [None]
        for part in mapped:
            examples.append(None if part is None else part.record)
            specs.append(None if part is None else part.spec)
            owner.append(index)
            places.append(source.where(None if part is None else part.sub_index))
    outcome = run_gate(GateInput.from_records(examples, specs, batch_id, read_issues), config, level=level)
    policy = config.gate.on_batch_failure["import"] if salvage is None else ("salvage" if salvage else "reject")
    outcome = on_batch_failure(outcome, examples, "import", policy)
    reasons: dict[int, list[RecordIssue]] = defaultdict(list)
    for position, found in sorted(outcome.rejected.items()):
        located = [replace(issue, message=f"{places[position]}: {issue.message}") for issue in found]
        reasons[owner[position]].extend(sorted(located, key=lambda issue: not issue.rejects))  # what rejects it first
    approved = set(outcome.approved_indices)
    keep = [True] * len(read.records)
    for position, index in enumerate(owner):
        keep[index] = keep[index] and position in approved
    read.keep_only(keep, reasons)
    return {
        "level": outcome.level,
        "examples": outcome.total,
        "approved_records": sum(keep),
        "rejected_records": len(keep) - sum(keep),
        "batch_approved": outcome.batch_approved,
        "batch_failure": outcome.report.get("batch_failure"),
        "salvaged_records": sum(keep) if outcome.salvaged else 0,
        "on_batch_failure": policy,
        "tiers": outcome.report["tiers"],
        "shortfalls": list(outcome.shortfalls),
    }
