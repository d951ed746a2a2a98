"""``/v1/scheduler`` against a real ``tdm api`` process over a real Dagster instance: the
status of the location's schedules and sensors, a job run now (a real Dagster run), a
schedule started, re-timed and stopped with Dagster's own commands, and a job refused
for memory."""

from __future__ import annotations

import time

import httpx
import pytest
import yaml

import dagster as dg
from tdm_dagster.runs import job_memory
from tests.support.api_server import api_process

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    folder = tmp_path_factory.mktemp("api-scheduler")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(folder / "dagster"))
        (folder / "dagster").mkdir()
        with api_process(folder) as running:
            yield running


def _status(api) -> dict:
    answer = httpx.get(api.url + "/v1/scheduler/status", headers=api.auth("read"), timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _schedule(status: dict, name: str) -> dict:
    return next(schedule for schedule in status["schedules"] if schedule["name"] == name)


def test_status_lists_the_locations_schedules_and_sensors_stopped(api):
    status = _status(api)
    assert {s["name"] for s in status["schedules"]} >= {"refresh_stats_schedule", "export_dataset_schedule"}
    assert {s["name"] for s in status["sensors"]} >= {"inbox_sensor", "queue_low_sensor"}
    stats = _schedule(status, "refresh_stats_schedule")
    assert (stats["running"], stats["cron"], stats["next_tick"], stats["job"]) == (False, "5 * * * *", None, "refresh_stats")
    assert "training_pipeline" in status["jobs"]


def test_a_read_key_may_not_run_or_change_jobs(api):
    assert httpx.post(api.url + "/v1/scheduler/run", json={"job": "refresh_stats"}, headers=api.auth("read")).status_code == 403
    assert httpx.put(api.url + "/v1/scheduler/job", json={"name": "refresh_stats", "enabled": True}, headers=api.auth("write")).status_code == 403


def test_run_now_launches_a_real_dagster_run_on_the_instance(api):
    answer = httpx.post(api.url + "/v1/scheduler/run", json={"job": "refresh_stats"}, headers=api.auth("operate"), timeout=60)
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["run_id"]
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        runs = {run["run_id"]: run["status"] for run in _schedule(_status(api), "refresh_stats_schedule")["recent_runs"]}
        if runs.get(run_id) in ("SUCCESS", "FAILURE"):
            break
        time.sleep(2)
    assert runs.get(run_id) == "SUCCESS", (runs, (api.home.api_dir / "runs" / f"{run_id}.log").read_text()[-3000:])
    with pytest.MonkeyPatch.context():
        instance = dg.DagsterInstance.get()
        run = instance.get_run_by_id(run_id)
        assert (run.job_name, run.tags["tdm/trigger"]) == ("refresh_stats", "api")


def test_an_unknown_job_is_404_naming_the_jobs(api):
    answer = httpx.post(api.url + "/v1/scheduler/run", json={"job": "no_such_job"}, headers=api.auth("operate"))
    assert answer.status_code == 404
    assert "no job 'no_such_job'" in answer.json()["detail"] and "refresh_stats" in answer.json()["detail"]


def test_start_retime_and_stop_a_schedule(api):
    started = httpx.put(api.url + "/v1/scheduler/job", json={"name": "refresh_stats", "enabled": True, "cron": "*/30 * * * *"},
                        headers=api.auth("operate"), timeout=300)
    assert started.status_code == 200, started.text
    assert yaml.safe_load(api.home.config_path.read_text())["schedules"] == {"refresh_stats": "*/30 * * * *"}
    stats = _schedule(_status(api), "refresh_stats_schedule")
    assert (stats["running"], stats["cron"]) == (True, "*/30 * * * *")
    assert 0 < stats["next_tick"] - time.time() <= 30 * 60
    bad = httpx.put(api.url + "/v1/scheduler/job", json={"name": "refresh_stats", "cron": "every day"}, headers=api.auth("operate"))
    assert bad.status_code == 400 and "not a valid cron string" in bad.json()["detail"]
    stopped = httpx.put(api.url + "/v1/scheduler/job", json={"name": "refresh_stats_schedule", "enabled": False}, headers=api.auth("operate"), timeout=300)
    assert stopped.status_code == 200, stopped.text
    assert _schedule(_status(api), "refresh_stats_schedule")["running"] is False


def test_a_job_that_needs_more_memory_than_is_left_is_refused_with_the_figures(api):
    config = api.home.config_path
    before = config.read_text() if config.exists() else ""
    config.write_text(before + "api:\n  job_memory_reserve_mb: 100000000\n")  # a reserve no box has
    try:
        answer = httpx.post(api.url + "/v1/scheduler/run", json={"job": "refresh_stats"}, headers=api.auth("operate"), timeout=60)
    finally:
        config.write_text(before)
    assert answer.status_code == 503, answer.text
    assert "refresh_stats needs about 256 MiB" in answer.json()["detail"] and "api.job_memory_reserve_mb" in answer.json()["detail"]


def test_the_gate_estimate_grows_with_what_waits_to_be_gated(tmp_path):
    queued = tmp_path / "queue"
    queued.mkdir()
    empty = job_memory.estimate_bytes("recheck_quality", gate_inputs=[queued], training_data=[], model_folder=None)
    (queued / "batch.jsonl").write_bytes(b"x" * 1_000_000)
    assert job_memory.estimate_bytes("recheck_quality", gate_inputs=[queued], training_data=[], model_folder=None) == empty + 4_000_000
    assert job_memory.estimate_bytes("refresh_stats", gate_inputs=[queued], training_data=[], model_folder=None) == job_memory.RUN_PROCESS_BYTES
