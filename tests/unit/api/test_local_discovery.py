"""``tdm validate`` finds a ``tdm api`` running over the same home with nothing to
configure (``api/running.json`` names its URL and pid, ``api/local.key`` holds a read key
only that process accepts, mode 0600), and quietly validates in-process when the file is
stale, the service is gone, or it runs with another config."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tdm_dagster.files.atomic import atomic_write_jsonl
from tdm_dagster.generate.generators import get_generator
from tests.support.api_server import api_process

CLI = [sys.executable, "-c", "from tdm_dagster.cli import main; main()"]


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with api_process(tmp_path_factory.mktemp("api-local"), warm=True) as running:
        yield running


@pytest.fixture(scope="module")
def records_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("to-validate") / "ten.jsonl"
    atomic_write_jsonl(path, get_generator("syllo").generate(1, 10, 7))
    return path


def _validate(home_root: Path, path: Path, *options: str, **env: str) -> subprocess.CompletedProcess:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("TDM_")}
    environment.update(TDM_HOME=str(home_root), **env)
    return subprocess.run([*CLI, "validate", str(path), "--json", *options], capture_output=True, text=True, env=environment, timeout=300)


def _validations_served(api) -> float:
    text = httpx.get(f"{api.url}/metrics", headers=api.auth("read")).text
    return sum(float(value) for value in re.findall(r"^tdm_api_validate_seconds_count(?:\{[^}]*\})? (\S+)$", text, re.M))


def test_the_running_service_is_found_and_used(api, records_file):
    running = json.loads(api.home.api_running_file.read_text())
    assert running["url"] == api.url and running["pid"] == api.pid
    key = api.home.api_local_key_file.read_text()
    assert key not in api.home.api_running_file.read_text()
    assert stat.S_IMODE(api.home.api_local_key_file.stat().st_mode) == 0o600
    assert key not in api.home.api_keys_file.read_text()  # known to the running process only
    before = _validations_served(api)
    there = _validate(api.home.root, records_file)
    assert there.returncode == 0, there.stderr[-2000:]
    assert _validations_served(api) == before + 1
    assert "in-process" not in there.stderr
    here = _validate(api.home.root, records_file, TDM_INFERENCE_TIMEOUT_SEC="77")  # another effective config: not this service's
    assert _validations_served(api) == before + 1
    assert json.loads(there.stdout) == json.loads(here.stdout)
    assert "tdm api" not in here.stderr  # passed over quietly


def test_a_stale_announcement_is_passed_over_quietly(tmp_path, records_file):
    from tdm_dagster.home import TdmHome

    home = TdmHome(tmp_path / "home").ensure()
    home.api_dir.mkdir(exist_ok=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    home.api_running_file.write_text(json.dumps({"url": "http://127.0.0.1:9", "pid": int(dead.stdout), "key_file": "local.key"}))
    home.api_local_key_file.write_text("tdm_not-a-key")
    completed = _validate(home.root, records_file)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert json.loads(completed.stdout)["totals"]["records"] == 10
    assert "tdm api" not in completed.stderr


def test_the_announcement_is_withdrawn_when_the_service_stops(tmp_path):
    with api_process(tmp_path) as running:
        assert running.home.api_running_file.exists()
    assert not running.home.api_running_file.exists() and not running.home.api_local_key_file.exists()
