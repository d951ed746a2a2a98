"""queue_recheck: today's gate over everything still waiting in the training queue.

Runs every 12 hours (``recheck_quality`` job). Files that no longer pass are trimmed or
held back (see :mod:`tdm_dagster.queue.recheck`); its check fails when anything was, so the
alert sensor tells Slack.
"""

import dagster as dg

from tdm_dagster.assets.batches import queued_batch
from tdm_dagster.resources import TdmHomeResource

QUEUE_CHECK = "queue_passes_recheck"


def _verdict_lines(result) -> str:
    rows = [f"- `{f.batch_id}` ({f.priority}): {f.verdict}, {'; '.join(f.reasons)}" for f in result.files if f.verdict != "passed"]
    return "\n".join(rows[:20]) or "every file passed"


@dg.asset(
    group_name="queue",
    kinds={"jsonl"},
    deps=[queued_batch],
    check_specs=[
        dg.AssetCheckSpec(
            QUEUE_CHECK, asset="queue_recheck",
            description="Every waiting queue file still passes today's gate (a held file is an ERROR, trimmed records a WARN).",
        )
    ],
    description="Re-runs today's gate on every file waiting in the queue; trims records and holds files that no longer pass.",
)  # fmt: skip
def queue_recheck(context: dg.AssetExecutionContext, tdm: TdmHomeResource) -> dg.MaterializeResult:
    from tdm_dagster.queue.recheck import last_result_path, recheck_queue

    home = tdm.home()

    def log(verdict) -> None:
        context.log.info(f"{verdict.batch_id} ({verdict.priority}, {verdict.records} records): {verdict.verdict}")

    result = recheck_queue(home, tdm.config(), progress=log)
    counts = {verdict: dg.MetadataValue.int(result.count(verdict)) for verdict in ("passed", "trimmed", "held", "skipped")}
    summary = {
        "files_checked": dg.MetadataValue.int(len(result.files)),
        **counts,
        "records_removed": dg.MetadataValue.int(result.removed),
        "records_held": dg.MetadataValue.int(result.held_records),
    }
    held = result.count("held")
    check = dg.AssetCheckResult(
        check_name=QUEUE_CHECK,
        passed=result.clean,
        severity=dg.AssetCheckSeverity.ERROR if held else dg.AssetCheckSeverity.WARN,
        description=f"{held} file(s) held, {result.removed} record(s) trimmed" if not result.clean else "every queued file passes",
        metadata={**{f"observed.{name}": value for name, value in summary.items()}, "verdicts": dg.MetadataValue.md(_verdict_lines(result))},
    )
    return dg.MaterializeResult(
        metadata={
            **summary,
            "records": dg.MetadataValue.int(result.records),
            "gate_level": result.level,
            "verdicts": dg.MetadataValue.md(_verdict_lines(result)),
            "result": dg.MetadataValue.path(str(last_result_path(home))),
        },
        check_results=[check],
    )
