"""The test step: schema gate, then the quality suites, then one decision per record.

Every input record ends approved or rejected with its reasons; ``generated = approved +
rejected`` always holds. A batch that fails any suite is rejected whole (its records
keep their own reasons plus the batch's), so a failing batch never reaches the queue.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from tdm_dagster.quality import QualitySettings, SuiteResult, build_report, run_quality
from tdm_dagster.record_issues import RecordIssue
from tdm_dagster.schemas import SchemaGateResult, schema_gate


@dataclass
class GateOutcome:
    total: int
    approved_indices: list[int]
    rejected: dict[int, list[RecordIssue]]
    report: dict[str, Any]

    @property
    def batch_approved(self) -> bool:
        return bool(self.report["overall_pass"])


def map_suite_failures(
    schema: SchemaGateResult, suites: Mapping[str, SuiteResult]
) -> dict[int, list[RecordIssue]]:
    """Suite failures are indexed by position among the schema-valid records; map them
    back to positions in the original batch."""
    mapped: dict[int, list[RecordIssue]] = {}
    for result in suites.values():
        for row, issues in result.failed_records.items():
            mapped.setdefault(schema.valid_indices[row], []).extend(issues)
    return mapped


def decide(schema: SchemaGateResult, suites: Mapping[str, SuiteResult], batch_id: str = "") -> GateOutcome:
    rejected: dict[int, list[RecordIssue]] = {i: list(v) for i, v in schema.rejected.items()}
    for position, issues in map_suite_failures(schema, suites).items():
        rejected.setdefault(position, []).extend(issues)

    report = build_report(dict(suites))
    failed = [name for name, result in suites.items() if not result.passed]
    batch_problem = schema.batch_error or (f"failed checks: {', '.join(failed)}" if failed else None)
    if batch_problem:
        batch_issue = RecordIssue(suite="batch", code="batch.rejected", message=f"batch rejected: {batch_problem}", field="")
        for position in range(schema.total):
            rejected.setdefault(position, []).append(batch_issue)
        report["overall_pass"] = False
        report["recommendation"] = f"reject: {batch_problem}"
    approved = [i for i in range(schema.total) if i not in rejected]
    report.update(
        batch_id=batch_id,
        spec=schema.spec,
        records={
            "generated": schema.total,
            "approved": len(approved),
            "rejected": len(rejected),
            "schema_rejected": len(schema.rejected),
            "approval_rate": round(len(approved) / schema.total, 4) if schema.total else 0.0,
        },
    )
    if schema.batch_error:
        report["schema_error"] = schema.batch_error
    return GateOutcome(schema.total, approved, rejected, report)


def run_gate(records: Sequence[Any], spec: str, settings: QualitySettings, batch_id: str = "") -> GateOutcome:
    """The whole test step in one call (the CLI and the benchmark use it; the Dagster
    assets run the same pieces as separate, visible steps)."""
    schema = schema_gate(records, spec)
    suites = run_quality(schema.conversations, settings)
    return decide(schema, suites, batch_id)


def rejection_rows(
    batch_id: str, records: Sequence[Any], rejected: Mapping[int, Sequence[RecordIssue]]
) -> list[dict[str, Any]]:
    """Rejected records as kept in ``rejected/``: the record as it arrived plus why."""
    return [
        {"batch_id": batch_id, "line": position + 1, "reasons": [asdict(i) for i in issues], "record": records[position]}
        for position, issues in sorted(rejected.items())
    ]
