"""``tdm api`` for tests, over a fresh ``TDM_HOME`` with a key per scope made by the real
key store: in this process (the real app under uvicorn in a thread, ``running_server``),
or as users run it (``api_process``: its own ``tdm api`` process, for what only a
separate process shows: its temporary folder, its event loop under load, its threads).

    with api_service(tmp_path / "home", max_upload_bytes=200_000) as api:
        httpx.get(api.url + "/v1/datasets", headers=api.auth("read"))
    with api_process(tmp_path, max_upload_bytes=200_000) as api:
        ...
"""

from __future__ import annotations

import os
import sys
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
from tests.support.dagster_processes import dagster_process, free_port
from tests.support.http_servers import running_server

CLI = [sys.executable, "-c", "from tdm_dagster.cli import main; main()"]


@dataclass
class Api:
    url: str
    home: TdmHome
    app: Any
    """The app object (None for ``api_process``: it lives in the other process)."""
    keys: dict[str, str] = field(default_factory=dict)
    """A key per scope, made at start (the name is the scope)."""
    tmp: Path | None = None
    """The process's ``TMPDIR`` (``api_process`` only)."""
    pid: int | None = None
    """The process's id (``api_process`` only)."""

    def temp_bytes_held(self) -> int:
        """Bytes in the files under ``tmp`` the process holds open, deleted ones included
        (a spooled upload is an unnamed temporary file: listing the folder misses it)."""
        held = 0
        for handle in Path(f"/proc/{self.pid}/fd").iterdir():
            try:
                if os.readlink(handle).startswith(str(self.tmp)):
                    held += handle.stat().st_size
            except OSError:  # closed meanwhile
                pass
        return held

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
        keys = _key_per_scope(home)
        app = create_app(home, config)
        with running_server(app, **uvicorn_settings()) as url:
            yield Api(url, home, app, keys)


def _key_per_scope(home: TdmHome) -> dict[str, str]:
    store = KeyStore(home)
    return {scope: store.create(scope, [scope])[1] for scope in SCOPES}


@contextmanager
def api_process(folder: Path, *, warm: bool = False, **api_settings: Any) -> Iterator[Api]:
    """``tdm api`` as its own process (this checkout's CLI) on a free loopback port, over a
    new home ``folder/home`` whose ``config.yaml`` sets ``api_settings``; its temporary
    files go to ``folder/tmp`` (``TMPDIR``) and its output to ``folder/tdm-api.log``.
    The block starts once ``/healthz`` answers, or with ``warm`` once ``/readyz`` does
    (the gate warmed: nothing of the warm-up competes with the test any more)."""
    home = TdmHome(folder / "home").ensure()
    if api_settings:
        home.config_path.write_text("api:\n" + "".join(f"  {name}: {value}\n" for name, value in api_settings.items()))
    keys = _key_per_scope(home)
    (folder / "tmp").mkdir(exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {name: value for name, value in os.environ.items() if not name.startswith("TDM_")}
    env.update(TDM_HOME=str(home.root), TMPDIR=str(folder / "tmp"))
    args = [*CLI, "api", "--host", "127.0.0.1", "--port", str(port)]
    with dagster_process(args, env=env, log=folder / "tdm-api.log", ready_url=url, ready_path="/readyz" if warm else "/healthz", timeout=180) as process:
        yield Api(url, home, None, keys, folder / "tmp", process.pid)


def wait_warm(api: Api, timeout_s: float = 120) -> None:
    """Until the service's gate is warm (its warm-up failing fails the test)."""
    assert api.app.state.warm_gate.ready.wait(timeout_s), "the gate did not warm up"
    assert api.app.state.warm_gate.error is None, api.app.state.warm_gate.error
