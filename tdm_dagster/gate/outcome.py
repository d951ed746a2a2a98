"""The gate's decision: every finding combined into one verdict per record and one for the batch.

Every input record ends approved or rejected with its reasons: ``records = approved +
rejected`` always holds. An ERROR rejects a record; a WARNING keeps it and lowers its
quality score. A batch that fails a suite, or whose metrics fall under their thresholds,
is rejected whole (its records keep their own reasons plus the batch's), so a failing
batch never reaches the queue, unless its source's policy salvages the records that
pass on their own (:mod:`tdm_dagster.gate.salvage`).

The outcome also keeps what each finding came from (suite results, deep findings, metric
shortfalls), so the asset checks can show it later from :func:`check_view` without
judging the batch again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence, Set
from dataclasses import asdict, dataclass, field
from typing import Any

from tdm_dagster.gate.quality import SuiteResult, build_report
from tdm_dagster.gate.schemas import SchemaGateResult
from tdm_dagster.gate.scoring import (
    MetricThresholds,
    batch_metrics,
    capped_words,
    example_score,
    tier,
    tier_counts,
)
from tdm_dagster.gate.verify.registry import AnswerVerdict
from tdm_dagster.records.issues import RecordIssue

_INCOMPLETE_CODES = ("read.", "schema.missing_field", "schema.not_an_object")
BATCH_REJECTED = "batch.rejected"
"""The code of the issue every record of a rejected batch gets: the batch's, not its own."""
_CHECK_SAMPLES = 5
"""Samples of failing records (or findings) each check shows."""

Findings = dict[int, list[RecordIssue]]
"""Issues by batch position."""


@dataclass
class GateOutcome:
    total: int
    approved_indices: list[int]
    rejected: dict[int, list[RecordIssue]]
    report: dict[str, Any]
    issues: dict[int, list[RecordIssue]] = field(default_factory=dict)
    """Every issue per record, warnings and notes included."""
    scores: dict[int, float] = field(default_factory=dict)
    """Quality score of each approved record."""
    specs: list[str | None] | None = None
    """The spec of each record when they differ (inbox files), else None."""
    suites: dict[str, SuiteResult] = field(default_factory=dict)
    """The suites that ran at this level, by name."""
    deep: dict[str, Findings] = field(default_factory=dict)
    """Deep-level findings by detector (``duplicates``, ``leakage``); empty below level deep."""
    shortfalls: list[str] = field(default_factory=list)
    """Batch metrics under their thresholds, as sentences."""
    answers: dict[int, AnswerVerdict] = field(default_factory=dict)
    """What an answer verifier decided, by position, for records with a reference answer
    (empty at level quick): a decision on correctness that later steps must respect."""
    salvaged: list[int] = field(default_factory=list)
    """Approved records kept from a failed batch (:func:`tdm_dagster.gate.salvage.salvaged`)."""
    model_judged: frozenset[int] = frozenset()
    """Positions whose every reply the reply model judged fluent (what their tier rests on
    when no verifier decided), so a later re-scoring (salvage) grades them alike."""

    @property
    def batch_approved(self) -> bool:
        return bool(self.report["overall_pass"])

    @property
    def level(self) -> str:
        return str(self.report["level"])


def issues_by_position(
    schema: SchemaGateResult, suites: Mapping[str, SuiteResult], extra: Mapping[int, Sequence[RecordIssue]]
) -> dict[int, list[RecordIssue]]:
    """Schema issues, suite issues and warnings (indexed among schema-valid records, mapped
    back to batch positions) and any extra findings (already by batch position), together."""
    issues: dict[int, list[RecordIssue]] = {i: list(v) for i, v in schema.rejected.items()}
    for result in suites.values():
        for by_row in (result.failed_records, result.warnings):
            for row, found in by_row.items():
                issues.setdefault(schema.valid_indices[row], []).extend(found)
    for position, found in extra.items():
        issues.setdefault(position, []).extend(found)
    return issues


