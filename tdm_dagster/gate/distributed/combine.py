"""The batch verdict from every shard's totals: what :func:`tdm_dagster.gate.outcome.decide`
decides for a whole batch, from counts that add up across shards.

The suites' batch-level outcomes are rebuilt from counts the way Great Expectations
judges them in-process: a per-record rule holds when the share of rows it does not flag
is at least ``mostly`` (``min_pass_rate``); the distinct-response share and the
assistant/user turn sums are batch counts. Then the same metrics, thresholds and report
code as in-process (:func:`~tdm_dagster.gate.outcome.batch_verdict`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from tdm_dagster.config.quality import QualitySettings
from tdm_dagster.config.settings import TdmConfig
from tdm_dagster.gate.distributed.judge import ShardTotals
from tdm_dagster.gate.outcome import batch_verdict, report_counts
from tdm_dagster.gate.quality.results import SuiteResult
from tdm_dagster.gate.run import VERIFY_LEVELS, suites_for
from tdm_dagster.gate.schemas import no_record_matches
from tdm_dagster.gate.scoring import batch_metrics, tier_counts
from tdm_dagster.records.issues import RecordIssue


@dataclass
class BatchVerdict:
    report: dict[str, Any]
    batch_issue: RecordIssue | None
    """What every record gets when the batch is rejected."""


def _mostly(rows: int, unexpected: int, mostly: float) -> bool:
    """Great Expectations' ``mostly``: vacuously true without rows."""
    return rows == 0 or (rows - unexpected) / rows >= mostly


def _suite(name: str, shards: Sequence[dict[str, Any]], distinct_responses: int, settings: QualitySettings) -> SuiteResult:
    rows = sum(shard["rows"] for shard in shards)
    failed = sum(shard["failed"] for shard in shards)
    if rows == 0:
        reason = "empty batch: there are no records to validate"
        return SuiteResult(name, False, 0.0, {"records": 0}, {}, details={"records": 0, "reason": reason})
    unexpected: Counter = Counter()
    for shard in shards:
        unexpected.update(shard["unexpected"])
    observed: dict[str, Any] = {"records": rows, **{rule: {"failing_records": n} for rule, n in unexpected.items()}}
    success = all(_mostly(rows, n, settings.min_pass_rate) for n in unexpected.values())
    if name == "diversity":
        observed["diversity.unique_responses"] = distinct_responses / rows
        success &= observed["diversity.unique_responses"] >= settings.min_unique_response_ratio
    if name == "balance":
        users = sum(shard["turns"]["user"] for shard in shards if shard["turns"])
        assistants = sum(shard["turns"]["assistant"] for shard in shards if shard["turns"])
        tolerance = settings.balance_tolerance
        observed["balance.batch_turn_ratio"] = assistants
        observed["assistant_user_ratio"] = assistants / users if users else None
        success &= (1 - tolerance) * users <= assistants <= (1 + tolerance) * users
    pass_rate = 1 - failed / rows
    passed = success and pass_rate >= settings.min_pass_rate - 1e-12
    details = {"records": rows, "pass_rate": pass_rate, "failed_records": failed, "observed": observed}
    return SuiteResult(name, passed, pass_rate, observed, {}, details=details)


def _answers(shards: Sequence[ShardTotals]) -> dict[str, Any]:
    out: dict[str, Any] = {"checked": 0, "correct": 0, "wrong": 0, "unverifiable": 0, "by_skill": {}}
    for shard in shards:
        for key in ("checked", "correct", "wrong", "unverifiable"):
            out[key] += shard.answers[key]
        for skill, counts in shard.answers["by_skill"].items():
            mine = out["by_skill"].setdefault(skill, {"correct": 0, "wrong": 0})
            mine["correct"] += counts["correct"]
            mine["wrong"] += counts["wrong"]
    return out


def combine(shards: Sequence[ShardTotals], distinct_responses: int, config: TdmConfig, level: str, batch_id: str) -> BatchVerdict:
    total = sum(shard.records for shard in shards)
    valid = sum(shard.valid for shard in shards)
    suites = {
        name: _suite(name, [shard.suites.get(name, {"rows": 0, "failed": 0, "unexpected": {}, "turns": None}) for shard in shards],
                     distinct_responses, config.quality)
        for name in suites_for(level)
    }  # fmt: skip
    spec_counts: Counter = Counter()
    for shard in shards:
        spec_counts.update(shard.spec_counts)
    named = Counter({spec: n for spec, n in spec_counts.items() if spec is not None})
    batch_spec = named.most_common(1)[0][0] if named else "none"
    batch_error = None
    if total and not valid:
        batch_error = no_record_matches(batch_spec, next((s.first_problem for s in shards if s.first_problem), None))
    accepted = total - sum(shard.rejected for shard in shards)
    diversity, balance = suites.get("diversity"), suites.get("balance")
    metrics = batch_metrics(
        total=total,
        complete=sum(shard.complete for shard in shards),
        dominant_spec_share=spec_counts.most_common(1)[0][1] / total if total else 0.0,
        accepted=accepted,
        unique_response_ratio=diversity.observed.get("diversity.unique_responses") if diversity else None,
        assistant_user_ratio=balance.observed.get("assistant_user_ratio") if balance else None,
        capped_response_words=sum(shard.capped_response_words for shard in shards),
        responses=valid,
    )
    thresholds = config.gate.thresholds()
    report, shortfalls, batch_issue = batch_verdict(suites, metrics, thresholds, batch_error)
    tiers: Counter = Counter()
    warnings: Counter = Counter()
    for shard in shards:
        tiers.update(shard.tiers)
        warnings.update(shard.warnings)
    if batch_issue is not None:
        accepted, tiers = 0, Counter(tier_counts([]))
    report.update(
        batch_id=batch_id,
        spec=batch_spec,
        level=level,
        records=report_counts(total, accepted, total - accepted, sum(shard.schema_rejected for shard in shards)),
        metrics=metrics,
        metric_thresholds=asdict(thresholds),
        tiers=dict(tiers),
        warnings=dict(warnings),
        shortfalls=shortfalls,
    )
    if batch_error:
        report["schema_error"] = batch_error
    if level in VERIFY_LEVELS:
        report["answers"] = _answers(shards)
    return BatchVerdict(report, batch_issue)
