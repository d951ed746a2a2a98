"""Start an ``ingest_inbox`` run when the inbox has work: settled files, entries to
refuse, or claims no live process owns (a run that died).

Each tick records what it sees, so a file settles across ticks (``inbox.settle_sec``).
The run does the claiming, under the same per-batch locks as ``tdm ingest``, so the
sensor beside ``tdm ingest`` (or a second run) processes each file exactly once. No
new run is requested while one it asked for has not started yet. A problem with one
entry never stops the others or the sensor.
"""

import dagster as dg

from tdm_dagster.ingest.inbox import scan_inbox
from tdm_dagster.ingest.inbox_claims import is_batch_locked, unprocessed_claims
from tdm_dagster.jobs import INGEST_INBOX, ingest_inbox
from tdm_dagster.resources.home import TdmHomeResource
from tdm_dagster.sensors.common import config_or_skip

NOT_STARTED = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING]


@dg.sensor(
    job=ingest_inbox,
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Starts an ingest_inbox run when settled files (or unfinished claims) wait in $TDM_HOME/inbox.",
)
def inbox_sensor(context: dg.SensorEvaluationContext, tdm: TdmHomeResource):
    setup = config_or_skip(tdm, "config problem, not claiming files")
    if isinstance(setup, dg.SkipReason):
        return setup
    home = setup.home
    scan = scan_inbox(home, settle_sec=setup.config.inbox.settle_sec)
    orphans = [batch_id for batch_id in unprocessed_claims(home) if not is_batch_locked(home, batch_id)]
    settling = f"; {len(scan.settling)} file(s) still being written" if scan.settling else ""
    if not (scan.ready or scan.refused or orphans):
        return dg.SkipReason(f"nothing to ingest{settling}")
    starting = context.instance.get_run_records(dg.RunsFilter(job_name=INGEST_INBOX, statuses=NOT_STARTED), limit=1)
    if starting:
        return dg.SkipReason(f"an {INGEST_INBOX} run is about to start{settling}")
    context.log.info(f"{len(scan.ready)} settled file(s), {len(scan.refused)} entr(ies) to refuse, {len(orphans)} unfinished claim(s)")
    return dg.RunRequest(
        run_config={"ops": {"ingest_inbox_files": {"config": {"wait_for_settling": False}}}},
        tags={"tdm/trigger": "inbox_sensor"},
    )