def is_incomplete(issues: Sequence[RecordIssue]) -> bool:
    return any(i.code.startswith(_INCOMPLETE_CODES) or "empty" in i.code for i in issues)


def capped_response_words(conversations: Sequence[Sequence[Mapping[str, Any]]]) -> int:
    """The complexity metric's sum over ``conversations`` (see :func:`batch_metrics`)."""
    return sum(
        capped_words(sum(len(str(m.get("content", "")).split()) for m in messages if isinstance(m, Mapping) and m.get("role") == "assistant"))
        for messages in conversations
    )


def batch_verdict(
    suites: Mapping[str, SuiteResult], metrics: Mapping[str, float | None], thresholds: MetricThresholds, batch_error: str | None
) -> tuple[dict[str, Any], list[str], RecordIssue | None]:
    """The batch's report (before its counts), its metric shortfalls, and the issue every
    record gets when the batch is rejected (None when it passes)."""
    report = build_report(dict(suites))
    failed_suites = [name for name, result in suites.items() if not result.passed]
    shortfalls = thresholds.failures(metrics)
    problems = [batch_error] if batch_error else []
    if failed_suites:
        problems.append(f"failed checks: {', '.join(failed_suites)}")
    problems.extend(shortfalls)
    if not problems:
        return report, shortfalls, None
    report["overall_pass"] = False
    report["batch_failure"] = "; ".join(problems)
    report["recommendation"] = f"reject: {report['batch_failure']}"
    issue = RecordIssue(suite="batch", code=BATCH_REJECTED, message=f"batch rejected: {'; '.join(problems)}", field="")
    return report, shortfalls, issue


def report_counts(total: int, approved: int, rejected: int, schema_rejected: int) -> dict[str, Any]:
    return {
        "generated": total,
        "approved": approved,
        "rejected": rejected,
        "schema_rejected": schema_rejected,
        "approval_rate": round(approved / total, 4) if total else 0.0,
    }


def decide(
    schema: SchemaGateResult,
    suites: Mapping[str, SuiteResult],
    batch_id: str = "",
    *,
    records: Sequence[Any] | None = None,
    extra_issues: Mapping[int, Sequence[RecordIssue]] | None = None,
    level: str = "standard",
    thresholds: MetricThresholds = MetricThresholds(),
    specs: Sequence[str] | None = None,
    answers: Mapping[int, AnswerVerdict] | None = None,
    complexity: tuple[int, int] | None = None,
    model_judged: Set[int] = frozenset(),
) -> GateOutcome:
    """Combine every finding into one verdict per record and one for the batch.

    ``specs`` (one per record, for inbox files that mix shapes) drives consistency;
    ``records`` (the records as read) drives the source-based quality score;
    ``complexity`` is ``(capped response words, responses)`` of the schema-valid records
    when ``schema.conversations`` does not hold them (a batch judged in chunks);
    ``model_judged``: positions whose every reply the reply model judged fluent (their tier).
    """
    issues = issues_by_position(schema, suites, extra_issues or {})
    rejected = {i: found for i, found in issues.items() if any(issue.rejects for issue in found)}
    accepted = [i for i in range(schema.total) if i not in rejected]

    spec_counts = Counter(specs) if specs else Counter({schema.spec: schema.total})
    dominant_share = spec_counts.most_common(1)[0][1] / schema.total if schema.total else 0.0
    diversity = suites.get("diversity")
    balance = suites.get("balance")
    metrics = batch_metrics(
        total=schema.total,
        complete=sum(1 for i in range(schema.total) if not is_incomplete(issues.get(i, []))),
        dominant_spec_share=dominant_share,
        accepted=len(accepted),
        unique_response_ratio=diversity.observed.get("diversity.unique_responses") if diversity else None,
        assistant_user_ratio=balance.observed.get("assistant_user_ratio") if balance else None,
        capped_response_words=complexity[0] if complexity else capped_response_words(schema.conversations),
        responses=complexity[1] if complexity else len(schema.conversations),
    )
    report, shortfalls, batch_issue = batch_verdict(suites, metrics, thresholds, schema.batch_error)
    if batch_issue is not None:
        for position in range(schema.total):
            issues.setdefault(position, []).append(batch_issue)
            rejected.setdefault(position, issues[position])
        accepted = []

    read_records = records if records is not None else [None] * schema.total
    verdicts = answers or {}
    scores = {i: example_score(read_records[i], issues.get(i, []), verdicts.get(i), i in model_judged) for i in accepted}
    warnings = Counter(i.code for found in issues.values() for i in found if i.severity == "WARNING")
    report.update(
        batch_id=batch_id,
        spec=schema.spec,
        level=level,
        records=report_counts(schema.total, len(accepted), len(rejected), len(schema.rejected)),
        metrics=metrics,
        metric_thresholds=asdict(thresholds),
        tiers=tier_counts(list(scores.values())),
        warnings=dict(warnings),
    )
    if schema.batch_error:
        report["schema_error"] = schema.batch_error
    return GateOutcome(
        schema.total, accepted, rejected, report, issues, scores, list(specs) if specs else None,
        suites=dict(suites), shortfalls=shortfalls, answers=dict(verdicts), model_judged=frozenset(model_judged),
    )  # fmt: skip


