"""Turn each file dropped in ``$TDM_HOME/inbox/`` into a batch.

Each tick claims the settled files (an atomic rename into the archive, so concurrent
ticks or ``tdm ingest`` never take the same file) and requests a ``batch_pipeline`` run
per file, the batch id as run key. Claims whose run never started (the daemon died
between claim and request) are requested again with the same run key, which Dagster
runs at most once. A problem with one file never stops the others or the sensor.
"""

import dagster as dg

from tdm_dagster.config import ConfigError, load_config
from tdm_dagster.home import TdmHome
from tdm_dagster.inbox import claim, pending_files, unprocessed_claims
from tdm_dagster.jobs import batch_pipeline
from tdm_dagster.partitions import batch_partitions


@dg.sensor(
    job=batch_pipeline,
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Claims each new file in $TDM_HOME/inbox and runs it through the gate as its own batch.",
)
def inbox_sensor(context: dg.SensorEvaluationContext):
    home = TdmHome.from_env().ensure()
    try:
        priority = load_config(home).auto_generate.priority
    except ConfigError as exc:
        return dg.SkipReason(f"config problem, not claiming files: {exc}")
    claimed = []
    for path in pending_files(home):
        try:
            result = claim(home, path, priority)
        except OSError as exc:
            context.log.error(f"could not claim {path.name!r}: {exc}")
            continue
        if result:
            context.log.info(f"claimed {result.original_name!r} as batch {result.batch_id}")
            claimed.append(result.batch_id)
    waiting = sorted(set(claimed) | set(unprocessed_claims(home)))
    if not waiting:
        return dg.SkipReason("inbox is empty")
    known = set(context.instance.get_dynamic_partitions(batch_partitions.name))
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(run_key=batch_id, partition_key=batch_id, tags={"tdm/trigger": "inbox_sensor"})
            for batch_id in waiting
        ],
        dynamic_partitions_requests=[batch_partitions.build_add_request([b for b in waiting if b not in known])],
    )
