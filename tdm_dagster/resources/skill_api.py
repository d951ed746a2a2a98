from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

import dagster as dg

if TYPE_CHECKING:
    from tdm_dagster.generate.skill_client import SkillApiClient


class SkillApiResource(dg.ConfigurableResource):
    """The built-in generators served over HTTP (``tdm skills serve``): SYLLO on 8080,
    Binary on 8090 by default. Used when ``auto_generate.source`` is ``skill_api``."""

    syllo_url: str = "http://127.0.0.1:8080"
    binary_url: str = "http://127.0.0.1:8090"
    timeout_sec: float = 30.0

    @contextmanager
    def client(self) -> Iterator["SkillApiClient"]:
        from tdm_dagster.generate.skill_client import (
            SkillApiClient,  # httpx loads here, not at load time
        )

        with SkillApiClient({"syllo": self.syllo_url, "binary": self.binary_url}, timeout_s=self.timeout_sec) as client:
            yield client
