"""The gate's findings as blocking asset checks on ``quality_report``: the five quality
suites (format, length, diversity, balance, content), the deep level's duplicates and
leakage, and the batch metrics.

``quality_report`` judges the batch and saves the outcome (report, approved and rejected
records, and what these checks show); the checks only read that one saved view and turn
it into results, so re-running them shows the verdict again and never rewrites it. Each
suite is still its own check in the UI. A failing suite or metric has ERROR severity and
is blocking, so the batch stops before the queue; when the batch's records were salvaged
(``gate.on_batch_failure``), it still fails, with WARN severity and the salvage in its
description, so the run goes on to queue them, as the user chose, and the UI shows the
batch failed.
"""

import json
import warnings
from collections.abc import Iterator
from typing import Any

import dagster as dg

from tdm_dagster.assets.gate import quality_report
from tdm_dagster.gate.quality import SUITE_NAMES
from tdm_dagster.gate.reports import load_check_view
from tdm_dagster.partitions import batch_partitions
from tdm_dagster.resources import TdmHomeResource

METRICS_CHECK = "batch_metrics"
DEEP_CHECKS = ("duplicates", "leakage")
_DESCRIPTIONS = {
    "format": "Conversation structure: known roles, user/assistant alternation, non-empty turns.",
    "length": "Token count of each conversation within quality.min_tokens..max_tokens (real tokenizer).",
    "diversity": "Unique-response ratio at least quality.min_unique_response_ratio; no duplicate examples.",
    "balance": "User/assistant turn ratio about 1:1, within quality.balance_tolerance.",
    "content": "No empty, malformed, boilerplate or excessively repetitive turns (Gopher repetition thresholds).",
    "duplicates": "Deep level: exact copies (rejected) and near-duplicates (kept, scored lower) within the batch and of queued data.",
    "leakage": "Deep level: no evaluation problem (built-in skills, by problem key), no n-gram overlap with the evaluation sets "
    "and no reference answer inside a prompt.",
    METRICS_CHECK: "Batch metrics at or above gate.min_completeness, min_consistency, min_validity and min_overall.",
}


def _flatten(prefix: str, values: dict) -> dict:
    flat: dict = {}
    for key, value in values.items():
        name = f"{prefix}.{key}"
        if isinstance(value, dict):
            flat.update(_flatten(name, value))
        else:
            flat[name] = _metadata_value(value)
    return flat


def _metadata_value(value):
    if isinstance(value, bool):
        return dg.MetadataValue.bool(value)
    if isinstance(value, int):
        return dg.MetadataValue.int(value)
    if isinstance(value, float):
        return dg.MetadataValue.float(round(value, 4))
    return dg.MetadataValue.text(json.dumps(value, default=str) if isinstance(value, (list, tuple)) else str(value))


def _skipped(name: str, level: str, description: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=quality_report.key, check_name=name, passed=True, severity=dg.AssetCheckSeverity.WARN,
        description=description, metadata={"skipped": True, "gate_level": level},
    )  # fmt: skip


def failure_severity(view: dict[str, Any]) -> tuple[dg.AssetCheckSeverity, str | None]:
    """How a failing suite or metric check of this batch fails: ERROR (blocking), or WARN
    with a sentence saying what was salvaged when the batch's records were."""
    salvage = view.get("salvage")
    if not salvage:
        return dg.AssetCheckSeverity.ERROR, None
    return dg.AssetCheckSeverity.WARN, (
        f"the batch failed; {salvage['salvaged']} records that pass on their own were salvaged and "
        f"{salvage['rejected']} rejected ({salvage['policy']})"
    )


