"""Slack alerts for every failed asset check, and for failed runs.

Open-source Dagster leaves a run green when a non-blocking check fails, and its Slack
run-failure sensor never sees check failures, so this sensor reads the asset-check
evaluations from the instance itself. The cursor is the last execution sent: one alert per
failed evaluation, never repeated after a restart; a send that fails is retried on the
next tick, from the same place. Its first tick starts at the newest execution, so
turning alerts on does not replay the past.
"""

import dagster as dg

from tdm_dagster.assets.queue import queue_recheck
from tdm_dagster.checks import quality_suites
from tdm_dagster.jobs import INBOX_FILE_READABLE
from tdm_dagster.notify.alerts import (
    AlertError,
    Notifier,
    check_failure_alert,
    run_failure_alert,
)
from tdm_dagster.runs.dagster_private import (
    failed_check_executions,
    latest_check_execution_id,
)

BATCH = 100
ALERTED_CHECKS = (*quality_suites.check_keys, *queue_recheck.check_keys, INBOX_FILE_READABLE)


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
        context.update_cursor(str(latest_check_execution_id(context.instance, ALERTED_CHECKS)))
        return dg.SkipReason("alerts start now: failed checks from here on are sent")
    after = int(context.cursor)
    sent = 0
    for record in (r for r in failed_check_executions(context.instance, ALERTED_CHECKS, BATCH) if r.id > after):
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
