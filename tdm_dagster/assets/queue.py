"""The training queue: queued_batch puts a batch's approved records in it, and
queue_recheck runs today's gate over everything still waiting there.

``queued_batch`` is the last step of a batch, after ``quality_report`` and its blocking
checks. ``queue_recheck`` runs every 12 hours (``recheck_quality`` job). Files that no
longer pass are trimmed or held back (see :mod:`tdm_dagster.queue.recheck`); its check
fails when anything was, so the alert sensor tells Slack.
"""

import dagster as dg

from tdm_dagster.assets.gate import quality_report
from tdm_dagster.files.atomic import atomic_write_json, read_json
from tdm_dagster.gate.reports import load_report
from tdm_dagster.gate.salvage import has_queueable_records
from tdm_dagster.partitions import batch_partitions
from tdm_dagster.queue.store import TrainingQueue
from tdm_dagster.records.batches import BatchStore
from tdm_dagster.resources import TdmHomeResource

QUEUE_CHECK = "queue_passes_recheck"
QUEUED_MARKER = "queued.json"
"""Written once a batch's queue file is in place: a batch is queued at most once, even
if it runs again after the trainer took its file."""


@dg.asset(
    partitions_def=batch_partitions,
    group_name="queue",
    kinds={"jsonl"},
    deps=[quality_report],
    description="The approved (or salvaged) records, written atomically to `queue/<priority>/<batch>.jsonl` for the trainer.",
)
def queued_batch(context: dg.AssetExecutionContext, tdm: TdmHomeResource) -> dg.MaterializeResult:
    home = tdm.home()
    batch_id = context.partition_key
    report = load_report(home, batch_id)
    if not has_queueable_records(report):
        raise dg.Failure(f"batch {batch_id} was rejected ({report['recommendation']}); it will not be queued")
    store = BatchStore(home)
    plan = store.load_plan(batch_id)
    marker = store.folder(batch_id) / QUEUED_MARKER
    if (earlier := read_json(marker)) is not None:  # the trainer may have taken it already
        context.log.warning(f"batch {batch_id} was already queued at {earlier['path']}: not queued again")
        return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(earlier["path"]), "examples": dg.MetadataValue.int(0)})
    approved = store.load_approved(batch_id)
    path, written = TrainingQueue(home).enqueue(batch_id, approved, plan.priority)
    atomic_write_json(marker, {"path": str(path), "examples": written})
    context.log.info(f"queued {written} examples at {path}")
    from tdm_dagster.gate.deep import (
        remember_queued,  # numpy loads here, not at code-location load
    )

    indexed = remember_queued(home, batch_id, [r["messages"] for r in approved], tdm.config().gate.near_duplicate_threshold)
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            "priority": plan.priority,
            "examples": dg.MetadataValue.int(written),
            "approval_rate": dg.MetadataValue.float(report["records"]["approval_rate"]),
            "salvaged": dg.MetadataValue.int(report["records"].get("salvaged", 0)),
            "queue_depth": dg.MetadataValue.int(TrainingQueue(home).total_depth()),
            "dedup_index_records": dg.MetadataValue.int(indexed),
        }
    )


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
    from tdm_dagster.queue.recheck import recheck_queue

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
            "result": dg.MetadataValue.path(str(home.state_file("recheck"))),
        },
        check_results=[check],
    )
