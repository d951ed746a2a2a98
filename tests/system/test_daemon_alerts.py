"""The failed-check alert sensor under a real ``dagster-daemon``, with batches run as cron
runs them, on a SQLite instance and on a PostgreSQL one that the webserver reads too.

Everything is a real process on 127.0.0.1: the daemon, the webserver, ``dagster sensor
start`` and ``dagster job execute``; a Slack-compatible ``chat.postMessage`` server and
an OpenAI-compatible inference server run in this process. The PostgreSQL case starts
its own throwaway cluster (``tests/support/postgres_server.py``).

The sensor ticks at most every 30 s (``minimum_interval_seconds``), so one flow takes
about 70-90 s: first tick (alerts start now), a passing and a failing batch, the tick
that sends the alerts, a daemon restart and one more tick that must send nothing.
"""

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import httpx
import pytest

from tests.support import postgres_server
from tests.support.dagster_private import (
    AssetCheckExecutionRecordStatus,
    InstigatorType,
    TickStatus,
    serialize_value,
)
from tests.support.dagster_processes import (
    dagster_command,
    dagster_env,
    dagster_process,
    execute_job,
    free_port,
    graphql,
    instance_folder,
    wait_for,
)
from tests.support.fake_inference_server import fake_inference_server
from tests.support.http_servers import running_server
from tests.support.postgres_server import PostgresServer
from tests.support.slack_server import slack_app

postgres = postgres_server.postgres  # the session-scoped throwaway cluster fixture

SENSOR = "check_failure_alert_sensor"
TOKEN = "xoxb-daemon-test-5f1c2e9a7b3d4c60"
CHANNEL = "#training-data"
PG_PASSWORD_ENV = "DAGSTER_PG_PASSWORD"
TICK_TIMEOUT = 120  # one 30 s interval, plus the daemon loading the code location on 2 busy cores

RUNS_QUERY = """
{ runsOrError { ... on Runs { results { runId jobName status tags { key value } } } } }
"""
CHECK_QUERY = """
query ($check: String!) {
  assetCheckExecutions(assetKey: {path: ["quality_report"]}, checkName: $check, limit: 20) {
    runId status evaluation { checkName success }
  }
}
"""


@dataclass
class Instance:
    kind: str
    home: Path
    """Its DAGSTER_HOME."""
    env: dict[str, str] = field(default_factory=dict)
    """What its processes need besides DAGSTER_HOME (the database password)."""
    server: PostgresServer | None = None
    db_name: str | None = None


@pytest.fixture(params=["sqlite", "postgres"])
def instance_home(request, tmp_path, monkeypatch) -> Instance:
    """The default SQLite storage, or a fresh database on the throwaway PostgreSQL server
    (password from an env var); DAGSTER_HOME is set for this process too."""
    instance = Instance(request.param, tmp_path / "dagster-home")
    yaml = ""
    if instance.kind == "postgres":
        instance.server = request.getfixturevalue("postgres")
        instance.db_name = instance.server.create_database(f"dagster_{int(time.time() * 1000)}")
        yaml = instance.server.dagster_storage_yaml(instance.db_name, password_env=PG_PASSWORD_ENV)
        instance.env[PG_PASSWORD_ENV] = instance.server.password
        monkeypatch.setenv(PG_PASSWORD_ENV, instance.server.password)
    written = (instance_folder(instance.home, yaml) / "dagster.yaml").read_text()
    assert ("postgres_db" in written) == (instance.kind == "postgres")
    assert instance.server is None or instance.server.password not in written
    monkeypatch.setenv("DAGSTER_HOME", str(instance.home))
    return instance


def sensor_state(instance: dg.DagsterInstance):
    states = [s for s in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR) if s.instigator_name == SENSOR]
    return states[0] if states else None


def sensor_ticks(instance: dg.DagsterInstance) -> list:
    """The sensor's ticks, newest first."""
    state = sensor_state(instance)
    return list(instance.get_ticks(state.instigator_origin_id, state.selector_id)) if state else []


def wait_for_tick(instance: dg.DagsterInstance, *, after: float, log: Path):
    """The first completed tick that started after ``after`` (a time.time())."""

    def finished_tick():
        ticks = [t for t in sensor_ticks(instance) if t.timestamp > after and t.status != TickStatus.STARTED]
        for tick in ticks:
            assert tick.status != TickStatus.FAILURE, f"the sensor failed: {tick.error}"
        # the daemon saves the tick, then the sensor's state (its cursor): wait for both
        if ticks and sensor_state(instance).instigator_data.cursor == ticks[-1].cursor:
            return ticks[-1]
        return None

    return wait_for(finished_tick, timeout=TICK_TIMEOUT, what=f"a {SENSOR} tick\n{log.read_text(errors='replace')[-3000:]}", interval=1)


