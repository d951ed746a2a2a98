"""Train when the queue holds enough examples (``training.min_examples``), one training
run at a time; the run evaluates the new checkpoint and deploys the best one."""

import json

import dagster as dg
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

from tdm_dagster.config.settings import ConfigError, load_config
from tdm_dagster.home import TdmHome
from tdm_dagster.runs.instance import fail_dead_runs
from tdm_dagster.jobs import (
    TRAIN_EVALUATE_DEPLOY,
    TRAINING_PIPELINE,
    train_evaluate_deploy,
)


def training_in_flight(instance: dg.DagsterInstance) -> int:
    """Training runs queued or running now; those whose process was killed (a `tdm train`)
    are marked failed first, so they never block training."""
    fail_dead_runs(instance)
    return sum(
        len(instance.get_run_ids(dg.RunsFilter(job_name=job, statuses=IN_PROGRESS_RUN_STATUSES), limit=5))
        for job in (TRAIN_EVALUATE_DEPLOY, TRAINING_PIPELINE)
    )


@dg.sensor(
    job=train_evaluate_deploy,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Starts train_evaluate_deploy when the queue holds at least training.min_examples examples.",
)
def train_ready_sensor(context: dg.SensorEvaluationContext):
    from tdm_dagster.queue.claims import claimable_examples

    home = TdmHome.from_env().ensure()
    try:
        needed = load_config(home).training.min_examples
    except ConfigError as exc:
        return dg.SkipReason(f"config problem, not training: {exc}")
    waiting = claimable_examples(home)
    if waiting < needed:
        return dg.SkipReason(f"{waiting} example(s) queued; training starts at {needed}")
    if training_in_flight(context.instance):
        return dg.SkipReason("a training run is already in flight")
    sequence = json.loads(context.cursor or "0") + 1
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"train-{sequence}", tags={"tdm/trigger": "train_ready_sensor", "tdm/queued_examples": str(waiting)})],
        cursor=json.dumps(sequence),
    )
