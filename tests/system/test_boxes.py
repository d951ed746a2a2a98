"""The README's "Running past one box", run on one machine: one PostgreSQL instance,
Redis as the Celery broker, and the README's Celery worker commands as the boxes.

Everything is real and on 127.0.0.1: a PostgreSQL cluster and a Redis server (with a
password) that the tests start, three ``celery worker`` processes started with the
README's commands, each with only the environment the README's table gives a worker,
and ``dagster job execute`` of ``batch_pipeline`` with ``TDM_EXECUTOR=celery``. The run's
event log must say that the inference worker ran ``generated_batch`` and the CPU worker
every other step (the training worker nothing), and the batch must reach the queue:
steps on different workers hand over through the shared ``TDM_HOME``.
"""

import json
import os
import re
import shlex
from pathlib import Path

import dagster as dg
import pytest
import yaml

from tdm_dagster.home import TdmHome
from tdm_dagster.jobs import BATCH_PIPELINE
from tdm_dagster.partitions import batch_partitions
from tdm_dagster.records.batches import new_batch_id
from tdm_dagster.runs.boxes import DEFAULT_QUEUE, INFERENCE, TRAINING, box_of
from tests.support import postgres_server, redis_server
from tests.support.dagster_processes import BIN, ROOT, dagster_command, dagster_process, wait_for

postgres = postgres_server.postgres  # the session's throwaway PostgreSQL cluster
redis = redis_server.redis  # this module's throwaway Redis

README = ROOT / "README.md"
PG_PASSWORD_ENV = "DAGSTER_PG_PASSWORD"
WORKER_ENV = ("DAGSTER_HOME", PG_PASSWORD_ENV, "TDM_HOME", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")
"""What the README's environment table gives every worker."""
COUNT = 12


def readme_section(heading: str) -> str:
    return README.read_text().split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def readme_dagster_yaml() -> dict:
    """The shared instance's ``dagster.yaml``, as the README shows it."""
    section = readme_section("One Dagster instance on PostgreSQL (webserver, daemon and cron together)")
    return yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))


def readme_worker_commands() -> dict[str, list[str]]:
    """The README's worker commands, by the queues each serves."""
    block = re.search(r"```bash\n(.*?)```", readme_section("Running past one box"), re.S).group(1)
    commands = [shlex.split(line) for line in block.splitlines() if line.strip() and not line.startswith("#")]
    return {command[command.index("-Q") + 1]: command for command in commands}


def readme_asset_boxes() -> dict[str, str]:
    """The README's asset -> box table."""
    boxes = {}
    for assets, box in re.findall(r"^\| (`.+`) \| (\w+)(?: \(\w+\))? \|$", readme_section("Running past one box"), re.M):
        boxes.update(dict.fromkeys(re.findall(r"`(\w+)`", assets), box))
    return boxes


def test_the_readme_table_is_where_each_asset_runs(home):
    from tdm_dagster.definitions import defs

    graph = defs.resolve_asset_graph()
    assert readme_asset_boxes() == {key.to_user_string(): box_of(graph.get(key).assets_def.op.tags) for key in graph.get_all_asset_keys()}
    assert set(readme_asset_boxes().values()) == {INFERENCE, TRAINING, DEFAULT_QUEUE}


@pytest.fixture(scope="module")
def shared(postgres, redis, tmp_path_factory):
    """The instance folder with the README's ``dagster.yaml`` (this cluster's host, port,
    user and database), the shared TDM_HOME, and the environment every box gets."""
    root = tmp_path_factory.mktemp("boxes")
    db_name = postgres.create_database("dagster_boxes")
    written = readme_dagster_yaml()
    connection = written["storage"]["postgres"]["postgres_db"]
    assert connection["password"] == {"env": PG_PASSWORD_ENV}  # never in the file
    connection.update(username=postgres.user, hostname=postgres.host, port=postgres.port, db_name=db_name)
    helper = yaml.safe_load(postgres.dagster_storage_yaml(db_name, password_env=PG_PASSWORD_ENV))
    assert helper["storage"] == written["storage"]  # the other PostgreSQL tests use the README's storage too
    dagster_home = root / "dagster-home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(written))
    tdm_home = TdmHome(root / "tdm-home").ensure()
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(root), "DAGSTER_HOME": str(dagster_home), PG_PASSWORD_ENV: postgres.password,
           "TDM_HOME": str(tdm_home.root), "CELERY_BROKER_URL": redis.url(), "CELERY_RESULT_BACKEND": redis.url()}  # fmt: skip
    if "PYTHONPATH" in os.environ:  # a checkout run from elsewhere: its code, not the installed one
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    assert set(env) - {"PATH", "HOME", "PYTHONPATH"} == set(WORKER_ENV)
    return {"root": root, "db": db_name, "home": tdm_home, "env": env}


