"""generated_batch -> validated_batch -> quality_report -> queued_batch, one partition per batch.

The quality suites run as blocking asset checks on ``validated_batch``
(``tdm_dagster/checks/quality.py``): a batch that fails any of them stops there, so
``quality_report`` and ``queued_batch`` are only materialized for approved batches. The
checks write the report and the rejected records themselves, so a rejected batch still
has both on disk.
"""

import time
from collections import Counter
from typing import Optional

import dagster as dg

from tdm_dagster.files.atomic import atomic_write_json, read_json
from tdm_dagster.records.batches import BatchStore
from tdm_dagster.config.settings import GateConfig, with_overrides
from tdm_dagster.generate.planning import plan_batch, produce_records, record_generation_start
from tdm_dagster.ingest.inbox_claims import plan_next_part
from tdm_dagster.partitions import batch_partitions
from tdm_dagster.gate.reports import load_report
from tdm_dagster.resources import (
    InferenceServerResource,
    SkillApiResource,
    TdmHomeResource,
)
from tdm_dagster.gate.schemas import schema_gate
from tdm_dagster.queue.store import TrainingQueue


QUEUED_MARKER = "queued.json"
"""Written once a batch's queue file is in place: a batch is queued at most once, even
if it runs again after the trainer took its file."""


class GenerateConfig(dg.Config):
    """Run-config overrides of ``auto_generate`` for this one batch (empty = config file)."""

    count: Optional[int] = None
    seed: Optional[int] = None
    priority: Optional[str] = None
    skill: Optional[str] = None
    source: Optional[str] = None


def _progress_logger(context: dg.AssetExecutionContext, what: str):
    """Log progress at about every 10%, so long generations show they are moving."""
    step = {"next": 0.1}

    def report(done: int, total: int) -> None:
        if total and (done / total >= step["next"] or done == total):
            context.log.info(f"{what}: {done}/{total} ({done / total:.0%})")
            step["next"] = min(1.0, done / total + 0.1)

    return report


@dg.asset(
    partitions_def=batch_partitions,
    group_name="generate",
    kinds={"python"},
    description="A batch of chat examples from the built-in skill generators, the skill API or the inference server.",
)
def generated_batch(
    context: dg.AssetExecutionContext,
    config: GenerateConfig,
    tdm: TdmHomeResource,
    inference: InferenceServerResource,
    skill_api: SkillApiResource,
) -> dg.MaterializeResult:
    home = tdm.home()
    store = BatchStore(home)
    if store.is_inbox_batch(context.partition_key):
        return _ingest_inbox_file(context, store, tdm.config().gate)
    settings = with_overrides(
        tdm.config(),
        "auto_generate",
        {"seed": config.seed, "priority": config.priority, "source": config.source, "count": config.count},
        "run config",
    ).auto_generate
    plan = plan_batch(home, settings, context.partition_key, count=config.count, skill=config.skill)
    record_generation_start(home, plan.batch_id, time.time())
    context.log.info(f"generating {plan.count} {plan.skill} examples at level {plan.level} from {plan.source} (seed {plan.seed})")
    progress = _progress_logger(context, "generated")
    started = time.perf_counter()
    if plan.source == "inference":
        with inference.client() as client:
            records = produce_records(plan, inference=client, payload=settings.payload, progress=progress)
    elif plan.source == "skill_api":
        with skill_api.client() as client:
            records = produce_records(plan, skill_source=client, progress=progress)
    else:
        records = produce_records(plan, progress=progress)
    seconds = time.perf_counter() - started
    BatchStore(home).save_generated(plan, records)
    return dg.MaterializeResult(
        metadata={
            "records": dg.MetadataValue.int(len(records)),
            "skill": plan.skill,
            "level": dg.MetadataValue.int(plan.level),
            "source": plan.source,
            "seed": dg.MetadataValue.int(plan.seed),
            "spec": plan.spec,
            "priority": plan.priority,
            "examples_per_sec": dg.MetadataValue.float(round(len(records) / seconds, 1) if seconds else 0.0),
            "path": dg.MetadataValue.path(str(BatchStore(home).folder(plan.batch_id) / "generated.jsonl")),
        }
    )


