"""Schedules. The queue-low sensor is the main trigger; this schedule is the in-Dagster
equivalent of a cron line, for users who want a batch on a clock instead (off by default)."""

import dagster as dg

from tdm_dagster.jobs import generate_and_queue

generate_and_queue_hourly = dg.ScheduleDefinition(
    name="generate_and_queue_hourly",
    job=generate_and_queue,
    cron_schedule="0 * * * *",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Runs generate_and_queue at the top of every hour.",
)

schedules = [generate_and_queue_hourly]
