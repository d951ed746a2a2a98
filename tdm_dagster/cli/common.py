"""What every ``tdm`` command shares: output (text, or ``--json``), the home and its
config (a bad config is a clean CLI error), the Dagster instance, and running a job of
the code location in this process.

Exit codes: 0, the command did what was asked; 1, it ran and the outcome is
a failure or a refusal (:class:`Refused`); 2, a usage or config error
(:class:`ConfigProblem`, and click's own). Under ``--json`` (:func:`json_outcome`) stdout
carries one JSON object whatever the exit code."""

from __future__ import annotations

import functools
import json
from typing import Any, Callable

import click

from tdm_dagster.config.settings import ConfigError, load_config
from tdm_dagster.home import TdmHome

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


_EMITTED = "tdm/json_emitted"
"""Set in the click context's ``meta`` once a command printed its JSON object."""


def emit(data: Any, as_json: bool, text: str) -> None:
    click.echo(json.dumps(data, indent=2, default=str) if as_json else text)
    context = click.get_current_context(silent=True)
    if as_json and context is not None:
        context.meta[_EMITTED] = True


def home() -> TdmHome:
    return TdmHome.from_env().ensure()


class ConfigProblem(click.ClickException):
    """A bad config: exit 2, as for a usage error (docs/reference/cli.md, Exit codes)."""

    exit_code = 2


class Refused(click.ClickException):
    """The command ran and did not do what was asked (exit 1), or its input cannot be used
    at all (``exit_code=2``); ``outcome`` is what ``--json`` prints with ``error``."""

    def __init__(self, message: str, *, exit_code: int = 1, outcome: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.outcome = outcome or {}


def json_outcome(command: Callable) -> Callable:
    """:data:`json_option`, and under ``--json`` a click error the command raises (a
    :class:`Refused`, a :class:`ConfigProblem`, a flag found wrong as it runs) still leaves
    one JSON object on stdout, its ``outcome`` with ``error``, before click prints the one
    line on stderr and exits with its code."""

    @functools.wraps(command)
    def run(*args: Any, as_json: bool, **kwargs: Any) -> Any:
        try:
            return command(*args, as_json=as_json, **kwargs)
        except click.ClickException as error:
            if as_json and not click.get_current_context().meta.get(_EMITTED):  # one object, never two
                emit({**getattr(error, "outcome", {}), "error": error.format_message()}, True, "")
            raise

    return json_option(run)


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
