"""What every tdm sensor does first: find the home through the ``tdm`` resource and read
its config, or skip the tick saying why.

Sensors take :class:`TdmHomeResource` as a parameter (Dagster injects the one the
Definitions configure), so a ``TdmHomeResource(root=...)`` is honoured, as in the assets.
A bad config file skips the tick with the reason; it never crashes the daemon.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from tdm_dagster.config.settings import ConfigError, TdmConfig, load_config
from tdm_dagster.home import TdmHome
from tdm_dagster.resources.home import TdmHomeResource


@dataclass(frozen=True)
class SensorSetup:
    home: TdmHome
    config: TdmConfig


def config_or_skip(tdm: TdmHomeResource, skipping: str) -> SensorSetup | dg.SkipReason:
    """The home and its validated config (read once for the tick), or a SkipReason
    ``"<skipping>: <the config problem>"`` (e.g. ``"config problem, not training"``)."""
    home = tdm.home()
    try:
        return SensorSetup(home, load_config(home))
    except ConfigError as exc:
        return dg.SkipReason(f"{skipping}: {exc}")
