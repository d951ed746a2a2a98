"""Slack alerts for every failed asset check, and for failed runs.

Open-source Dagster leaves a run green when a non-blocking check fails, and its Slack
run-failure sensor never sees check failures, so this sensor reads the asset-check
evaluations from the instance itself. The cursor is the last execution sent: one alert per
failed evaluation, never repeated after a restart; a send that fails is retried on the
next tick, from the same place. Its first tick starts at the newest execution, so
turning alerts on does not replay the past.
"""

import dagster as dg
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecordStatus,
)

from tdm_dagster.notify.alerts import (
    AlertError,
    Notifier,
    check_failure_alert,
    run_failure_alert,
)
from tdm_dagster.assets.queue import queue_recheck
from tdm_dagster.checks import quality_suites
from tdm_dagster.jobs import INBOX_FILE_READABLE

BATCH = 100
ALERTED_CHECKS = (*quality_suites.check_keys, *queue_recheck.check_keys, INBOX_FILE_READABLE)


def _failed_executions(instance: dg.DagsterInstance, limit: int) -> list:
    """Recent failed evaluations of every check of this code location, oldest first.

    Check executions have global, increasing ids in the instance's index (unlike raw
    events in the default run-sharded SQLite storage), which makes them a safe cursor."""
    storage = instance.event_log_storage
    records = [
        record
        for key in ALERTED_CHECKS
        for record in storage.get_asset_check_execution_history(key, limit=limit, status={AssetCheckExecutionRecordStatus.FAILED})
    ]
    return sorted(records, key=lambda record: record.id)


def _latest_execution_id(instance: dg.DagsterInstance) -> int:
    storage = instance.event_log_storage
    ids = [record.id for key in ALERTED_CHECKS for record in storage.get_asset_check_execution_history(key, limit=1)]
    return max(ids, default=0)


@dg.sensor(
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Posts a Slack message (and the optional webhook) for every failed asset check.",
)
def check_failure_alert_sensor(context: dg.SensorEvaluationContext):
    notifier = Notifier.from_env()
    if not notifier.configured:
        return dg.SkipReason("alerts are not configured: set SLACK_BOT_TOKEN and TDM_SLACK_CHANNEL (or TDM_ALERT_WEBHOOK_URL)")
    if context.cursor is None:
        context.update_cursor(str(_latest_execution_id(context.instance)))
        return dg.SkipReason("alerts start now: failed checks from here on are sent")
    after = int(context.cursor)
    sent = 0
    for record in (r for r in _failed_executions(context.instance, BATCH) if r.id > after):
        evaluation = record.event.dagster_event.event_specific_data
        run = context.instance.get_run_by_id(record.run_id)
        partition = run.tags.get("dagster/partition") if run else None
        try:
            notifier.send(check_failure_alert(evaluation, record.run_id, notifier.ui_url, partition))
        except AlertError as exc:
            context.log.error(str(exc))
            break
        sent += 1
        context.update_cursor(str(record.id))
    return dg.SkipReason(f"sent {sent} alert(s)")


@dg.run_failure_sensor(
    name="run_failure_alert_sensor",
    monitor_all_code_locations=False,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Posts a Slack message (and the optional webhook) when a run fails.",
)
def run_failure_alert_sensor(context: dg.RunFailureSensorContext) -> None:
    notifier = Notifier.from_env()
    if not notifier.configured:
        return
    message = context.failure_event.message or "run failed"
    notifier.send(run_failure_alert(context.dagster_run.job_name, context.dagster_run.run_id, message, notifier.ui_url))
