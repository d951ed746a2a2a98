"""What some ``tdm datasets`` options turn into: ``KEY=VALUE`` pairs, ``derive
--intent-mapping`` (pairs, a JSON file, or config's ``labels.intent_mapping``) and
``derive --augment`` (the augment step, with the inference server for ``model``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from tdm_dagster.cli.common import config, home


def pair(text: str, option: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise click.BadParameter(f"{text!r} is not KEY=VALUE", param_hint=option)
    return key, value


@contextmanager
def augmentation(name: str, version: str | None, kind: str | None, seed: int) -> Iterator[list]:
    """The augment step for ``--augment`` (none without it); ``model`` talks to the
    inference server of config (``auto_generate.host:port``) while the derive runs."""
    if not kind:
        yield []
        return
    from tdm_dagster.datasets.augment import Augment, server_rewrite

    if kind != "model":
        yield [Augment(kind, name, version, seed)]
        return
    import os

    from tdm_dagster.generate.inference_client import InferenceClient, InferenceError

    settings = config(home())
    client = InferenceClient(settings.inference_base_url, api_key=os.environ.get(settings.inference.api_key_env) or None,
                             model=settings.inference.model, timeout_s=settings.inference.timeout_sec)  # fmt: skip
    try:
        with client:
            yield [Augment(kind, name, version, seed, rewrite=server_rewrite(client))]
    except InferenceError as error:
        raise click.ClickException(f"--augment model: the inference server at {settings.inference_base_url} failed, no version made: {error}") from error


def intent_mapping_of(given: tuple[str, ...]) -> dict[str, str]:
    """Old intent -> new from ``--intent-mapping`` values; every new intent must be one of
    ``labels.intents`` when config declares them (a remap must not leave undeclared labels)."""
    labels = config(home()).labels
    mapping: dict[str, str] = {}
    for item in given:
        if item == "config":
            if not labels.intent_mapping:
                raise click.BadParameter("config has no labels.intent_mapping", param_hint="--intent-mapping")
            mapping.update(labels.intent_mapping)
        elif "=" in item:
            mapping.update([pair(item, "--intent-mapping")])
        else:
            mapping.update(_mapping_file(item))
    undeclared = sorted({new for new in mapping.values() if labels.intents and new not in labels.intents})
    if undeclared:
        raise click.BadParameter(f"{', '.join(undeclared)}: not in labels.intents ({', '.join(labels.intents)})", param_hint="--intent-mapping")
    return mapping


def _mapping_file(path: str) -> dict[str, str]:
    try:
        loaded = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise click.BadParameter(f"{path}: not OLD=NEW, config, or a readable JSON file ({error})", param_hint="--intent-mapping") from error
    if not (isinstance(loaded, dict) and all(isinstance(v, str) and v.strip() for v in loaded.values())):
        raise click.BadParameter(f"{path}: expected a JSON object of old intent: new intent", param_hint="--intent-mapping")
    return loaded
