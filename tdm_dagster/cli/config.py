"""``tdm config``: the effective config, validated, with any credential in a URL masked."""

from __future__ import annotations

import json
from typing import Any

import click

from tdm_dagster.cli import common
from tdm_dagster.config.settings import describe


@click.command("config")
@common.json_option
def show_config(as_json: bool) -> None:
    """The effective config (file + env overrides), validated."""
    data = _masked(describe(common.config(common.home())))
    if as_json:
        common.emit(data, True, "")
        return
    lines = [f"# from {data.pop('source')}"]
    for section, values in data.items():
        lines.append(f"{section}:")
        lines += [f"  {key}: {json.dumps(value, default=dict)}" for key, value in values.items()]
    click.echo("\n".join(lines))


def _masked(value: Any) -> Any:
    """``value`` with every string masked (``storage.endpoint_url: https://user:secret@host`` and the like)."""
    from tdm_dagster.http.retry import mask_credentials  # httpx: a quarter second no other command needs

    if isinstance(value, str):
        return mask_credentials(value)
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_masked(item) for item in value]
    return value
