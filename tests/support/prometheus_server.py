"""A real Prometheus server for tests (Debian's ``prometheus``), scraping on loopback.

``running_prometheus(folder, jobs)`` writes ``prometheus.yml`` in ``folder`` (one scrape
job per entry, a 1 s scrape interval, optionally a bearer credentials file), starts
``prometheus`` on a free 127.0.0.1 port with its storage in ``folder``, waits until it is
ready, and stops it on exit. ``query`` and ``wait_for`` read values back through its
HTTP API (``/api/v1/query``), as a dashboard would.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.support.dagster_processes import free_port, stop_process

SCRAPE_INTERVAL = "1s"
START_TIMEOUT_S = 60.0


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")


def _config(jobs: dict[str, dict[str, Any]]) -> str:
    lines = ["global:", f"  scrape_interval: {SCRAPE_INTERVAL}", f"  scrape_timeout: {SCRAPE_INTERVAL}", "scrape_configs:"]
    for name, job in jobs.items():
        lines += [f"  - job_name: {name}", f"    metrics_path: {job.get('path', '/metrics')}",
                  "    static_configs:", f"      - targets: ['{job['target']}']"]  # fmt: skip
        if job.get("credentials_file"):
            lines += ["    authorization:", "      type: Bearer", f"      credentials_file: {job['credentials_file']}"]
    return "\n".join(lines) + "\n"


@contextmanager
def running_prometheus(folder: Path, jobs: dict[str, dict[str, Any]]) -> Iterator[str]:
    """Prometheus scraping ``jobs`` (name -> {target: host:port, credentials_file?});
    yields its base URL."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "prometheus.yml"
    config.write_text(_config(jobs))
    port = free_port()
    log = open(folder / "prometheus.log", "wb")
    process = subprocess.Popen(
        [prometheus_binary() or "prometheus", f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"prometheus exited {process.returncode}: {(folder / 'prometheus.log').read_text()[-2000:]}")
            try:
                if httpx.get(base + "/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("prometheus did not become ready")
            time.sleep(0.2)
        yield base
    finally:
        stop_process(process)
        log.close()


def query(base: str, promql: str) -> dict[str, float]:
    """The instant vector of ``promql``: each series' labels (as ``k=v,...``) -> value."""
    answer = httpx.get(base + "/api/v1/query", params={"query": promql}, timeout=10).json()
    assert answer["status"] == "success", answer
    return {
        ",".join(f"{k}={v}" for k, v in sorted(row["metric"].items()) if k not in ("__name__", "instance", "job")): float(row["value"][1])
        for row in answer["data"]["result"]
    }


def wait_for(base: str, promql: str, done: Callable[[dict[str, float]], bool], timeout_s: float = 30.0) -> dict[str, float]:
    """``query`` until ``done`` holds for its result (then that result), else fail with the last one."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = query(base, promql)
        if done(found) or time.monotonic() > deadline:
            assert done(found), f"{promql}: {found}"
            return found
        time.sleep(0.5)
