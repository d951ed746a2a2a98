"""Jobs: ``batch_pipeline`` materializes one batch partition end to end;
``generate_and_queue`` runs the loop once with no partition made beforehand.

``dagster job execute`` has no ``--partition`` flag, and a dynamic partition must exist
before a run can target it, so ``generate_and_queue`` is a plain one-op job: the op
names a new batch, adds its partition, and runs ``batch_pipeline`` for it on the same
Dagster instance (through :mod:`tdm_dagster.runs.launch`). Both runs show in the UI when
``DAGSTER_HOME`` is set. ``ingest_inbox`` does the same for each file in the inbox (and
each part of a large one), ``train_evaluate_deploy`` for a new checkpoint.

The op and asset names these jobs use stay here: the CLI runs the jobs through the
small functions below (run config, outputs, a new checkpoint) instead of knowing them.
"""

import dagster as dg

from tdm_dagster.assets import batch_assets
from tdm_dagster.assets.generate import GenerateConfig
from tdm_dagster.assets.train import (
    checkpoint,
    checkpoint_evaluation,
    checkpoint_partitions,
    deployed_model,
)
from tdm_dagster.records.batches import BatchStore, new_batch_id
from tdm_dagster.generate.curriculum import CurriculumState, curriculum_path
from tdm_dagster.generate.generators import get_generator
from tdm_dagster.ingest.inbox import scan_until_settled
from tdm_dagster.ingest.inbox_failures import Failed
from tdm_dagster.ingest.inbox_pass import ingest_pass
from tdm_dagster.partitions import batch_partitions
from tdm_dagster.gate.reports import load_report
from tdm_dagster.resources import TdmHomeResource
from tdm_dagster.runs.launch import INFO_CONSOLE, LocationJobs, ensure_partition, nested_run_tags, run_job
from tdm_dagster.runs.owner import PID_TAG, owner_tags

BATCH_PIPELINE = "batch_pipeline"
GENERATE_AND_QUEUE = "generate_and_queue"
INGEST_INBOX = "ingest_inbox"

batch_pipeline = dg.define_asset_job(
    BATCH_PIPELINE,
    selection=dg.AssetSelection.assets(*batch_assets),
    partitions_def=batch_partitions,
    config=INFO_CONSOLE,
    description="Generate, test and queue one batch (one partition of the batches).",
)


def _given(overrides: dict) -> dict:
    return {key: value for key, value in overrides.items() if value is not None}


def new_batch_run_config(overrides: dict) -> dict:
    """Run config for a ``batch_pipeline`` run: the overrides (None: not given) go to
    ``generated_batch``."""
    return {"ops": {"generated_batch": {"config": _given(overrides)}}}


def generate_run_config(overrides: dict) -> dict:
    """Run config for a ``generate_and_queue`` run: the overrides (None: not given) go to
    the op that names and runs the batch."""
    return {"ops": {run_one_batch.name: {"config": _given(overrides)}}}


def generated_batch_id(result: dg.ExecuteInProcessResult) -> str:
    """The batch a successful ``generate_and_queue`` run made."""
    return result.output_for_node(run_one_batch.name)


def run_batch_pipeline(
    job: dg.JobDefinition, instance: dg.DagsterInstance, batch_id: str, *, run_config: dict | None = None, tags: dict | None = None
) -> dg.ExecuteInProcessResult:
    """Add the batch's partition and run ``job`` (``batch_pipeline``, resources bound) for it on ``instance``."""
    ensure_partition(instance, batch_partitions, batch_id)
    return run_job(job, instance=instance, run_config=run_config, partition_key=batch_id, tags=tags)


def run_failure_cause(result: dg.ExecuteInProcessResult) -> str | None:
    """What made a run fail, as its first failed step's error says (the innermost error
    our code raised, without its class name), or None."""
    from tdm_dagster.runs.console import routine_error

    for event in result.all_events:
        error = getattr(event.event_specific_data, "error", None) if event.is_step_failure else None
        if error is not None:
            while error.cls_name == "DagsterExecutionStepExecutionError" and error.cause is not None:
                error = error.cause  # Dagster's wrapper around the error raised in the step
            return routine_error(error) or " ".join(error.message.split())
    return None


def batch_verdict(home, batch_id: str, result: dg.ExecuteInProcessResult | None = None) -> str:
    try:
        return load_report(home, batch_id)["recommendation"]
    except FileNotFoundError:
        cause = run_failure_cause(result) if result is not None else None
        return f"failed before its checks: {cause}" if cause else "no report: the batch failed before its checks (see the run's logs)"


def own_run(context: dg.OpExecutionContext) -> None:
    """Tag the op's run with this process (:mod:`tdm_dagster.runs.owner`) when whoever
    started it did not (``dagster job execute``), so a kill leaves no run in progress for
    ever. Only for jobs on the in-process executor, whose ops run in the run's process."""
    if PID_TAG not in context.run.tags:
        context.instance.add_run_tags(context.run_id, owner_tags())


