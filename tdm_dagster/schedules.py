"""Schedules (the SAM design's cadence, each cron set in the ``schedules:`` config section).

Every one is off by default (turn it on in the UI or with ``dagster schedule start``), and
each job also runs from cron with ``dagster job execute``. A tick with nothing to do skips,
with the reason in the tick's history, instead of launching a run that fails or does
nothing: no dataset version to de-duplicate or export yet (a fresh home), an empty queue
to re-check, no source to mine, or an unreadable config.

- generate_and_queue, hourly: a batch on a clock (the queue-low sensor is the main trigger);
- mine_sources, every 6 h: the collectors, into the inbox (then the inbox sensor gates them);
- recheck_quality, every 12 h: today's gate over everything waiting in the queue;
- deduplicate_dataset, every 24 h: a new dataset version without duplicates;
- export_dataset, every 24 h: the current version exported as JSONL and Hugging Face;
- refresh_stats, hourly: the stats as metadata, which the UI plots.
"""

from collections.abc import Callable

import dagster as dg

from tdm_dagster.assets.collect import mined_sources
from tdm_dagster.assets.queue import queue_recheck
from tdm_dagster.assets.stats import data_stats
from tdm_dagster.config.sections import SchedulesConfig
from tdm_dagster.config.settings import TdmConfig
from tdm_dagster.datasets.maintenance import nothing_to_maintain
from tdm_dagster.home import TdmHome
from tdm_dagster.ingest.collectors import nothing_to_collect
from tdm_dagster.jobs import deduplicate_dataset, export_dataset, generate_and_queue
from tdm_dagster.resources.home import TdmHomeResource
from tdm_dagster.runs.launch import INFO_CONSOLE
from tdm_dagster.sensors.common import config_or_skip

mine_sources = dg.define_asset_job("mine_sources", selection=[mined_sources], config=INFO_CONSOLE, description="Run the collectors into the inbox.")
recheck_quality = dg.define_asset_job(
    "recheck_quality",
    selection=[queue_recheck],
    config=INFO_CONSOLE,
    description="Re-check every queued file against today's gate; trim or hold what fails.",
)
refresh_stats = dg.define_asset_job(
    "refresh_stats", selection=[data_stats], config=INFO_CONSOLE, description="Record the stats as metadata for the UI's plots."
)

SCHEDULED_JOBS = (generate_and_queue, mine_sources, recheck_quality, deduplicate_dataset, export_dataset, refresh_stats)
_DESCRIPTIONS = {
    "generate_and_queue": "A batch on a clock (the queue-low sensor is the main trigger).",
    "mine_sources": "Mine the configured sources into the inbox.",
    "recheck_quality": "Re-check the queue against today's gate.",
    "deduplicate_dataset": "De-duplicate the training dataset (a new version).",
    "export_dataset": "Export the current training dataset.",
    "refresh_stats": "Record the stats for the UI's plots.",
}


def _nothing_to_recheck(home: TdmHome) -> str | None:
    """:func:`tdm_dagster.queue.recheck.nothing_to_recheck`, imported at the tick: the
    re-check module brings the whole gate (numpy and all), which the location's load does
    not need."""
    from tdm_dagster.queue.recheck import nothing_to_recheck

    return nothing_to_recheck(home)


_NOTHING_TO_DO: dict[str, Callable[[TdmHome, TdmConfig], str | None]] = {
    "mine_sources": lambda home, config: nothing_to_collect(config.collectors),
    "recheck_quality": lambda home, config: _nothing_to_recheck(home),
    "deduplicate_dataset": lambda home, config: nothing_to_maintain(home, config.dataset.name),
    "export_dataset": lambda home, config: nothing_to_maintain(home, config.dataset.name),
}
"""Why a tick of the job's schedule has nothing to do (None: it has); generate_and_queue
and refresh_stats always have (a batch on a clock; the stats, zero or not)."""


def _schedule(job: dg.JobDefinition, cron: str) -> dg.ScheduleDefinition:
    nothing_to_do = _NOTHING_TO_DO.get(job.name)

    @dg.schedule(
        name=f"{job.name}_schedule",
        job=job,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=f"{_DESCRIPTIONS[job.name]} Cron: {cron} (schedules.{job.name}).",
    )
    def tick(tdm: TdmHomeResource) -> dg.RunRequest | dg.SkipReason:
        setup = config_or_skip(tdm, f"config problem, not running {job.name}")
        if isinstance(setup, dg.SkipReason):
            return setup
        reason = nothing_to_do(setup.home, setup.config) if nothing_to_do else None
        return dg.SkipReason(f"{job.name} skipped: {reason}") if reason else dg.RunRequest()

    return tick


def build_schedules(crons: SchedulesConfig) -> list[dg.ScheduleDefinition]:
    """One stopped schedule per job, at the configured cron (UTC), that skips a tick with
    nothing to do."""
    return [_schedule(job, getattr(crons, job.name)) for job in SCHEDULED_JOBS]
