"""A number flag that stands for a config key takes that key's bounds, its maximum too.

``tdm generate --count N`` is ``auto_generate.count`` for one run: the same maximum
(docs/reference/config.md, "Maxima") is checked as the flag is parsed, so an absurd value is
refused at once by click (exit 2), before anything is generated or a run is started.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import click

from tdm_dagster.config.settings import NUMERIC_KEYS


class ConfigBounded(click.ParamType):
    """An integer within the bounds of the config key ``key`` (``section.key``)."""

    name = "integer"

    def __init__(self, key: str) -> None:
        self.key = key
        self.check = replace(NUMERIC_KEYS[key], nullable=False)  # a flag left out is the "null"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        number = click.INT.convert(value, param, ctx)
        problem = self.check(number)
        if problem is None:
            return number
        if number > self.check.maximum:
            self.fail(f"{number} is above the maximum {self.check.maximum} of {self.key}", param, ctx)
        self.fail(f"{number} is not {problem}", param, ctx)

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return f"[{self.check.minimum}-{self.check.maximum}]"