@dg.op(description="Name a new batch, add its partition, and run batch_pipeline for it.")
def run_one_batch(
    context: dg.OpExecutionContext, config: GenerateConfig, tdm: TdmHomeResource, location_jobs: dg.ResourceParam[LocationJobs]
) -> str:
    own_run(context)
    home = tdm.home()
    settings = tdm.config().auto_generate
    skill = config.skill or settings.skill or CurriculumState.load(curriculum_path(home)).active_skill
    skill = get_generator(skill).skill
    taken = set(context.instance.get_dynamic_partitions(batch_partitions.name))
    batch_id = new_batch_id(skill, config.source or settings.source, config.count or settings.count, taken=taken)
    context.log.info(f"running {BATCH_PIPELINE} for new batch {batch_id}")
    result = run_batch_pipeline(
        location_jobs.get(BATCH_PIPELINE),
        context.instance,
        batch_id,
        run_config=new_batch_run_config(config.model_dump()),
        tags=nested_run_tags(context, GENERATE_AND_QUEUE),
    )
    if not result.success:
        raise dg.Failure(
            f"batch {batch_id} was not queued: {batch_verdict(home, batch_id, result)}",
            metadata={"batch_id": batch_id, "batch_run_id": result.run_id},
        )
    report = load_report(home, batch_id)
    context.add_output_metadata(
        {
            "batch_id": batch_id,
            "batch_run_id": result.run_id,
            "approved": dg.MetadataValue.int(report["records"]["approved"]),
            "rejected": dg.MetadataValue.int(report["records"]["rejected"]),
        }
    )
    return batch_id


INBOX_FILE_READABLE = dg.AssetCheckKey(dg.AssetKey("generated_batch"), "inbox_file_readable")
"""Reported failed (without a run) for each inbox file or entry moved to ``failed/``, so
the check-failure alert sensor sends it like any failed check."""


def report_failed_inbox_entry(instance: dg.DagsterInstance, failed: Failed) -> None:
    instance.report_runless_asset_event(
        dg.AssetCheckEvaluation(
            asset_key=INBOX_FILE_READABLE.asset_key,
            check_name=INBOX_FILE_READABLE.name,
            passed=False,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"observed_file": failed.name, "observed_reason": failed.reason, "observed_code": failed.code,
                      "failed_folder": dg.MetadataValue.path(str(failed.folder))},  # fmt: skip
        )
    )


class IngestConfig(dg.Config):
    wait_for_settling: bool = True
    """Poll up to twice ``inbox.settle_sec`` for files still being written (``tdm ingest``);
    the inbox sensor's runs take only what was already settled."""


@dg.op(description="Claim every settled file in the inbox and run batch_pipeline for each (and each part of a large file); refused entries go to failed/.")
def ingest_inbox_files(
    context: dg.OpExecutionContext, config: IngestConfig, tdm: TdmHomeResource, location_jobs: dg.ResourceParam[LocationJobs]
) -> list:
    own_run(context)
    home = tdm.home()
    settings = tdm.config()
    settle_sec = settings.inbox.settle_sec
    scan = scan_until_settled(home, settle_sec=settle_sec, wait_sec=2 * settle_sec if config.wait_for_settling else 0)

    def run_batch(batch_id: str) -> tuple[bool, str]:
        plan = BatchStore(home).load_plan(batch_id)
        context.log.info(f"{plan.source_file} (from record {plan.record_start + 1}) -> batch {batch_id}")
        result = run_batch_pipeline(
            location_jobs.get(BATCH_PIPELINE), context.instance, batch_id, tags=nested_run_tags(context, INGEST_INBOX)
        )
        return result.success, batch_verdict(home, batch_id, result)

    outcomes = ingest_pass(
        home,
        scan,
        priority=settings.auto_generate.priority,
        run_batch=run_batch,
        log=context.log,
        on_failed=lambda failed: report_failed_inbox_entry(context.instance, failed),
    )
    context.add_output_metadata({"batches": dg.MetadataValue.int(len(outcomes)), "outcomes": dg.MetadataValue.json(outcomes)})
    return outcomes


def ingest_outcomes(result: dg.ExecuteInProcessResult) -> list[dict]:
    """What a successful ``ingest_inbox`` run did with each inbox file (or part)."""
    return result.output_for_node(ingest_inbox_files.name)


@dg.job(
    name=INGEST_INBOX,
    executor_def=dg.in_process_executor,
    config=INFO_CONSOLE,
    description="Process every file in $TDM_HOME/inbox once: each becomes a batch that is tested and queued if it passes.",
)
def ingest_inbox() -> None:
    ingest_inbox_files()