def rejection_rows(
    batch_id: str, records: Sequence[Any], rejected: Mapping[int, Sequence[RecordIssue]]
) -> list[dict[str, Any]]:
    """Rejected records as kept in ``rejected/``: the record as it arrived plus why."""
    return [
        {"batch_id": batch_id, "line": position + 1, "reasons": [asdict(i) for i in issues], "record": records[position]}
        for position, issues in sorted(rejected.items())
    ]


def score_rows(outcome: GateOutcome) -> list[dict[str, Any]]:
    """Score and tier of each approved record, by line, with its warnings; ``salvaged``
    says it was kept from a failed batch."""
    salvaged = set(outcome.salvaged)
    return [
        {
            "line": position + 1,
            "score": score,
            "tier": tier(score),
            "warnings": [i.code for i in outcome.issues.get(position, []) if i.severity == "WARNING"],
            "verified": getattr(outcome.answers.get(position), "correct", False),
            "salvaged": position in salvaged,
        }
        for position, score in sorted(outcome.scores.items())
    ]


def _suite_view(result: SuiteResult) -> dict[str, Any]:
    return {
        "passed": result.passed,
        "pass_rate": result.pass_rate,
        "failed_records": len(result.failed_records),
        "observed": result.observed,
        "thresholds": result.thresholds,
        "samples": result.samples[:_CHECK_SAMPLES],
    }


def _findings_view(findings: Findings) -> dict[str, Any]:
    return {
        "records_flagged": len(findings),
        "found": dict(Counter(issue.code for found in findings.values() for issue in found)),
        "samples": [f"record {p + 1}: {found[0].message}" for p, found in list(findings.items())[:_CHECK_SAMPLES]],
    }


def check_view(outcome: GateOutcome) -> dict[str, Any]:
    """What the asset checks show of an outcome, JSON-ready: per suite its pass rate,
    observed values, thresholds and samples; per deep detector its counts and samples
    (None when the level did not run it); the batch metrics and their shortfalls; the
    answer verification counts (None at level quick); what was salvaged from a failed
    batch (None when nothing was)."""
    report = outcome.report
    return {
        "level": outcome.level,
        "suites": {name: _suite_view(result) for name, result in outcome.suites.items()},
        "deep": {name: _findings_view(findings) for name, findings in outcome.deep.items()} or None,
        "metrics": report["metrics"],
        "metric_thresholds": report["metric_thresholds"],
        "tiers": report["tiers"],
        "answers": report.get("answers"),
        "shortfalls": outcome.shortfalls,
        "salvage": report.get("salvage"),
    }