def _ingest_inbox_file(context: dg.AssetExecutionContext, store: BatchStore, gate: GateConfig) -> dg.MaterializeResult:
    """An inbox batch: the claimed file (or its next part), read streamed and mapped to
    our specs. A file longer than ``gate.max_batch_records`` continues in a next part,
    which the inbox sensor (or ``tdm ingest``) runs as its own batch."""
    from tdm_dagster.ingest.load import load_file

    plan = store.load_plan(context.partition_key)
    context.log.info(f"reading {plan.source_file} from record {plan.record_start + 1}")
    loaded = load_file(
        plan.source_file, max_record_bytes=gate.max_record_bytes, start=plan.record_start, limit=gate.max_batch_records
    )
    next_part = plan_next_part(store.home, plan, loaded.input_records) if loaded.has_more else None
    store.save_ingested(plan.batch_id, loaded, continues_in=next_part)
    if next_part:
        context.log.info(f"{plan.source_file} continues in batch {next_part}")
    if loaded.file_problem:
        context.log.warning(f"file problem: {loaded.file_problem}")
    shapes = Counter(spec for spec in loaded.specs if spec)
    return dg.MaterializeResult(
        metadata={
            "source": "inbox",
            "file": dg.MetadataValue.path(plan.source_file),
            "input_records": dg.MetadataValue.int(loaded.input_records),
            "records": dg.MetadataValue.int(len(loaded.records)),
            "unreadable": dg.MetadataValue.int(len(loaded.issues)),
            "specs": ", ".join(f"{name}: {count}" for name, count in shapes.most_common()) or "none",
            "file_problem": str(loaded.file_problem or ""),
            "first_record": dg.MetadataValue.int(plan.record_start + 1),
            "continues_in": next_part or "",
        }
    )


@dg.asset(
    partitions_def=batch_partitions,
    group_name="test",
    kinds={"python"},
    deps=[generated_batch],
    description="The batch after the deny-by-default schema gate, read as chats; the quality suites run as its checks.",
)
def validated_batch(context: dg.AssetExecutionContext, tdm: TdmHomeResource) -> dg.MaterializeResult:
    store = BatchStore(tdm.home())
    batch_id = context.partition_key
    plan = store.load_plan(batch_id)
    ingest = store.load_ingest(batch_id)
    schema = schema_gate(store.load_generated(batch_id), ingest["specs"] if ingest else plan.spec)
    store.save_validated(batch_id, schema)
    if schema.batch_error:
        context.log.error(f"schema gate refused batch {batch_id}: {schema.batch_error}")
    problems = {i: found for i, found in ((ingest or {}).get("issues", {}) | schema.rejected).items() if found}
    if problems and not schema.batch_error:
        context.log.warning(f"{len(problems)} of {schema.total} records could not be read or break their spec")
    samples = [f"record {i + 1}: {found[0].message}" for i, found in sorted(problems.items())[:5]]
    return dg.MaterializeResult(
        metadata={
            "spec": schema.spec,
            "records": dg.MetadataValue.int(schema.total),
            "schema_valid": dg.MetadataValue.int(len(schema.valid_indices)),
            "schema_rejected": dg.MetadataValue.int(len(problems)),
            "schema_error": schema.batch_error or "",
            "sample_rejections": dg.MetadataValue.md("\n".join(f"- {s}" for s in samples) or "none"),
        }
    )


@dg.asset(
    partitions_def=batch_partitions,
    group_name="test",
    kinds={"json"},
    deps=[validated_batch],
    description="The batch's quality report (`reports/<batch>.json`): every check, pass rates and the approval split.",
)
def quality_report(context: dg.AssetExecutionContext, tdm: TdmHomeResource) -> dg.MaterializeResult:
    home = tdm.home()
    report = load_report(home, context.partition_key)
    records = report["records"]
    metadata: dict = {
        "overall_pass": dg.MetadataValue.bool(bool(report["overall_pass"])),
        "recommendation": report["recommendation"],
        "passed_checks": dg.MetadataValue.int(report["passed_checks"]),
        "failed_checks": dg.MetadataValue.int(report["failed_checks"]),
        "generated": dg.MetadataValue.int(records["generated"]),
        "approved": dg.MetadataValue.int(records["approved"]),
        "rejected": dg.MetadataValue.int(records["rejected"]),
        "approval_rate": dg.MetadataValue.float(records["approval_rate"]),
        "path": dg.MetadataValue.path(str(home.reports_dir / f"{context.partition_key}.json")),
    }
    for name, value in report.get("metrics", {}).items():
        if value is not None:
            metadata[f"metric_{name}"] = dg.MetadataValue.float(value)
    for name, count in report.get("tiers", {}).items():
        metadata[f"tier_{name}"] = dg.MetadataValue.int(count)
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    partitions_def=batch_partitions,
    group_name="queue",
    kinds={"jsonl"},
    deps=[quality_report],
    description="The approved records, written atomically to `queue/<priority>/<batch>.jsonl` for the trainer.",
)
def queued_batch(context: dg.AssetExecutionContext, tdm: TdmHomeResource) -> dg.MaterializeResult:
    home = tdm.home()
    batch_id = context.partition_key
    report = load_report(home, batch_id)
    if not report["overall_pass"]:
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
            "queue_depth": dg.MetadataValue.int(TrainingQueue(home).total_depth()),
            "dedup_index_records": dg.MetadataValue.int(indexed),
        }
    )