@dg.job(
    name=GENERATE_AND_QUEUE,
    executor_def=dg.in_process_executor,
    config=INFO_CONSOLE,
    description="Run the loop once: generate a batch, test it, queue it if it passes. Works from cron with `dagster job execute`.",
)
def generate_and_queue() -> None:
    run_one_batch()


TRAINING_PIPELINE = "training_pipeline"
TRAIN_EVALUATE_DEPLOY = "train_evaluate_deploy"

training_pipeline = dg.define_asset_job(
    TRAINING_PIPELINE,
    selection=dg.AssetSelection.assets(checkpoint, checkpoint_evaluation),
    partitions_def=checkpoint_partitions,
    config=INFO_CONSOLE,
    description="Train one checkpoint on the queue and evaluate it.",
)
DEPLOY_BEST = "deploy_best"
deploy_best = dg.define_asset_job(
    DEPLOY_BEST, selection=dg.AssetSelection.assets(deployed_model), config=INFO_CONSOLE, description="Deploy the best evaluated checkpoint."
)


def deploy_run_config(force: bool, checkpoint: str | None = None) -> dict:
    """Run config for a ``deploy_best`` run: ``checkpoint`` (a key or path) instead of the
    best; ``force`` deploys it (or the newest) whatever the deployed one scored."""
    return {"ops": {deployed_model.op.name: {"config": {"force": force, "checkpoint": checkpoint or ""}}}}


def train_run_config(profile: str | None) -> dict:
    """Run config for a ``checkpoint`` run that applies data ``profile`` (None: config's)."""
    return {"ops": {checkpoint.op.name: {"config": {"profile": profile or ""}}}}


def add_checkpoint(instance: dg.DagsterInstance) -> str:
    """Name a new checkpoint and add its partition; its key."""
    from datetime import datetime, timezone

    key = f"ckpt_{datetime.now(timezone.utc).strftime('%Y%m%d_%H%M%S_%f')}"
    ensure_partition(instance, checkpoint_partitions, key)
    return key


@dg.op(description="Name a new checkpoint, add its partition, train and evaluate it, then deploy the best.")
def train_evaluate_and_deploy(context: dg.OpExecutionContext, location_jobs: dg.ResourceParam[LocationJobs]) -> str:
    own_run(context)
    key = add_checkpoint(context.instance)
    tags = nested_run_tags(context, TRAIN_EVALUATE_DEPLOY)
    trained = run_job(location_jobs.get(TRAINING_PIPELINE), instance=context.instance, partition_key=key, tags=tags)
    if not trained.success:
        raise dg.Failure(f"training or evaluation of {key} failed; see run {trained.run_id}")
    deployed = run_job(location_jobs.get(DEPLOY_BEST), instance=context.instance, tags=tags)
    if not deployed.success:
        raise dg.Failure(f"deployment after {key} failed; see run {deployed.run_id}")
    return key


@dg.job(
    name=TRAIN_EVALUATE_DEPLOY,
    executor_def=dg.in_process_executor,
    config=INFO_CONSOLE,
    description="Train on the queue, evaluate, deploy the best checkpoint. Works from cron with `dagster job execute`.",
)
def train_evaluate_deploy() -> None:
    train_evaluate_and_deploy()


def _logged(context: dg.OpExecutionContext, outcome: dict, what: str) -> dict:
    """The upkeep's outcome, logged: on one line saying why when there was nothing to
    ``what`` (the run still succeeds: a fresh home has no dataset yet)."""
    context.log.info(f"nothing to {what}: {outcome['skipped']}" if "skipped" in outcome else f"{outcome}")
    return outcome


@dg.op(description="A new version of dataset.name without exact and near-duplicates.")
def deduplicate_current_version(context: dg.OpExecutionContext, tdm: TdmHomeResource) -> dict:
    from tdm_dagster.datasets.maintenance import deduplicate

    config = tdm.config()
    return _logged(context, deduplicate(tdm.home(), config.dataset.name, config.gate.near_duplicate_threshold), "de-duplicate")


@dg.job(executor_def=dg.in_process_executor, config=INFO_CONSOLE, description="De-duplicate the training dataset (a new version).")
def deduplicate_dataset() -> None:
    deduplicate_current_version()


@dg.op(description="Export the current version of dataset.name to $TDM_HOME/exports/.")
def export_current_version(context: dg.OpExecutionContext, tdm: TdmHomeResource) -> dict:
    from tdm_dagster.datasets.maintenance import export_current

    return _logged(context, export_current(tdm.home(), tdm.config().dataset.name), "export")


@dg.job(executor_def=dg.in_process_executor, config=INFO_CONSOLE, description="Export the current training dataset (JSONL and Hugging Face).")
def export_dataset() -> None:
    export_current_version()
