"""``tdm``: the command line for people and cron.

Every command takes ``--json`` for scripts. Commands that change data (``generate``) run
through Dagster, so with ``DAGSTER_HOME`` set their runs show in the UI like any other.
One module per command group; :mod:`tdm_dagster.cli.common` holds what they share.

A command's module is imported when that command runs (:class:`LazyGroup`), not for every
``tdm``: ``tdm validate`` through a running ``tdm api`` would otherwise pay for the
API keys, the remotes and the training options it never uses (~0.1 s of its start-up).
"""

from __future__ import annotations

import importlib

import click

COMMANDS = {
    "init": "status:init", "status": "status:status", "generate": "batches:generate", "ingest": "batches:ingest",
    "validate": "batches:validate", "stats": "stats:stats", "recheck": "queue:recheck", "curriculum": "curriculum:curriculum",
    "skills": "skills:skills", "train": "train:train", "evaluate": "train:evaluate", "deploy": "deploy:deploy",
    "deployments": "deploy:deployments", "serve": "serve:serve", "config": "config:show_config",
    "datasets": "datasets:datasets", "checkpoints": "remote:checkpoints", "api": "api:api", "lineage": "lineage:lineage",
}  # fmt: skip
"""Each command's name, and where it is defined: ``module:attribute`` under :mod:`tdm_dagster.cli`."""

DATASET_REMOTE_COMMANDS = ("remote:push", "remote:pull", "remote:dataset_remote")
"""``tdm datasets push``, ``pull`` and ``remote``, defined beside ``tdm checkpoints``."""


def _command(where: str) -> click.Command:
    module, attribute = where.split(":")
    return getattr(importlib.import_module(f"tdm_dagster.cli.{module}"), attribute)


class LazyGroup(click.Group):
    """A group whose commands are imported by name when asked for (``tdm --help`` lists all)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        command = _command(COMMANDS[cmd_name])
        if cmd_name == "datasets":
            for where in DATASET_REMOTE_COMMANDS:
                command.add_command(_command(where))  # idempotent: same name, same command
        return command


@click.group(cls=LazyGroup)
@click.version_option(package_name="tdm-dagster")
def main() -> None:
    """tdm: training-data manager (generate -> test -> queue) on Dagster.

    State lives under $TDM_HOME (default ~/.tdm); config in $TDM_HOME/config.yaml.
    """
