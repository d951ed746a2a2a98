"""``tdm``: the command line for people and cron.

Every command takes ``--json`` for scripts. Commands that change data (``generate``) run
through Dagster, so with ``DAGSTER_HOME`` set their runs show in the UI like any other.
One module per command group; :mod:`tdm_dagster.cli.common` holds what they share.
"""

from __future__ import annotations

import click

from tdm_dagster.cli.api import api
from tdm_dagster.cli.batches import generate, ingest, validate
from tdm_dagster.cli.config import show_config
from tdm_dagster.cli.curriculum import curriculum
from tdm_dagster.cli.datasets import datasets
from tdm_dagster.cli.deploy import deploy, deployments
from tdm_dagster.cli.lineage import lineage
from tdm_dagster.cli.queue import recheck
from tdm_dagster.cli.remote import checkpoints, dataset_remote, pull, push
from tdm_dagster.cli.serve import serve
from tdm_dagster.cli.skills import skills
from tdm_dagster.cli.stats import stats
from tdm_dagster.cli.status import init, status
from tdm_dagster.cli.train import evaluate, train


@click.group()
@click.version_option(package_name="tdm-dagster")
def main() -> None:
    """tdm: training-data manager (generate -> test -> queue) on Dagster.

    State lives under $TDM_HOME (default ~/.tdm); config in $TDM_HOME/config.yaml.
    """


for command in (init, status, generate, ingest, validate, stats, recheck, curriculum, skills, train, evaluate, deploy, deployments, serve, show_config, datasets, checkpoints, api, lineage):
    main.add_command(command)
for command in (push, pull, dataset_remote):
    datasets.add_command(command)
