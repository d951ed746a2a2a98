"""generated_batch: the first step of a batch (one partition per batch).

A batch comes from the built-in skill generators, the skill API or the inference
server, or is an inbox file claimed by the inbox sensor (read here, mapped to our specs).
The gate (``assets/gate.py``) and the queue (``assets/queue.py``) follow.
"""

import time
from collections import Counter
from typing import Optional

import dagster as dg

from tdm_dagster.config.sections import GateConfig
from tdm_dagster.config.settings import with_overrides
from tdm_dagster.generate.planning import plan_batch, produce_records, record_generation_start
from tdm_dagster.ingest.inbox_claims import plan_next_part
from tdm_dagster.partitions import batch_partitions
from tdm_dagster.progress import SteadyLog
from tdm_dagster.records.batches import BatchStore
from tdm_dagster.runs.boxes import INFERENCE, on_box
from tdm_dagster.resources import (
    InferenceServerResource,
    SkillApiResource,
    TdmHomeResource,
)


class GenerateConfig(dg.Config):
    """Run-config overrides of ``auto_generate`` for this one batch (empty = config file)."""

    count: Optional[int] = None
    seed: Optional[int] = None
    priority: Optional[str] = None
    skill: Optional[str] = None
    source: Optional[str] = None


@dg.asset(
    partitions_def=batch_partitions,
    group_name="generate",
    kinds={"python"},
    op_tags=on_box(INFERENCE),
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
    config_file = tdm.config()
    settings = with_overrides(
        config_file,
        "auto_generate",
        {"seed": config.seed, "priority": config.priority, "source": config.source, "count": config.count},
        "run config",
    ).auto_generate
    plan = plan_batch(home, settings, context.partition_key, count=config.count, skill=config.skill)
    record_generation_start(home, plan.batch_id, time.time())
    context.log.info(f"generating {plan.count} {plan.skill} examples at level {plan.level} from {plan.source} (seed {plan.seed})")
    from tdm_dagster.evaluate.isolation import held_out_filter  # numpy loads here, not with the location

    progress = SteadyLog(context.log.info, "generated", plan.count)  # a line every few seconds, not per record
    avoid = held_out_filter(home, config_file.gate.max_record_bytes)
    started = time.perf_counter()
    if plan.source == "inference":
        with inference.client() as client:
            records = produce_records(plan, inference=client, payload=settings.payload, progress=progress.reached, avoid=avoid)
    elif plan.source == "skill_api":
        with skill_api.client() as client:
            records = produce_records(plan, skill_source=client, progress=progress.reached)
    else:
        records = produce_records(plan, progress=progress.reached, avoid=avoid)
    seconds = time.perf_counter() - started
    progress.finish()
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
