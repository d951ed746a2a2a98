"""``tdm serve``: the deployed checkpoint behind an OpenAI-compatible API."""

from __future__ import annotations

import click

from tdm_dagster.cli import common


@click.command()
@click.option("--host", help="Default: serving.host.")
@click.option("--port", type=click.IntRange(1, 65535), help="Default: serving.port.")
@click.option("--dir", "serving_dir", type=click.Path(file_okay=False), help="Default: $TDM_HOME/serving.")
def serve(host: str | None, port: int | None, serving_dir: str | None) -> None:
    """OpenAI-compatible server for the deployed checkpoint (reloads on each deployment)."""
    from tdm_dagster.serving.server import serve as run_server

    home = common.home()
    settings = common.config(home).serving
    run_server(serving_dir or home.serving_dir, host=host or settings.host, port=port or settings.port)
