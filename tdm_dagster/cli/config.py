"""``tdm config``: the effective config, validated."""

from __future__ import annotations

import json

import click

from tdm_dagster.cli import common
from tdm_dagster.config.settings import describe


@click.command("config")
@common.json_option
def show_config(as_json: bool) -> None:
    """The effective config (file + env overrides), validated."""
    data = describe(common.config(common.home()))
    if as_json:
        common.emit(data, True, "")
        return
    lines = [f"# from {data.pop('source')}"]
    for section, values in data.items():
        lines.append(f"{section}:")
        lines += [f"  {key}: {json.dumps(value, default=dict)}" for key, value in values.items()]
    click.echo("\n".join(lines))