def suite_result(
    name: str, suite: dict[str, Any] | None, level: str, on_failure: tuple[dg.AssetCheckSeverity, str | None] = (dg.AssetCheckSeverity.ERROR, None)
) -> dg.AssetCheckResult:
    """One suite as the UI shows it: pass rate, observed values, thresholds, samples;
    failing with ``on_failure``'s severity and note (see :func:`failure_severity`)."""
    if suite is None:
        from tdm_dagster.gate.run import suites_for  # the gate loads when it runs, not with the location

        return _skipped(name, level, f"not run: gate level {level} runs {', '.join(suites_for(level))} only")
    failures = [
        f"- {sample}" if isinstance(sample, str) else f"- `{json.dumps(sample, ensure_ascii=False)[:300]}`"
        for sample in suite["samples"]
    ]
    severity, note = on_failure
    return dg.AssetCheckResult(
        asset_key=quality_report.key,
        check_name=name,
        passed=suite["passed"],
        severity=severity,
        description=None if suite["passed"] else note,
        metadata={
            "pass_rate": dg.MetadataValue.float(round(suite["pass_rate"], 4)),
            "failed_records": dg.MetadataValue.int(suite["failed_records"]),
            **_flatten("observed", suite["observed"]),
            **_flatten("threshold", suite["thresholds"]),
            "sample_failures": dg.MetadataValue.md("\n".join(failures) or "none"),
        },
    )


def deep_result(name: str, findings: dict[str, Any] | None, level: str) -> dg.AssetCheckResult:
    """Deep findings reject or down-score records; they warn, they never block the batch."""
    if findings is None:
        return _skipped(name, level, f"not run: gate level {level} (deep only)")
    return dg.AssetCheckResult(
        asset_key=quality_report.key,
        check_name=name,
        passed=not findings["found"],
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "records_flagged": dg.MetadataValue.int(findings["records_flagged"]),
            **{f"found.{code}": dg.MetadataValue.int(count) for code, count in findings["found"].items()},
            "sample_findings": dg.MetadataValue.md("\n".join(f"- {sample}" for sample in findings["samples"]) or "none"),
        },
    )


def metrics_result(view: dict[str, Any]) -> dg.AssetCheckResult:
    """The batch metrics against their thresholds, with the quality tiers of the approved
    records and how many replies an answer verifier checked and found wrong."""
    shortfalls = view["shortfalls"]
    severity, note = failure_severity(view)
    return dg.AssetCheckResult(
        asset_key=quality_report.key,
        check_name=METRICS_CHECK,
        passed=not shortfalls,
        severity=severity,
        description="; ".join([*shortfalls, *([note] if note and shortfalls else [])]) or "all batch metrics meet their thresholds",
        metadata={
            **{f"observed.{name}": _metadata_value(value) for name, value in view["metrics"].items() if value is not None},
            **_flatten("threshold", view["metric_thresholds"]),
            **{f"tier.{name}": dg.MetadataValue.int(count) for name, count in view["tiers"].items()},
            **_flatten("answers", view.get("answers") or {}),
        },
    )


def gate_check_results(view: dict[str, Any]) -> list[dg.AssetCheckResult]:
    """Every check's result from a saved outcome view (``gate.outcome.check_view``)."""
    level, deep = view["level"], view["deep"] or {}
    return [
        *(suite_result(name, view["suites"].get(name), level, failure_severity(view)) for name in SUITE_NAMES),
        *(deep_result(name, deep.get(name), level) for name in DEEP_CHECKS),
        metrics_result(view),
    ]


def _check_specs() -> list[dg.AssetCheckSpec]:
    """One spec per check, partitioned like the batch, so each evaluation records its batch
    and the UI shows check results per batch. Dagster 1.13 marks partitioned check specs as
    preview; tests/dagster/test_alerts.py pins the behaviour we rely on (the evaluation's partition)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return [
            dg.AssetCheckSpec(name, asset=quality_report, blocking=True, description=_DESCRIPTIONS[name], partitions_def=batch_partitions)
            for name in (*SUITE_NAMES, *DEEP_CHECKS, METRICS_CHECK)
        ]


@dg.multi_asset_check(specs=_check_specs())
def quality_suites(context: dg.AssetCheckExecutionContext, tdm: TdmHomeResource) -> Iterator[dg.AssetCheckResult]:
    yield from gate_check_results(load_check_view(tdm.home(), context.partition_key))
