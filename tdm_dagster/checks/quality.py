"""The five quality suites (format, length, diversity, balance, content) as blocking
asset checks on ``validated_batch``.

They run in one step so Great Expectations and the tokenizer load once per batch; each
suite is still its own Great Expectations suite and its own check in the UI. A failing
suite has ERROR severity and is blocking, so the batch stops before the queue. The step
also writes the batch's report and its rejected records, so a rejected batch keeps both.
"""

import json
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import dagster as dg

from tdm_dagster.assets.batches import validated_batch
from tdm_dagster.records.batches import BatchStore
from tdm_dagster.gate.run import decide, suites_for
from tdm_dagster.partitions import batch_partitions
from tdm_dagster.gate.quality import SUITE_NAMES, SuiteResult, run_quality
from tdm_dagster.gate.reports import save_outcome
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
    "leakage": "Deep level: no n-gram overlap with the evaluation sets and no reference answer inside a prompt.",
    METRICS_CHECK: "Batch metrics at or above gate.min_completeness, min_consistency, min_validity and min_overall.",
}


def _check_metadata(result: SuiteResult) -> dict:
    """What a user reads in the UI: pass rate, observed values, thresholds, samples."""
    metadata: dict = {
        "pass_rate": dg.MetadataValue.float(round(result.pass_rate, 4)),
        "failed_records": dg.MetadataValue.int(len(result.failed_records)),
    }
    metadata.update(_flatten("observed", result.observed))
    metadata.update(_flatten("threshold", result.thresholds))
    failures = [
        f"- {sample}" if isinstance(sample, str) else f"- `{json.dumps(sample, ensure_ascii=False)[:300]}`"
        for sample in result.samples[:5]
    ]
    metadata["sample_failures"] = dg.MetadataValue.md("\n".join(failures) or "none")
    return metadata


def _deep_findings(home, config, batch_id: str, schema, ingest) -> dict:
    from tdm_dagster.gate.deep import deep_findings, load_eval_sets, load_queued_index

    if ingest:
        keys = [f"{Path(s.get('file', batch_id)).name}:{s.get('line', i + 1)}" for i, s in enumerate(ingest["sources"])]
    else:
        keys = [f"{batch_id}:{i + 1}" for i in range(schema.total)]
    gate = config.gate
    return deep_findings(
        schema.valid_indices, schema.conversations, keys,
        eval_sets=load_eval_sets(gate.eval_sets, gate.max_record_bytes),
        threshold=gate.near_duplicate_threshold,
        queued=load_queued_index(home, gate.near_duplicate_threshold),
    )  # fmt: skip


def _deep_check_result(name: str, findings: dict | None, level: str) -> dg.AssetCheckResult:
    """Deep findings reject or down-score records; they warn, they never block the batch."""
    if findings is None:
        return dg.AssetCheckResult(
            asset_key=validated_batch.key, check_name=name, passed=True, severity=dg.AssetCheckSeverity.WARN,
            description=f"not run: gate level {level} (deep only)", metadata={"skipped": True, "gate_level": level},
        )  # fmt: skip
    issues = [issue for found in findings.values() for issue in found]
    codes = Counter(issue.code for issue in issues)
    return dg.AssetCheckResult(
        asset_key=validated_batch.key,
        check_name=name,
        passed=not issues,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "records_flagged": dg.MetadataValue.int(len(findings)),
            **{f"found.{code}": dg.MetadataValue.int(count) for code, count in codes.items()},
            "sample_findings": dg.MetadataValue.md("\n".join(f"- record {p + 1}: {f[0].message}" for p, f in list(findings.items())[:5]) or "none"),
        },
    )


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


def _check_specs() -> list[dg.AssetCheckSpec]:
    """One spec per check, partitioned like the batch, so each evaluation records its batch
    and the UI shows check results per batch. Dagster 1.13 marks partitioned check specs as
    preview; tests/dagster/test_alerts.py pins the behaviour we rely on (the evaluation's partition)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return [
            dg.AssetCheckSpec(name, asset=validated_batch, blocking=True, description=_DESCRIPTIONS[name], partitions_def=batch_partitions)
            for name in (*SUITE_NAMES, *DEEP_CHECKS, METRICS_CHECK)
        ]


@dg.multi_asset_check(specs=_check_specs())
def quality_suites(context: dg.AssetCheckExecutionContext, tdm: TdmHomeResource) -> Iterator[dg.AssetCheckResult]:
    home = tdm.home()
    batch_id = context.partition_key
    store = BatchStore(home)
    schema = store.load_validated(batch_id)
    config = tdm.config()
    level = config.gate.level
    records = store.load_generated(batch_id)
    ingest = store.load_ingest(batch_id)
    suites = run_quality(schema.conversations, config.quality, names=suites_for(level))
    extra: dict = {i: list(found) for i, found in (ingest["issues"] if ingest else {}).items()}
    deep = _deep_findings(home, config, batch_id, schema, ingest) if level == "deep" else {}
    for findings in deep.values():
        for position, found in findings.items():
            extra.setdefault(position, []).extend(found)
    outcome = decide(
        schema, suites, batch_id, records=records, level=level, thresholds=config.gate.thresholds(),
        extra_issues=extra, specs=ingest["specs"] if ingest else None,
    )  # fmt: skip
    save_outcome(home, batch_id, records, outcome, sources=ingest["sources"] if ingest else None)
    records = outcome.report["records"]
    context.log.info(
        f"batch {batch_id}: {records['approved']} approved, {records['rejected']} rejected "
        f"({outcome.report['recommendation']})"
    )
    for name in SUITE_NAMES:
        result = suites.get(name)
        if result is None:
            yield dg.AssetCheckResult(
                asset_key=validated_batch.key,
                check_name=name,
                passed=True,
                severity=dg.AssetCheckSeverity.WARN,
                description=f"not run: gate level {level} runs {', '.join(suites_for(level))} only",
                metadata={"skipped": True, "gate_level": level},
            )
            continue
        yield dg.AssetCheckResult(
            asset_key=validated_batch.key,
            check_name=name,
            passed=result.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata=_check_metadata(result),
        )
    for name in DEEP_CHECKS:
        yield _deep_check_result(name, deep.get(name), level)
    metrics = outcome.report["metrics"]
    shortfalls = config.gate.thresholds().failures(metrics)
    yield dg.AssetCheckResult(
        asset_key=validated_batch.key,
        check_name=METRICS_CHECK,
        passed=not shortfalls,
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(shortfalls) or "all batch metrics meet their thresholds",
        metadata={
            **{f"observed.{name}": _metadata_value(value) for name, value in metrics.items() if value is not None},
            **_flatten("threshold", outcome.report["metric_thresholds"]),
            **{f"tier.{name}": dg.MetadataValue.int(count) for name, count in outcome.report["tiers"].items()},
        },
    )