def check_keys() -> list:
    """Every asset check of the code location (not only the ones the sensor knows)."""
    from tdm_dagster.definitions import defs

    return sorted(defs.resolve_asset_graph().asset_check_keys, key=str)


def failed_evaluations(instance: dg.DagsterInstance) -> list:
    storage = instance.event_log_storage
    status = {AssetCheckExecutionRecordStatus.FAILED}
    return [record for key in check_keys() for record in storage.get_asset_check_execution_history(key, limit=100, status=status)]


def evaluations_of_run(instance: dg.DagsterInstance, run_id: str) -> list:
    storage = instance.event_log_storage
    return [r for key in check_keys() for r in storage.get_asset_check_execution_history(key, limit=100) if r.run_id == run_id]


def message_fields(message: dict) -> dict[str, str]:
    """The ``*Key:* value`` lines of an alert's first section."""
    section = message["body"]["blocks"][1]["text"]["text"]
    return dict(re.findall(r"^\*(\w+):\* (.*)$", section, flags=re.MULTILINE))


def cron_batch(env: dict[str, str]):
    return execute_job("generate_and_queue", env=env, timeout=180)


def test_alert_sensor_under_the_daemon(home, tmp_path, instance_home: Instance):
    kind, dagster_home = instance_home.kind, instance_home.home
    began = time.monotonic()

    def phase(what: str) -> None:  # shown with a failure, and with -s
        print(f"{time.monotonic() - began:6.1f} s  {what}")

    received: list = []
    with running_server(slack_app(received)) as slack_url, fake_inference_server() as (fake, inference_url):
        port = int(inference_url.rsplit(":", 1)[1])
        home.config_path.write_text(
            f"auto_generate:\n  source: inference\n  host: 127.0.0.1\n  port: {port}\n  count: 20\ninference:\n  max_attempts: 1\n"
        )
        web_port = free_port()
        web_url = f"http://127.0.0.1:{web_port}"
        env = dagster_env(dagster_home, SLACK_BOT_TOKEN=TOKEN, TDM_SLACK_CHANNEL=CHANNEL,
                          TDM_SLACK_API_URL=f"{slack_url}/api/", TDM_UI_URL=web_url, **instance_home.env)  # fmt: skip
        started = dagster_command(["sensor", "start", SENSOR, "-w", "workspace.yaml"], env=env)
        assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]
        phase("sensor started")

        daemon_log = tmp_path / "daemon.log"
        web_log = tmp_path / "webserver.log"
        with dg.DagsterInstance.get() as instance:
            assert (kind == "postgres") == (type(instance.run_storage).__name__ == "PostgresRunStorage")
            assert sensor_state(instance).is_running
            with dagster_process(["dagster-webserver", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(web_port)],
                                 env=env, log=web_log):  # fmt: skip
                with dagster_process(["dagster-daemon", "run", "-w", "workspace.yaml"], env=env, log=daemon_log):
                    first = wait_for_tick(instance, after=0, log=daemon_log)
                    assert "alerts start now" in first.skip_reason and first.cursor is not None
                    phase("first tick")

                    passing = cron_batch(env)
                    assert passing.returncode == 0, passing.stdout[-3000:] + passing.stderr[-3000:]
                    phase("passing batch")
                    fake.reply = lambda messages: "Same answer."  # every example alike: diversity fails
                    failing = cron_batch(env)
                    assert failing.returncode != 0, "the failing batch's cron job succeeded"
                    assert "was not queued" in failing.stdout + failing.stderr, failing.stderr[-3000:]
                    batches_done = time.time()
                    phase("failing batch")

                    sending = wait_for_tick(instance, after=batches_done, log=daemon_log)
                    assert sending.status == TickStatus.SKIPPED
                    phase(f"tick after the batches: {sending.skip_reason}")
                sent_before_restart = list(received)
                cursor_before_restart = sensor_state(instance).instigator_data.cursor

                restarted = time.time()
                with dagster_process(["dagster-daemon", "run", "-w", "workspace.yaml"], env=env, log=daemon_log):
                    after_restart = wait_for_tick(instance, after=restarted, log=daemon_log)
                    phase(f"tick after the restart: {after_restart.skip_reason}")
                assert after_restart.skip_reason == "sent 0 alert(s)"
                sent_by_ticks = [re.fullmatch(r"sent (\d+) alert\(s\)", t.skip_reason or "") for t in sensor_ticks(instance)]
                assert sum(int(m.group(1)) for m in sent_by_ticks if m) == len(received)  # the sensor's own count
                assert received == sent_before_restart, "alerts were sent again after the daemon restarted"
                assert sensor_state(instance).instigator_data.cursor == cursor_before_restart

                # The runs cron made, as the instance recorded them.
                runs = instance.get_runs()
                parents = {r.run_id: r for r in runs if r.job_name == "generate_and_queue"}
                children = {r.status: r for r in runs if r.job_name == "batch_pipeline"}
                assert len(parents) == 2 and set(children) == {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE}
                good_run, bad_run = children[dg.DagsterRunStatus.SUCCESS], children[dg.DagsterRunStatus.FAILURE]
                assert {r.tags["tdm/parent_run_id"] for r in children.values()} == set(parents)
                good_batch, bad_batch = good_run.tags["dagster/partition"], bad_run.tags["dagster/partition"]

                # The passing batch: its checks ran and passed, and no alert names it.
                good_evaluations = evaluations_of_run(instance, good_run.run_id)
                assert good_evaluations and all(r.status == AssetCheckExecutionRecordStatus.SUCCEEDED for r in good_evaluations)
                assert not any(good_batch in m["raw"] or good_run.run_id in m["raw"] for m in received)

                # The failing batch: one message per failed evaluation, with its content.
                failed = failed_evaluations(instance)
                assert failed and {r.run_id for r in failed} == {bad_run.run_id}
                assert "diversity" in {r.key.name for r in failed}
                assert len(received) == len(failed)
                fields = [message_fields(m) for m in received]
                assert sorted(f["Check"] for f in fields) == sorted(r.key.name for r in failed)
                headers = sorted(m["body"]["blocks"][0]["text"]["text"] for m in received)
                assert headers == sorted(f"Check failed: quality_report · {r.key.name}" for r in failed)
                link = f"{web_url}/runs/{bad_run.run_id}"
                for message, field in zip(received, fields):
                    assert field["Batch"] == bad_batch and field["Run"] == bad_run.run_id
                    assert field["Asset"] == "quality_report" and field["Severity"] == "ERROR"
                    assert link in json.dumps(message["body"]["blocks"])
                    assert message["body"]["channel"] == CHANNEL
                    assert message["authorization"] == f"Bearer {TOKEN}" and TOKEN not in message["raw"]

                # The webserver reads the same instance: the runs cron made and a check result.
                runs_seen = wait_for(lambda: _graphql_or_none(web_url, RUNS_QUERY), timeout=120, what=f"the webserver ({web_log})")
                seen = {r["runId"]: r for r in runs_seen["runsOrError"]["results"]}
                assert set(seen) == {r.run_id for r in runs}
                assert seen[bad_run.run_id]["status"] == "FAILURE" and seen[good_run.run_id]["status"] == "SUCCESS"
                assert {seen[i]["jobName"] for i in parents} == {"generate_and_queue"}
                executions = graphql(web_url, CHECK_QUERY, {"check": "diversity"})["assetCheckExecutions"]
                by_run = {e["runId"]: e for e in executions}
                assert by_run[bad_run.run_id]["status"] == "FAILED"
                assert by_run[bad_run.run_id]["evaluation"] == {"checkName": "diversity", "success": False}
                assert by_run[good_run.run_id]["status"] == "SUCCEEDED"
                assert httpx.get(link, timeout=30).status_code == 200  # the alert's link opens in the UI
                phase("webserver checked")

                # The token is nowhere in what Dagster recorded or logged.
                for run in runs:
                    for entry in instance.all_logs(run.run_id):
                        assert TOKEN not in serialize_value(entry)
                for tick in sensor_ticks(instance):
                    assert TOKEN not in serialize_value(tick.tick_data)
                if instance_home.server:  # every row of the database (the scan does find the run's id)
                    assert instance_home.server.rows_containing(instance_home.db_name, bad_run.run_id)
                    assert not instance_home.server.rows_containing(instance_home.db_name, TOKEN)
                for output in (passing.stdout, passing.stderr, failing.stdout, failing.stderr, started.stdout, started.stderr):
                    assert TOKEN not in output
    for path in [daemon_log, web_log, *dagster_home.rglob("*")]:
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), f"the bot token is in {path}"


def _graphql_or_none(url: str, query: str):
    try:
        return graphql(url, query)
    except (httpx.HTTPError, AssertionError):
        return None
