"""Schedules (the SAM design's cadence, each cron set in the ``schedules:`` config section).

Every one is off by default (turn it on in the UI or with ``dagster schedule start``), and
each job also runs from cron with ``dagster job execute``.

- generate_and_queue, hourly: a batch on a clock (the queue-low sensor is the main trigger);
- mine_sources, every 6 h: the collectors, into the inbox (then the inbox sensor gates them);
- recheck_quality, every 12 h: today's gate over everything waiting in the queue;
- deduplicate_dataset, every 24 h: a new dataset version without duplicates;
- export_dataset, every 24 h: the current version exported as JSONL and Hugging Face;
- refresh_stats, hourly: the stats as metadata, which the UI plots.
"""

import dagster as dg

from tdm_dagster.assets.collect import mined_sources
from tdm_dagster.assets.queue import queue_recheck
from tdm_dagster.assets.stats import data_stats
from tdm_dagster.config.sections import SchedulesConfig
from tdm_dagster.jobs import deduplicate_dataset, export_dataset, generate_and_queue

mine_sources = dg.define_asset_job("mine_sources", selection=[mined_sources], description="Run the collectors into the inbox.")
recheck_quality = dg.define_asset_job(
    "recheck_quality", selection=[queue_recheck], description="Re-check every queued file against today's gate; trim or hold what fails."
)
refresh_stats = dg.define_asset_job("refresh_stats", selection=[data_stats], description="Record the stats as metadata for the UI's plots.")

SCHEDULED_JOBS = (generate_and_queue, mine_sources, recheck_quality, deduplicate_dataset, export_dataset, refresh_stats)
_DESCRIPTIONS = {
    "generate_and_queue": "A batch on a clock (the queue-low sensor is the main trigger).",
    "mine_sources": "Mine the configured sources into the inbox.",
    "recheck_quality": "Re-check the queue against today's gate.",
    "deduplicate_dataset": "De-duplicate the training dataset (a new version).",
    "export_dataset": "Export the current training dataset.",
    "refresh_stats": "Record the stats for the UI's plots.",
}


def build_schedules(crons: SchedulesConfig) -> list[dg.ScheduleDefinition]:
    """One stopped schedule per job, at the configured cron (UTC)."""
    return [
        dg.ScheduleDefinition(
            name=f"{job.name}_schedule",
            job=job,
            cron_schedule=getattr(crons, job.name),
            execution_timezone="UTC",
            default_status=dg.DefaultScheduleStatus.STOPPED,
            description=f"{_DESCRIPTIONS[job.name]} Cron: {getattr(crons, job.name)} (schedules.{job.name}).",
        )
        for job in SCHEDULED_JOBS
    ]
