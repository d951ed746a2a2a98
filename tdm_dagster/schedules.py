"""Schedules (the SAM design's cadence). Every one is off by default (turn it on in the
UI), and each job also runs from cron with `dagster job execute`.

- generate_and_queue, hourly: a batch on a clock (the queue-low sensor is the main trigger);
- mine_sources, every 6 h: the collectors, into the inbox (then the inbox sensor gates them);
- deduplicate_dataset, every 24 h: a new dataset version without duplicates;
- export_dataset, every 24 h: the current version exported as JSONL and Hugging Face.
"""

import dagster as dg

from tdm_dagster.assets.collect import mined_sources
from tdm_dagster.jobs import deduplicate_dataset, export_dataset, generate_and_queue

mine_sources = dg.define_asset_job("mine_sources", selection=[mined_sources], description="Run the collectors into the inbox.")


def _schedule(job, cron: str, description: str) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name=f"{job.name}_schedule", job=job, cron_schedule=cron, default_status=dg.DefaultScheduleStatus.STOPPED, description=description
    )


schedules = [
    _schedule(generate_and_queue, "0 * * * *", "A batch at the top of every hour."),
    _schedule(mine_sources, "15 */6 * * *", "Mine the configured sources every 6 hours."),
    _schedule(deduplicate_dataset, "30 2 * * *", "De-duplicate the training dataset daily (02:30)."),
    _schedule(export_dataset, "0 3 * * *", "Export the current training dataset daily (03:00)."),
]
