"""The code location loads in the real Dagster webserver: the asset graph and its checks."""

import time

import httpx
import pytest

from tests.support.dagster_processes import (
    dagster_env,
    dagster_process,
    free_port,
    instance_folder,
)

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


@pytest.fixture
def webserver(tmp_path, home):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dagster_env(instance_folder(tmp_path / "dagster-home"))
    with dagster_process(["dagster-webserver", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
                         env=env, log=tmp_path / "webserver.log", ready_url=url):  # fmt: skip
        yield url


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
        ("checkpoint",), ("checkpoint_evaluation",), ("deployed_model",), ("mined_sources",), ("queue_recheck",), ("data_stats",), ("gated_shards",),
    }  # fmt: skip
    assert nodes[("checkpoint",)]["dependencyKeys"] == [{"path": ["queued_batch"]}]
    assert nodes[("deployed_model",)]["dependencyKeys"] == [{"path": ["checkpoint_evaluation"]}]
    assert nodes[("training_dataset",)]["dependencyKeys"] == [{"path": ["queued_batch"]}]
    assert nodes[("validated_batch",)]["dependencyKeys"] == [{"path": ["generated_batch"]}]
    assert nodes[("quality_report",)]["dependencyKeys"] == [{"path": ["validated_batch"]}]
    assert nodes[("queued_batch",)]["dependencyKeys"] == [{"path": ["quality_report"]}]
    checks = nodes[("quality_report",)]["assetChecksOrError"]["checks"]
    assert {c["name"] for c in checks} == {"format", "length", "diversity", "balance", "content", "duplicates", "leakage", "batch_metrics"}
    assert all(c["blocking"] for c in checks)
