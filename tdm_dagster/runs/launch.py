"""How tdm executes a run in its own process: ``tdm generate``/``train``/... and the ops that
run another job (``generate_and_queue`` runs ``batch_pipeline``), all through :func:`run_job`.

Such a run carries its process's owner tags (:mod:`tdm_dagster.runs.owner`, so a killed
process leaves no run in progress), logs at INFO on the console (progress, not every debug
event), and reports failure in its result rather than raising. An op gets the job it runs,
with the code location's resources bound, from the :class:`LocationJobs` resource, so no
module imports the definitions (which import the jobs: an import loop).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import dagster as dg

from tdm_dagster.runs.owner import owner_tags

INFO_CONSOLE = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
"""The console logger at INFO: every location job's default run config too, because a run
whose config names no logger (``dagster job execute`` without ``-c``) gets Dagster's
default DEBUG console instead of the location's, which prints routine failures with their
stack trace (:mod:`tdm_dagster.runs.console`)."""
LOCATION_JOBS = "location_jobs"
"""The resource key of :class:`LocationJobs`."""


def with_info_console(run_config: Mapping | None = None) -> dict:
    """``run_config`` plus the console logger at INFO (a logger config in it wins)."""
    return {**INFO_CONSOLE, **(run_config or {})}


def run_job(
    job: dg.JobDefinition,
    *,
    instance: dg.DagsterInstance,
    run_config: Mapping | None = None,
    partition_key: str | None = None,
    asset_selection: Sequence[dg.AssetKey] | None = None,
    tags: Mapping[str, str] | None = None,
    run_id: str | None = None,
) -> dg.ExecuteInProcessResult:
    """Execute ``job`` in this process on ``instance``: the INFO console, this process's
    owner tags added to ``tags``, and a failed run returned (``result.success``), not raised."""
    return job.execute_in_process(
        run_config=with_info_console(run_config),
        instance=instance,
        partition_key=partition_key,
        asset_selection=asset_selection,
        raise_on_error=False,
        tags={**(tags or {}), **owner_tags()},
        run_id=run_id,
    )


def nested_run_tags(context: dg.OpExecutionContext, trigger: str) -> dict[str, str]:
    """Tags of a run an op starts: the op's run (its parent) and what triggered it."""
    return {"tdm/parent_run_id": context.run_id, "tdm/trigger": trigger}


def ensure_partition(instance: dg.DagsterInstance, partitions_def: dg.DynamicPartitionsDefinition, key: str) -> None:
    """Add ``key`` to ``partitions_def`` unless it is there: a run can only target a
    dynamic partition that exists."""
    if not instance.has_dynamic_partition(partitions_def.name, key):
        instance.add_dynamic_partitions(partitions_def.name, [key])


class LocationJobs:
    """The code location's jobs by name, with its resources and loggers bound: what an op
    needs to run another job in-process. The location gives it to the ops as the resource
    ``location_jobs``; ``context.repository_def`` would do, but it is not public and is
    not set at all in a run started with ``execute_in_process`` (``tdm generate``)."""

    def __init__(self, definitions: Callable[[], dg.Definitions]) -> None:
        self._definitions = definitions

    def get(self, name: str) -> dg.JobDefinition:
        return self._definitions().resolve_job_def(name)
