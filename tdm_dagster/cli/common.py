"""What every ``tdm`` command shares: output (text, or ``--json``), the home and its
config (a bad config is a clean CLI error), the Dagster instance, and running a job of
the code location in this process."""

from __future__ import annotations

import json
from typing import Any, Callable

import click

from tdm_dagster.config.settings import ConfigError, load_config
from tdm_dagster.home import TdmHome

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def emit(data: Any, as_json: bool, text: str) -> None:
    click.echo(json.dumps(data, indent=2, default=str) if as_json else text)


def home() -> TdmHome:
    return TdmHome.from_env().ensure()


class ConfigProblem(click.ClickException):
    """A bad config: exit 2, as for a usage error (the README's exit-code convention)."""

    exit_code = 2


def config(tdm_home: TdmHome):
    try:
        return load_config(tdm_home)
    except ConfigError as exc:
        raise ConfigProblem(str(exc)) from exc


def instance():
    """The persistent instance when DAGSTER_HOME is set (runs show in the UI), else an
    ephemeral one; a fresh one is created under a lock (``tdm_dagster.runs.instance``)."""
    from tdm_dagster.runs.instance import open_instance

    return open_instance()


def run(job_name: str, *, dagster_instance=None, **options: Any):
    """Run the location's job ``job_name`` in this process (on ``dagster_instance``, default
    :func:`instance`), tagged as started by the CLI; ``options`` as for
    :func:`tdm_dagster.runs.launch.run_job`."""
    from tdm_dagster.location import build_definitions
    from tdm_dagster.runs.launch import run_job

    try:
        job = build_definitions(config(home())).resolve_job_def(job_name)
    except ConfigError as exc:  # e.g. a wrong TDM_EXECUTOR
        raise ConfigProblem(str(exc)) from exc
    return run_job(job, instance=dagster_instance or instance(), tags={"tdm/trigger": "cli"}, **options)


def step_metadata(result, asset) -> dict[str, Any]:
    """The metadata ``asset`` (an asset definition) recorded in the run ``result``."""
    for event in result.get_asset_materialization_events():
        if event.asset_key == asset.key:
            return {key: value.value for key, value in event.materialization.metadata.items()}
    return {}


def finish(result, asset, as_json: bool, text: Callable[[dict[str, Any]], str], **failed: Any) -> dict[str, Any]:
    """Show what ``asset`` recorded in the run ``result`` and return it; or say why the run
    failed and exit 1 (under ``--json`` stdout still gets one object: ``success: false``,
    the run id, the ``error`` and the fields in ``failed``)."""
    if not result.success:
        from tdm_dagster.jobs import run_failure_cause

        error = run_failure_cause(result) or f"{asset.key.to_user_string()} failed"
        if as_json:
            emit({"success": False, "run_id": result.run_id, "error": error, **failed}, True, "")
        raise click.ClickException(error)
    data = step_metadata(result, asset)
    emit(data, as_json, text(data))
    return data
