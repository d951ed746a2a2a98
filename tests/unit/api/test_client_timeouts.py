"""A stalled ``tdm api`` costs ``tdm validate`` a bounded time: with ``TDM_API_URL``
pointing at a server that accepts the connection and then never answers (or sends its
headers and then stalls), ``tdm validate`` (a real process) says why in one line and
gives the in-process report, within a bound derived from the configured read timeout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tdm_dagster.files.atomic import atomic_write_jsonl
from tdm_dagster.generate.generators import get_generator
from tests.support.http_servers import stalled_server

BIN = Path(sys.executable).parent
READ_TIMEOUT_S = 2
HEADERS_THEN_STALL = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 4096\r\n\r\n{\"totals\": "


def tdm_validate(path: Path, home: Path, url: str | None = None) -> tuple[subprocess.CompletedProcess, float]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("TDM_")}
    env |= {"TDM_HOME": str(home), "TDM_API_CLIENT_READ_TIMEOUT_SEC": str(READ_TIMEOUT_S)}
    if url:
        env |= {"TDM_API_URL": url, "TDM_API_KEY": "tdm_any_key"}
    started = time.monotonic()
    # the limit only ends a hang (the unfixed client's): the bound is asserted below
    done = subprocess.run([str(BIN / "tdm"), "validate", str(path), "--json"], env=env, capture_output=True, text=True, timeout=300)
    return done, time.monotonic() - started


@pytest.fixture(scope="module")
def in_process(tmp_path_factory):
    """A file with one bad record, and its report and exit status validated in-process."""
    folder = tmp_path_factory.mktemp("stalled")
    path = folder / "batch.jsonl"
    atomic_write_jsonl(path, [*get_generator("syllo").generate(1, 6, 3), {"prompt": 3}])
    done, seconds = tdm_validate(path, folder / "home")
    assert done.returncode == 1, done.stderr[-2000:]
    return path, folder / "home", done, seconds


@pytest.mark.parametrize("sends, error", [(b"", "ReadTimeout"), (HEADERS_THEN_STALL, "ReadTimeout")], ids=["silent", "headers-then-stall"])
def test_a_stalled_service_falls_back_in_process_within_the_read_timeout(in_process, sends, error):
    path, home, here, here_seconds = in_process
    with stalled_server(sends) as url:
        there, seconds = tdm_validate(path, home, url)
    notes = [line for line in there.stderr.splitlines() if line]
    assert notes == [f"tdm api at {url} could not validate ({error}: silent for {READ_TIMEOUT_S} s, api.client_read_timeout_sec): validating in-process"]
    assert there.returncode == here.returncode
    assert json.loads(there.stdout) == json.loads(here.stdout)
    bound = READ_TIMEOUT_S * 3 + here_seconds + 30  # generous: a loaded machine, process startup twice
    assert seconds < bound, f"{seconds:.1f} s with a {READ_TIMEOUT_S} s read timeout (in-process alone: {here_seconds:.1f} s)"
