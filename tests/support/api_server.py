"""``tdm api`` for tests: the real app under uvicorn on 127.0.0.1 (``running_server``),
over a fresh ``TDM_HOME``, with a key per scope made by the real key store.

    with api_service(tmp_path / "home", max_upload_bytes=200_000) as api:
        httpx.get(api.url + "/v1/datasets", headers=api.auth("read"))
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from tdm_dagster.api.app import create_app
from tdm_dagster.api.keys import SCOPES, KeyStore
from tdm_dagster.config.settings import load_config
from tdm_dagster.home import TdmHome
from tdm_dagster.http.limits import uvicorn_settings
from tests.support.http_servers import running_server


@dataclass
class Api:
    url: str
    home: TdmHome
    app: Any
    keys: dict[str, str] = field(default_factory=dict)
    """A key per scope, made at start (the name is the scope)."""

    def auth(self, scope: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope]}"}


@contextmanager
def api_service(root: Path, **api_settings: Any) -> Iterator[Api]:
    """The service over a new home at ``root`` (``TDM_HOME`` set to it meanwhile, other
    ``TDM_`` variables cleared), ``api`` config overridden by ``api_settings``."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("TDM_"):
                patch.delenv(name)
        patch.setenv("TDM_HOME", str(root))
        home = TdmHome(root).ensure()
        config = load_config(home)
        config = replace(config, api=replace(config.api, **api_settings))
        store = KeyStore(home)
        keys = {scope: store.create(scope, [scope])[1] for scope in SCOPES}
        app = create_app(home, config)
        with running_server(app, **uvicorn_settings()) as url:
            yield Api(url, home, app, keys)


def wait_warm(api: Api, timeout_s: float = 120) -> None:
    """Until the service's gate is warm (its warm-up failing fails the test)."""
    assert api.app.state.warm_gate.ready.wait(timeout_s), "the gate did not warm up"
    assert api.app.state.warm_gate.error is None, api.app.state.warm_gate.error
