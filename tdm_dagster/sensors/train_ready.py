"""Train when the queue holds enough examples (``training.min_examples``), one training
run at a time; the run evaluates the new checkpoint and deploys the best one."""

import json

import dagster as dg

from tdm_dagster.jobs import (
    TRAIN_EVALUATE_DEPLOY,
    TRAINING_PIPELINE,
    train_evaluate_deploy,
)
from tdm_dagster.resources.home import TdmHomeResource
from tdm_dagster.runs.instance import IN_PROGRESS_STATUSES, fail_dead_runs
from tdm_dagster.sensors.common import config_or_skip


def training_in_flight(instance: dg.DagsterInstance) -> int:
    """Training runs queued or running now; those whose process was killed (a `tdm train`)
    are marked failed first, so they never block training."""
    fail_dead_runs(instance)
    return sum(
        len(instance.get_run_ids(dg.RunsFilter(job_name=job, statuses=IN_PROGRESS_STATUSES), limit=5))
        for job in (TRAIN_EVALUATE_DEPLOY, TRAINING_PIPELINE)
    )


@dg.sensor(
    job=train_evaluate_deploy,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Starts train_evaluate_deploy when the queue holds at least training.min_examples examples.",
)
def train_ready_sensor(context: dg.SensorEvaluationContext, tdm: TdmHomeResource):
    from tdm_dagster.queue.claims import claimable_examples

    setup = config_or_skip(tdm, "config problem, not training")
    if isinstance(setup, dg.SkipReason):
        return setup
    needed = setup.config.training.min_examples
    waiting = claimable_examples(setup.home)
    if waiting < needed:
        return dg.SkipReason(f"{waiting} example(s) queued; training starts at {needed}")
    if training_in_flight(context.instance):
        return dg.SkipReason("a training run is already in flight")
    sequence = json.loads(context.cursor or "0") + 1
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"train-{sequence}", tags={"tdm/trigger": "train_ready_sensor", "tdm/queued_examples": str(waiting)})],
        cursor=json.dumps(sequence),
    )
