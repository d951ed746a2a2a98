"""The five quality suites (format, length, diversity, balance, content) as blocking
asset checks on ``validated_batch``.

They run in one step so Great Expectations and the tokenizer load once per batch; each
suite is still its own Great Expectations suite and its own check in the UI. A failing
suite has ERROR severity and is blocking, so the batch stops before the queue. The step
also writes the batch's report and its rejected records, so a rejected batch keeps both.
"""

import json
from collections.abc import Iterator

import dagster as dg

from tdm_dagster.assets.batches import validated_batch
from tdm_dagster.batches import BatchStore
from tdm_dagster.gate import decide, suites_for
from tdm_dagster.quality import SUITE_NAMES, SuiteResult, run_quality
from tdm_dagster.reports import save_outcome
from tdm_dagster.resources import TdmHomeResource

METRICS_CHECK = "batch_metrics"
_DESCRIPTIONS = {
    "format": "Conversation structure: known roles, user/assistant alternation, non-empty turns.",
    "length": "Token count of each conversation within quality.min_tokens..max_tokens (real tokenizer).",
    "diversity": "Unique-response ratio at least quality.min_unique_response_ratio; no duplicate examples.",
    "balance": "User/assistant turn ratio about 1:1, within quality.balance_tolerance.",
    "content": "No empty, malformed, boilerplate or excessively repetitive turns (Gopher repetition thresholds).",
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


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(name, asset=validated_batch, blocking=True, description=_DESCRIPTIONS[name])
        for name in (*SUITE_NAMES, METRICS_CHECK)
    ],
)
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
    outcome = decide(
        schema, suites, batch_id, records=records, level=level, thresholds=config.gate.thresholds(),
        extra_issues=ingest["issues"] if ingest else None, specs=ingest["specs"] if ingest else None,
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
