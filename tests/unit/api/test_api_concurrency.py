"""A real ``tdm api`` process under concurrent clients: reads, ``/metrics`` scrapes and
imports to one dataset from eight threads at once, while another process (as the CLI or
a Dagster run would) writes to the same catalog. Not one request may fail."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import Counter

import httpx
import pytest

from tests.support.api_server import api_process

THREADS, REQUESTS = 8, 8
OTHER_PROCESS_APPENDS = 15

OTHER_PROCESS = """
import sys
from pathlib import Path
from tdm_dagster.datasets import DatasetRegistry
from tdm_dagster.home import TdmHome

registry = DatasetRegistry(TdmHome(Path(sys.argv[1])))
registry.create("other", exist_ok=True)
print("started", flush=True)
for i in range(int(sys.argv[2])):
    registry.append("other", [{"prompt": f"from the other process {i}", "completion": "c"}])
    registry.list_datasets()
print("done", flush=True)
"""


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with api_process(tmp_path_factory.mktemp("api-concurrency")) as running:
        yield running


def records(tag: str) -> bytes:
    return "".join(json.dumps({"prompt": f"question {tag} {n}", "completion": "answer"}) + "\n" for n in range(3)).encode()


def test_concurrent_reads_scrapes_and_imports_never_fail(api):
    first = httpx.post(f"{api.url}/v1/datasets/shared/import", files={"file": ("seed.jsonl", records("seed"))},
                       data={"gate": "false"}, headers=api.auth("write"), timeout=60)  # fmt: skip
    assert first.status_code == 201, first.text
    other = subprocess.Popen([sys.executable, "-c", OTHER_PROCESS, str(api.home.root), str(OTHER_PROCESS_APPENDS)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert other.stdout.readline().strip() == "started", other.stderr.read()

    def call(client: httpx.Client, kind: str, tag: str) -> httpx.Response:
        if kind == "import":
            return client.post(f"{api.url}/v1/datasets/shared/import", files={"file": (f"{tag}.jsonl", records(tag))},
                               data={"gate": "false"}, headers=api.auth("write"))  # fmt: skip
        path = {"show": "/v1/datasets/shared", "versions": "/v1/datasets/shared/versions", "list": "/v1/datasets", "metrics": "/metrics"}[kind]
        return client.get(api.url + path, headers=api.auth("read"))

    kinds = ("show", "metrics", "import", "versions", "list", "metrics")
    outcomes: Counter[tuple[str, str]] = Counter()
    failures: list[str] = []
    guard = threading.Lock()

    def client_thread(number: int) -> None:
        with httpx.Client(timeout=120) as client:
            for request in range(REQUESTS):
                kind = kinds[(number + request) % len(kinds)]
                try:
                    answer = call(client, kind, f"t{number}-r{request}")
                    outcome = str(answer.status_code)
                    wanted = "201" if kind == "import" else "200"
                    problem = None if outcome == wanted else f"{kind}: {outcome} {answer.text[:300]}"
                except httpx.HTTPError as error:
                    outcome, problem = type(error).__name__, f"{kind}: {error!r}"
                with guard:
                    outcomes[(kind, outcome)] += 1
                    if problem:
                        failures.append(problem)

    threads = [threading.Thread(target=client_thread, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    _, errors = other.communicate(timeout=300)
    print(f"\n{THREADS} threads x {REQUESTS} requests: {dict(outcomes)}; failures: {len(failures)}")
    assert failures == [], failures
    assert other.returncode == 0, errors

    imports = sum(count for (kind, _), count in outcomes.items() if kind == "import")
    versions = httpx.get(api.url + "/v1/datasets/shared/versions", headers=api.auth("read")).json()
    assert len(versions) == 1 + imports and versions[-1]["record_count"] == 3 * (1 + imports)
    other_versions = httpx.get(api.url + "/v1/datasets/other/versions", headers=api.auth("read")).json()
    assert len(other_versions) == OTHER_PROCESS_APPENDS
