"""``tdm skills serve``: the built-in skill generators over HTTP."""

from __future__ import annotations

import click


@click.group()
def skills() -> None:
    """The built-in skill generators as an HTTP API."""


@skills.command("serve")
@click.option("--skill", "skill_names", multiple=True, help="Serve only these skills (repeatable); default all.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
def skills_serve(skill_names: tuple[str, ...], host: str, port: int) -> None:
    """Serve generators, e.g. `--skill syllo --port 8080` and `--skill binary --port 8090`."""
    from tdm_dagster.generate.skill_api import serve

    serve(host=host, port=port, skills=list(skill_names) or None)
