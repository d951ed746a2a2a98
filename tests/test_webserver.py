"""The code location loads in the real Dagster webserver: the asset graph and its checks."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
QUERY = """
{
  assetNodes {
    assetKey { path }
    groupName
    dependencyKeys { path }
    assetChecksOrError { ... on AssetChecks { checks { name blocking } } }
  }
}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def webserver(tmp_path, home):
    port = free_port()
    dagster_home = tmp_path / "dagster-home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-webserver"), "-w", str(ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT,
        env={**__import__("os").environ, "DAGSTER_HOME": str(dagster_home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            try:
                if httpx.get(f"{url}/server_info", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"webserver did not start: {process.stderr.read().decode()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_asset_graph_and_checks_in_the_ui(webserver):
    deadline = time.monotonic() + 60
    while True:  # the code location loads in a subprocess after the server starts
        data = httpx.post(f"{webserver}/graphql", json={"query": QUERY}, timeout=30).json()
        nodes = {tuple(n["assetKey"]["path"]): n for n in data.get("data", {}).get("assetNodes") or []}
        if nodes or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert set(nodes) == {
        ("generated_batch",), ("validated_batch",), ("quality_report",), ("queued_batch",), ("training_dataset",),
        ("checkpoint",), ("checkpoint_evaluation",), ("deployed_model",), ("mined_sources",),
    }  # fmt: skip
    assert nodes[("checkpoint",)]["dependencyKeys"] == [{"path": ["queued_batch"]}]
    assert nodes[("deployed_model",)]["dependencyKeys"] == [{"path": ["checkpoint_evaluation"]}]
    assert nodes[("training_dataset",)]["dependencyKeys"] == [{"path": ["queued_batch"]}]
    assert nodes[("validated_batch",)]["dependencyKeys"] == [{"path": ["generated_batch"]}]
    assert nodes[("quality_report",)]["dependencyKeys"] == [{"path": ["validated_batch"]}]
    assert nodes[("queued_batch",)]["dependencyKeys"] == [{"path": ["quality_report"]}]
    checks = nodes[("validated_batch",)]["assetChecksOrError"]["checks"]
    assert {c["name"] for c in checks} == {"format", "length", "diversity", "balance", "content", "duplicates", "leakage", "batch_metrics"}
    assert all(c["blocking"] for c in checks)