def parent_pid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_each_step_runs_on_the_worker_of_its_box(shared, postgres, redis, monkeypatch):
    root, env = shared["root"], shared["env"]
    commands = readme_worker_commands()
    assert set(commands) == {INFERENCE, TRAINING, DEFAULT_QUEUE}
    logs = {queue: root / f"worker-{queue}.log" for queue in commands}
    with (
        dagster_process([str(BIN / "celery"), *commands[INFERENCE][1:]], env=env, log=logs[INFERENCE]) as inference,
        dagster_process([str(BIN / "celery"), *commands[TRAINING][1:]], env=env, log=logs[TRAINING]) as training,
        dagster_process([str(BIN / "celery"), *commands[DEFAULT_QUEUE][1:]], env=env, log=logs[DEFAULT_QUEUE]) as cpu,
    ):
        workers = {INFERENCE: inference, TRAINING: training, DEFAULT_QUEUE: cpu}
        for queue, log in logs.items():
            wait_for(lambda: " ready." in log.read_text(errors="replace") or workers[queue].poll() is not None, timeout=120,
                     what=f"the {queue} worker")  # fmt: skip
            assert workers[queue].poll() is None, log.read_text(errors="replace")[-3000:]

        monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
        monkeypatch.setenv(PG_PASSWORD_ENV, postgres.password)
        batch_id = new_batch_id("syllo", "builtin", COUNT)
        with dg.DagsterInstance.get() as instance:
            instance.add_dynamic_partitions(batch_partitions.name, [batch_id])
        run_config = root / "run.yaml"
        run_config.write_text(yaml.safe_dump({"ops": {"generated_batch": {"config": {"count": COUNT, "skill": "syllo"}}}}))
        ran = dagster_command(
            ["job", "execute", "-m", "tdm_dagster.definitions", "-j", BATCH_PIPELINE, "-c", str(run_config),
             "--tags", json.dumps({"dagster/partition": batch_id})],
            env={**env, "TDM_EXECUTOR": "celery"}, timeout=300,
        )  # fmt: skip
        worker_logs = "\n".join(f"--- {q}\n{log.read_text(errors='replace')[-2000:]}" for q, log in logs.items())
        assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:] + worker_logs

        with dg.DagsterInstance.get() as instance:
            [run] = instance.get_runs()
            assert run.status == dg.DagsterRunStatus.SUCCESS and run.tags["dagster/partition"] == batch_id
            events = instance.all_logs(run.run_id)
            ran_on = {}  # step -> the Celery worker the executor says ran it
            for entry in events:
                if entry.dagster_event and entry.dagster_event.is_engine_event and "in celery worker" in entry.dagster_event.message:
                    metadata = entry.dagster_event.engine_event_data.metadata
                    ran_on[entry.step_key] = metadata["Celery worker"].value.split("@")[0]
            started = {e.step_key: e.dagster_event.pid for e in events if e.dagster_event and e.dagster_event.is_step_start}
            assert set(started) == set(ran_on) and "generated_batch" in started and len(started) >= 4, (ran_on, started)
            names = {INFERENCE: INFERENCE, TRAINING: TRAINING, DEFAULT_QUEUE: "cpu"}  # the README's -n names
            for step, pid in started.items():
                queue = INFERENCE if step == "generated_batch" else DEFAULT_QUEUE
                assert ran_on[step] == names[queue], (step, ran_on)
                assert parent_pid(pid) == workers[queue].pid, (step, pid)  # in that worker's pool
            queued = instance.get_latest_materialization_event(dg.AssetKey("queued_batch"))
            assert queued is not None and queued.run_id == run.run_id

    assert [p.name for p in shared["home"].queue_root.rglob("*.jsonl") if batch_id in p.name]  # handed over through TDM_HOME
    for secret in (redis.password, postgres.password):
        assert not postgres.rows_containing(shared["db"], secret)
        for path in Path(env["DAGSTER_HOME"]).rglob("*"):
            assert not path.is_file() or secret not in path.read_text(errors="replace"), path
