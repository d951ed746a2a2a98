"""Ask for a new batch when the training queue runs low.

Each tick: read the config (a bad file skips the tick with the reason, it never crashes
the daemon), count the queue, and let ``decide_trigger`` weigh threshold, cooldown and
runs already in flight. A request adds the batch's partition and a ``batch_pipeline``
run whose run key is the batch id, so a re-evaluated tick never starts it twice.
"""

import json
import time
from collections.abc import Callable

import dagster as dg

from tdm_dagster.generate.curriculum import CurriculumState, curriculum_path
from tdm_dagster.generate.generators import get_generator
from tdm_dagster.generate.planning import decide_trigger, last_generation
from tdm_dagster.jobs import BATCH_PIPELINE, GENERATE_AND_QUEUE, batch_pipeline
from tdm_dagster.partitions import batch_partitions
from tdm_dagster.queue.store import TrainingQueue
from tdm_dagster.records.batches import new_batch_id
from tdm_dagster.resources.home import TdmHomeResource
from tdm_dagster.runs.instance import IN_PROGRESS_STATUSES, fail_dead_runs
from tdm_dagster.sensors.common import config_or_skip

INBOX_TRIGGERS = ("inbox_sensor", "ingest_inbox")


def runs_in_flight(instance: dg.DagsterInstance, log: Callable[[str], None] | None = None) -> int:
    """Generation runs queued or running now, whichever way they were started (inbox
    batches use the same job but are not generation, so they do not count). Runs whose
    process was killed are marked failed first (``log`` says which), so they never
    block generation."""
    fail_dead_runs(instance, log)
    generating = len(instance.get_run_ids(dg.RunsFilter(job_name=GENERATE_AND_QUEUE, statuses=IN_PROGRESS_STATUSES), limit=5))
    batches = instance.get_runs(dg.RunsFilter(job_name=BATCH_PIPELINE, statuses=IN_PROGRESS_STATUSES), limit=50)
    return generating + sum(1 for run in batches if run.tags.get("tdm/trigger") not in INBOX_TRIGGERS)


@dg.sensor(
    job=batch_pipeline,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Requests a new batch when the queue depth is at or below auto_generate.threshold (honours enabled and cooldown_sec).",
)
def queue_low_sensor(context: dg.SensorEvaluationContext, tdm: TdmHomeResource):
    setup = config_or_skip(tdm, "cannot plan a batch")
    if isinstance(setup, dg.SkipReason):
        return setup
    home, settings = setup.home, setup.config.auto_generate
    try:  # an unknown skill, or a curriculum file that cannot be read
        skill = get_generator(settings.skill or CurriculumState.load(curriculum_path(home)).active_skill).skill
    except (KeyError, ValueError) as exc:
        return dg.SkipReason(f"cannot plan a batch: {exc}")

    cursor = json.loads(context.cursor) if context.cursor else {}
    now = time.time()
    started = (last_generation(home) or {}).get("started_at")
    last = max(filter(None, (started, cursor.get("last_request_at"))), default=None)
    depth = TrainingQueue(home).total_depth()
    decision = decide_trigger(settings, depth, last, now, in_flight=runs_in_flight(context.instance, context.log.warning))
    if not decision.generate:
        return dg.SkipReason(decision.reason)

    batch_id = new_batch_id(skill, settings.source, settings.count)
    context.log.info(f"{decision.reason}: requesting batch {batch_id}")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=batch_id,
                partition_key=batch_id,
                tags={"tdm/trigger": "queue_low_sensor", "tdm/queue_depth": str(depth)},
            )
        ],
        dynamic_partitions_requests=[batch_partitions.build_add_request([batch_id])],
        cursor=json.dumps({"last_request_at": now, "last_batch_id": batch_id}),
    )
