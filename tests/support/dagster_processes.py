"""Dagster's own processes for system tests, started as users start them.

The webserver, the daemon, ``dagster dev`` and ``dagster job execute`` run as real
subprocesses on 127.0.0.1, against an instance folder (``DAGSTER_HOME``) the test owns.
Each process gets its own session, so stopping it also stops the children it spawned
(``dagster dev`` runs the webserver and the daemon as children, and each of those runs
the code location in another). Output goes to a log file the test can show on failure.

    home = instance_folder(tmp_path / "dagster-home")
    with dagster_process(["dagster-webserver", "-p", str(port)], env=dagster_env(home),
                         log=tmp_path / "web.log", ready_url=url):
        graphql(url, "{ version }")
"""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
T = TypeVar("T")


def require_system(available: bool, what: str) -> None:
    """Skip a system test whose Debian package is missing, or fail it where the run
    promises every system test runs (CI sets ``TDM_REQUIRE_SYSTEM_TESTS=1``)."""
    if available:
        return
    message = f"{what} is not installed (bash scripts/install-system.sh installs it)"
    if os.environ.get("TDM_REQUIRE_SYSTEM_TESTS") == "1":
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def instance_folder(folder: Path, extra_yaml: str = "") -> Path:
    """A ``DAGSTER_HOME`` with telemetry off, plus any further instance settings."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dagster.yaml").write_text("telemetry:\n  enabled: false\n" + extra_yaml)
    return folder


def dagster_env(dagster_home: Path, **extra: str) -> dict[str, str]:
    """This process's environment with the instance folder and ``extra`` set."""
    return {**os.environ, "DAGSTER_HOME": str(dagster_home), **extra}


def wait_for(probe: Callable[[], T], *, timeout: float, what: str, interval: float = 0.5) -> T:
    """Call ``probe`` until it returns something truthy; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def _serving(url: str, path: str = "/server_info") -> bool:
    try:
        return httpx.get(f"{url}{path}", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _tail(log: Path, chars: int = 3000) -> str:
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


@contextmanager
def dagster_process(
    args: list[str], *, env: dict[str, str], log: Path, ready_url: str | None = None, timeout: float = 180,
    ready_path: str = "/server_info",
) -> Iterator[subprocess.Popen]:
    """Run ``args`` (a command in the venv's bin folder, or a path) in the repository root
    until the block exits. With ``ready_url``, the block starts once the server there
    answers ``ready_path`` (the webserver's ``/server_info`` unless told) with 200."""
    command = [str(BIN / args[0]) if (BIN / args[0]).exists() else args[0], *args[1:]]
    with log.open("ab") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        if ready_url:
            def started() -> bool:
                if process.poll() is not None:
                    raise AssertionError(f"{args[0]} exited with {process.returncode}:\n{_tail(log)}")
                return _serving(ready_url, ready_path)

            wait_for(started, timeout=timeout, what=f"{args[0]} at {ready_url}\n{_tail(log)}")
        yield process
    finally:
        _stop(process)


def stop_process(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM a server the tests started (not a process group), SIGKILL it after ``timeout``."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the process group, then SIGKILL what is left after 30 s."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        except ProcessLookupError:
            pass
    try:  # children that outlived their parent
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def graphql(url: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """POST a GraphQL query to the webserver; the ``data``, or an error naming what failed."""
    response = httpx.post(f"{url}/graphql", json={"query": query, "variables": variables or {}}, timeout=60)
    response.raise_for_status()
    body = response.json()
    if body.get("errors"):
        raise AssertionError(f"GraphQL errors: {body['errors']}")
    return body["data"]


def execute_job(job: str, *, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    """``dagster job execute -m tdm_dagster.definitions -j JOB``, as cron runs it."""
    return dagster_command(["job", "execute", "-m", "tdm_dagster.definitions", "-j", job], env=env, timeout=timeout)


def dagster_command(args: list[str], *, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    """``dagster ARGS`` (e.g. ``["sensor", "start", NAME, "-w", "workspace.yaml"]``) in the
    repository root, to completion; its output is captured."""
    return subprocess.run([str(BIN / "dagster"), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
