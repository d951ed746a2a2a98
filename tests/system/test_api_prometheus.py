"""A real Prometheus (Debian's ``prometheus``) scrapes ``tdm api``'s ``/metrics`` on
loopback with a read key; after a known batch (``tdm generate``), a dataset import over
the API and a checkpoint, the values read back through Prometheus' query API are the
ones the batch's report and the registry hold."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import httpx
import pytest
from click.testing import CliRunner

from tdm_dagster import cli
from tdm_dagster.gate.reports import load_report
from tdm_dagster.generate.planning import last_generation
from tdm_dagster.training.checkpoints import save_checkpoint
from tests.support.api_server import api_service
from tests.support.dagster_processes import require_system
from tests.support.prometheus_server import prometheus_binary, query, running_prometheus, wait_for

COUNT = 24


@pytest.fixture(scope="module")
def scraped(tmp_path_factory):
    require_system(prometheus_binary() is not None, "Debian prometheus")
    folder = tmp_path_factory.mktemp("api-prometheus")
    with api_service(folder / "home") as api:
        generated = CliRunner().invoke(cli.main, ["generate", "--force", "--count", str(COUNT), "--priority", "high"])
        assert generated.exit_code in (0, 1), generated.output  # a rejected batch is a known batch too
        batch_id = last_generation(api.home)["batch_id"]
        upload = httpx.post(f"{api.url}/v1/datasets/sft/import", files={"file": ("b.jsonl", (api.home.batches_dir / batch_id / "generated.jsonl").read_bytes())},
                            data={"gate": "false"}, headers=api.auth("write"))  # fmt: skip
        assert upload.status_code == 201, upload.text
        trained = save_checkpoint(api.home.training_dir / "ckpt_test", 3, metrics={"loss": 1.0})
        key_file = folder / "read.key"
        key_file.write_text(api.keys["read"])
        target = urlsplit(api.url).netloc
        jobs = {"tdm": {"target": target, "credentials_file": key_file}, "tdm_no_key": {"target": target}}
        with running_prometheus(folder / "prometheus", jobs) as prometheus:
            yield api, prometheus, batch_id, trained


def test_prometheus_reads_the_known_batch(scraped):
    api, prometheus, batch_id, trained = scraped
    assert wait_for(prometheus, 'up{job="tdm"}', lambda r: r.get("") == 1.0) == {"": 1.0}
    assert wait_for(prometheus, 'up{job="tdm_no_key"}', lambda r: "" in r) == {"": 0.0}  # 401 without the key

    report = load_report(api.home, batch_id)
    records = report["records"]
    assert records["generated"] == COUNT and records["approved"] + records["rejected"] == COUNT
    gate = wait_for(prometheus, 'tdm_gate_records{job="tdm"}', lambda r: bool(r))
    assert gate == {"outcome=approved,source=builtin": records["approved"], "outcome=rejected,source=builtin": records["rejected"]}

    checks = query(prometheus, 'tdm_gate_check_records{job="tdm"}')
    expected = {}
    for check, result in report["results"].items():
        details = result["details"]
        expected[f"check={check},outcome=passed"] = details["records"] - details["failed_records"]
        expected[f"check={check},outcome=failed"] = details["failed_records"]
    assert checks == expected and len(expected) == 10  # the five suites at standard

    outcome = "approved" if report["overall_pass"] else "rejected"
    batches = query(prometheus, 'tdm_batches{job="tdm"}')
    assert batches == {"outcome=approved": float(outcome == "approved"), "outcome=rejected": float(outcome == "rejected"), "outcome=no_report": 0.0}
    queued = float(report["overall_pass"])
    assert query(prometheus, 'tdm_queue_files{job="tdm"}') == {"priority=high": queued, "priority=normal": 0.0, "priority=low": 0.0}

    latency = query(prometheus, 'tdm_gate_check_seconds_count{job="tdm"}')
    assert latency == {f"check={check}": 1.0 for check in report["results"]}
    total = query(prometheus, 'sum(tdm_gate_check_seconds_sum{job="tdm"})')[""]
    assert total == pytest.approx(sum(r["details"]["seconds"] for r in report["results"].values()), rel=1e-6)

    assert query(prometheus, 'tdm_dataset_versions{job="tdm"}') == {"dataset=sft": 1.0}
    assert query(prometheus, 'tdm_dataset_records{job="tdm"}') == {"dataset=sft": float(COUNT)}

    generation = query(prometheus, 'tdm_last_generation_timestamp_seconds{job="tdm"}')[""]
    assert 0 < time.time() - generation < 600
    training = query(prometheus, 'tdm_last_training_timestamp_seconds{job="tdm"}')[""]
    assert abs(training - time.time()) < 600 and trained.meta["created_at"]
