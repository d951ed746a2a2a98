"""A throwaway two-node Ray cluster on 127.0.0.1 for the tests: ``ray start --head`` plus
one worker node, one CPU each, in a fresh temp folder, usage stats off, no dashboard.
Each node is a ``ray start --block`` process in a session of its own, stopped by
signalling that session only (never ``ray stop``, which would stop every Ray on the box).

    with ray_cluster() as address:   # "127.0.0.1:PORT"
        ...

Both nodes run with this checkout first on ``PYTHONPATH`` (workers import tdm_dagster
from here). On exit both nodes are stopped and the folder is removed. Ray is the ``ray`` extra (in ``dev``); without it the tests that use the cluster
skip, or fail where ``TDM_REQUIRE_SYSTEM_TESTS=1`` promises they run.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.dagster_processes import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
HEAD_IP, WORKER_IP = "127.0.0.2", "127.0.0.3"
"""Loopback addresses (all of 127/8 is loopback on Linux) that Ray takes as given: it
replaces 127.0.0.1 by the machine's network address, which these tests must not use."""
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "RAY_DISABLE_DOCKER_CPU_WARNING": "1"}
"""Also set in the driver (the test process): a loopback test cluster without auth tokens."""


def require_ray() -> None:
    if importlib.util.find_spec("ray") is not None:
        return
    message = "ray is not installed (pip install -e '.[ray]')"
    if os.environ.get("TDM_REQUIRE_SYSTEM_TESTS") == "1":
        pytest.fail(message)
    pytest.skip(message)


def _node_ports() -> list[str]:
    ports = {
        "--node-manager-port": free_port(), "--object-manager-port": free_port(),
        "--dashboard-agent-listen-port": free_port(), "--dashboard-agent-grpc-port": free_port(),
        "--runtime-env-agent-port": free_port(), "--metrics-export-port": free_port(),
    }  # fmt: skip
    return [str(part) for option, port in ports.items() for part in (option, port)]


def _wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ray start --head exited with {process.returncode}: {log.read_text()[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex((HEAD_IP, port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"the Ray head did not listen on 127.0.0.1:{port} within {timeout:.0f}s")


def _stop(nodes: list[subprocess.Popen]) -> None:
    """``ray start --block`` takes its node's processes down with it; each session is ours alone."""
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 10.0)):
        for node in nodes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.pid, sig)
        deadline = time.monotonic() + wait
        for node in nodes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.wait(max(0.0, deadline - time.monotonic()))
        if all(node.poll() is not None for node in nodes):
            return


@contextmanager
def ray_cluster() -> Iterator[str]:
    require_ray()
    ray = str(Path(sys.executable).with_name("ray"))
    temp = tempfile.mkdtemp(prefix="tdmray")  # short: Ray's socket paths live under it
    env = {**os.environ, **RAY_ENV, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    port = free_port()
    address = f"{HEAD_IP}:{port}"
    common = ["--block", "--num-cpus=1", "--disable-usage-stats"]
    head = [ray, "start", "--head", f"--port={port}", f"--temp-dir={temp}", "--include-dashboard=false", f"--node-ip-address={HEAD_IP}",
            f"--ray-client-server-port={free_port()}", *common, *_node_ports()]  # fmt: skip
    worker = [ray, "start", f"--address={address}", f"--node-ip-address={WORKER_IP}", *common, *_node_ports()]
    nodes: list[subprocess.Popen] = []
    try:
        for number, command in enumerate((head, worker)):  # the worker node retries until the head is up
            with open(Path(temp) / f"node{number}.log", "w") as log:
                nodes.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        _wait_for_port(port, nodes[0], Path(temp) / "node0.log")
        yield address
    finally:
        _stop(nodes)
        shutil.rmtree(temp, ignore_errors=True)
