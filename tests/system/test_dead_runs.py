"""A killed `tdm generate` never blocks automatic generation.

A real `tdm generate` subprocess, slowed by a slow inference server, is SIGKILLed at
different moments (its run just started; generating; its checks running); then the
queue-low sensor and `tdm generate` go on, the dead runs show as FAILURE with the reason,
and `tdm stats` counts the batch it left behind (a plan, no report) as failed.
"""

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from tdm_dagster import cli
from tdm_dagster.runs.instance import fail_dead_runs, open_instance
from tdm_dagster.runs.owner import HOST_TAG, PID_TAG, PROCESS_START_TAG, owner_gone, owner_tags
from tdm_dagster.resources import TdmHomeResource
from tdm_dagster.sensors import queue_low_sensor
from tests.support.dagster_private import create_run_for_test
from tests.support.dagster_processes import wait_for

TDM = Path(sys.executable).parent / "tdm"


def _runs_of(instance, pid: int) -> list[dg.DagsterRun]:
    return [run for run in instance.get_runs() if run.tags.get(PID_TAG) == str(pid)]


def _started(instance, job: str, pid: int) -> bool:
    return any(r.job_name == job and r.status == dg.DagsterRunStatus.STARTED for r in _runs_of(instance, pid))


def _plan_written(home) -> list[str]:
    return [p.parent.name for p in home.batches_dir.glob("*/batch.json")]


def _stats(*args) -> dict:
    done = CliRunner().invoke(cli.main, ["stats", *args, "--json"], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


@pytest.mark.parametrize("moment", ["run_started", "generating", "checking"])
def test_a_killed_generate_never_blocks_generation(moment, home, dagster_home, fake, server):
    port = server[1].rsplit(":", 1)[1]
    home.config_path.write_text(
        f"auto_generate:\n  source: inference\n  port: {port}\n  count: 8\n  cooldown_sec: 0\n"
        "inference:\n  max_concurrency: 1\n"
    )
    fake.delay_s = 0.5  # 8 requests one at a time: about 4 s of generating
    with open_instance() as instance:  # created here first, so the test never races the child for it
        process = subprocess.Popen([str(TDM), "generate", "--force", "--json"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            if moment == "run_started":
                wait_for(lambda: _started(instance, "generate_and_queue", process.pid), timeout=120, what="generate_and_queue STARTED")
            elif moment == "generating":
                wait_for(lambda: _started(instance, "batch_pipeline", process.pid) and len(fake.chat_requests) >= 2,
                         timeout=120, what="the batch generating", interval=0.1)  # fmt: skip
            else:
                wait_for(lambda: _plan_written(home), timeout=120, what="the batch's plan", interval=0.1)
                assert _stats()["batches_failed"] == 0  # its run is alive: not failed
            assert process.poll() is None, process.stdout.read().decode()[-3000:]
            os.kill(process.pid, signal.SIGKILL)
            # SIGKILL is delivered asynchronously: wait until the process has exited (on a
            # loaded machine it can take a moment), without reaping it where it stays a zombie
            os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
            if moment != "run_started":  # left unreaped there: a zombie is dead too
                process.wait(timeout=30)
            left_behind = _plan_written(home)
            assert not list(home.reports_dir.glob("*.json")), "the batch finished before the kill"
            dead = [run for run in _runs_of(instance, process.pid) if not run.is_finished]
            # a nested run the killed process had created but not yet launched is dead as well
            alive = {dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED}
            assert dead and all(run.status in alive for run in dead)
            assert any(run.status == dg.DagsterRunStatus.STARTED for run in dead)

            fake.delay_s = 0.0
            if moment == "run_started":  # `tdm generate` itself sees through the dead run
                proceeded = CliRunner().invoke(cli.main, ["generate", "--count", "3", "--json"], catch_exceptions=False)
                assert json.loads(proceeded.stdout)["ran"] is True, proceeded.output
            result = queue_low_sensor(dg.build_sensor_context(instance=instance, resources={"tdm": TdmHomeResource()}))
            assert isinstance(result, dg.SensorResult), result
            assert len(result.run_requests) == 1
            if moment != "run_started":
                proceeded = CliRunner().invoke(cli.main, ["generate", "--count", "3", "--json"], catch_exceptions=False)
                assert json.loads(proceeded.stdout)["ran"] is True, proceeded.output
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)
            process.stdout.close()

        dead_status = {run.run_id: run.status.value for run in dead}
        for run in dead:
            run = instance.get_run_by_id(run.run_id)
            assert run.status == dg.DagsterRunStatus.FAILURE
            [failure] = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
            message = failure.dagster_event.message
            assert f"process {process.pid} on {socket.gethostname()} is gone (killed or crashed" in message
            assert f"was {dead_status[run.run_id]}" in message and "marked failed by tdm" in message

    stats = _stats()
    summary = _stats("summary")
    if moment == "checking":
        assert stats["failed_batches"] == left_behind and stats["batches_failed"] == 1
        assert summary["totals"]["failed_batches"] == 1
        assert "1 failed before their checks" in CliRunner().invoke(cli.main, ["stats"]).stdout
    else:  # killed before its plan was written: no batch folder to count
        assert left_behind == [] and stats["batches_failed"] == 0


def test_only_runs_whose_process_is_gone_are_failed(home, dagster_home):
    """Alive (this process), another host, no tags (daemon-launched): left alone. A pid
    that now belongs to another process (pid reuse) and a pid that is gone: failed."""
    with subprocess.Popen([sys.executable, "-c", "pass"]) as exited:
        pass
    mine = owner_tags()
    cases = {
        "alive": mine,
        "other_host": {**mine, HOST_TAG: "another-host.example"},
        "untagged": {},
        "pid_reused": {**mine, PROCESS_START_TAG: mine[PROCESS_START_TAG] + "0"},
        "gone": {**mine, PID_TAG: str(exited.pid), PROCESS_START_TAG: ""},
    }
    with open_instance() as instance:
        runs = {name: create_run_for_test(instance, job_name="generate_and_queue", status=dg.DagsterRunStatus.STARTED, tags=tags)
                for name, tags in cases.items()}  # fmt: skip
        logged: list[str] = []
        failed = fail_dead_runs(instance, logged.append)
        assert sorted(failed) == sorted(runs[name].run_id for name in ("pid_reused", "gone"))
        assert len(logged) == 2 and any("the pid now belongs to another process" in line for line in logged)
        status = {name: instance.get_run_by_id(run.run_id).status for name, run in runs.items()}
    assert status == {
        "alive": dg.DagsterRunStatus.STARTED,
        "other_host": dg.DagsterRunStatus.STARTED,
        "untagged": dg.DagsterRunStatus.STARTED,
        "pid_reused": dg.DagsterRunStatus.FAILURE,
        "gone": dg.DagsterRunStatus.FAILURE,
    }
    assert owner_gone(mine) is None


def test_cron_runs_carry_their_process(home, dagster_home, tmp_path):
    """`dagster job execute` creates the run itself; the op tags it with its process."""
    from tests.support.dagster_processes import execute_job

    done = execute_job("generate_and_queue", env={**os.environ, "TDM_AUTO_GENERATE_COUNT": "5"})
    assert done.returncode in (0, 1), done.stderr[-3000:]  # queued or rejected: either way a run
    with open_instance() as instance:
        runs = instance.get_runs()
    assert {run.job_name for run in runs} == {"generate_and_queue", "batch_pipeline"}
    assert all(run.tags.get(PID_TAG, "").isdigit() and run.tags[HOST_TAG] == socket.gethostname() for run in runs)
