"""docs/guides/past-one-box.md, "Running past one box", run on one machine: one PostgreSQL instance,
Redis as the Celery broker, and the page's Celery worker commands as the boxes.

Everything is real and on 127.0.0.1: a PostgreSQL cluster and a Redis server (with a
password) that the tests start, three ``celery worker`` processes started with
the page's commands, each with only the environment the page's table gives a worker,
and ``dagster job execute`` of ``batch_pipeline`` then ``training_pipeline``'s
``checkpoint`` with ``TDM_EXECUTOR=celery``. The event log and the workers' own logs must
say that the inference worker ran ``generated_batch``, the training worker ``checkpoint``
and the CPU worker every other step; the batch must reach the queue and the checkpoint be
trained on it: steps on different workers hand over through the shared ``TDM_HOME``.
A step killed on its box must fail its run, not leave it waiting.
"""

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import yaml

from tdm_dagster.home import TdmHome
from tdm_dagster.jobs import BATCH_PIPELINE, TRAINING_PIPELINE, add_checkpoint
from tdm_dagster.partitions import batch_partitions
from tdm_dagster.records.batches import new_batch_id
from tdm_dagster.runs.boxes import DEFAULT_QUEUE, INFERENCE, TRAINING, box_of
from tests.support import postgres_server, redis_server
from tests.support.dagster_processes import BIN, ROOT, dagster_command, dagster_process, wait_for
from tests.support.fake_inference_server import fake_inference_server

postgres = postgres_server.postgres  # the session's throwaway PostgreSQL cluster
redis = redis_server.redis  # this module's throwaway Redis

PAGE = ROOT / "docs" / "guides" / "past-one-box.md"
PG_PASSWORD_ENV = "DAGSTER_PG_PASSWORD"
WORKER_ENV = ("DAGSTER_HOME", PG_PASSWORD_ENV, "TDM_HOME", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")
"""What the page's environment table gives every worker."""
COUNT = 12


def page_section(heading: str) -> str:
    return PAGE.read_text().split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def page_dagster_yaml() -> dict:
    """The shared instance's ``dagster.yaml``, as the page shows it."""
    section = page_section("One Dagster instance on PostgreSQL (webserver, daemon and cron together)")
    return yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))


def page_worker_commands() -> dict[str, list[str]]:
    """The page's worker commands, by the queues each serves."""
    block = re.search(r"```bash\n(.*?)```", page_section("Running past one box"), re.S).group(1)
    commands = [shlex.split(line) for line in block.splitlines() if line.strip() and not line.startswith("#")]
    return {command[command.index("-Q") + 1]: command for command in commands}


def page_asset_boxes() -> dict[str, str]:
    """The page's asset -> box table."""
    table = page_section("Running past one box").split("| asset | box (queue) |\n|---|---|\n", 1)[1].split("\n\n", 1)[0]
    boxes = {}
    for row in table.splitlines():
        assets, box = re.fullmatch(r"\| (.+) \| (\w+) \|", row).groups()
        boxes.update(dict.fromkeys(re.findall(r"`(\w+)`", assets), box))
    return boxes


def test_the_docs_table_is_where_each_asset_runs(home):
    from tdm_dagster.definitions import defs

    graph = defs.resolve_asset_graph()
    assert page_asset_boxes() == {key.to_user_string(): box_of(graph.get(key).assets_def.op.tags) for key in graph.get_all_asset_keys()}
    assert set(page_asset_boxes().values()) == {INFERENCE, TRAINING, DEFAULT_QUEUE}


@pytest.fixture(scope="module")
def shared(postgres, redis, tmp_path_factory):
    """The instance folder with the page's ``dagster.yaml`` (this cluster's host, port,
    user and database), the shared TDM_HOME, and the environment every box gets."""
    root = tmp_path_factory.mktemp("boxes")
    db_name = postgres.create_database("dagster_boxes")
    written = page_dagster_yaml()
    connection = written["storage"]["postgres"]["postgres_db"]
    assert connection["password"] == {"env": PG_PASSWORD_ENV}  # never in the file
    connection.update(username=postgres.user, hostname=postgres.host, port=postgres.port, db_name=db_name)
    helper = yaml.safe_load(postgres.dagster_storage_yaml(db_name, password_env=PG_PASSWORD_ENV))
    assert helper["storage"] == written["storage"]  # the other PostgreSQL tests use the page's storage too
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


@dataclass
class Boxes:
    workers: dict[str, subprocess.Popen]
    """The worker process serving each queue (its pool runs the steps)."""
    logs: dict[str, Path]

    def tails(self) -> str:
        return "\n".join(f"--- {queue} worker\n{log.read_text(errors='replace')[-2000:]}" for queue, log in self.logs.items())


@pytest.fixture(scope="module")
def boxes(shared) -> Iterator[Boxes]:
    """The page's three worker commands, running with the worker environment."""
    commands = page_worker_commands()
    assert set(commands) == {INFERENCE, TRAINING, DEFAULT_QUEUE}
    logs = {queue: shared["root"] / f"worker-{queue}.log" for queue in commands}
    with contextlib.ExitStack() as stack:
        workers = {
            queue: stack.enter_context(dagster_process([str(BIN / "celery"), *command[1:]], env=shared["env"], log=logs[queue]))
            for queue, command in commands.items()
        }
        for queue, log in logs.items():
            wait_for(lambda: " ready." in log.read_text(errors="replace") or workers[queue].poll() is not None, timeout=120,
                     what=f"the {queue} worker")  # fmt: skip
            assert workers[queue].poll() is None, log.read_text(errors="replace")[-3000:]
        yield Boxes(workers, logs)


@pytest.fixture
def instance(shared, postgres, monkeypatch) -> Iterator[dg.DagsterInstance]:
    monkeypatch.setenv("DAGSTER_HOME", shared["env"]["DAGSTER_HOME"])
    monkeypatch.setenv(PG_PASSWORD_ENV, postgres.password)
    with dg.DagsterInstance.get() as opened:
        yield opened


def batch_run(shared, instance: dg.DagsterInstance, skill: str) -> tuple[str, list[str]]:
    """A new batch's partition, and the command that runs ``batch_pipeline`` for it as
    cron would, with its steps sent to the boxes."""
    batch_id = new_batch_id(skill, "builtin", COUNT)
    instance.add_dynamic_partitions(batch_partitions.name, [batch_id])
    run_config = shared["root"] / f"{batch_id}.yaml"
    run_config.write_text(yaml.safe_dump({"ops": {"generated_batch": {"config": {"count": COUNT, "skill": skill}}}}))
    command = ["job", "execute", "-m", "tdm_dagster.definitions", "-j", BATCH_PIPELINE, "-c", str(run_config),
               "--tags", json.dumps({"dagster/partition": batch_id})]  # fmt: skip
    return batch_id, command


def run_of(instance: dg.DagsterInstance, partition: str):
    runs = instance.get_runs(dg.RunsFilter(tags={"dagster/partition": partition}))
    return runs[0] if runs else None


def test_each_step_runs_on_the_worker_of_its_box(shared, boxes, instance, postgres, redis):
    env = shared["env"]
    batch_id, command = batch_run(shared, instance, "syllo")
    ran = dagster_command(command, env={**env, "TDM_EXECUTOR": "celery"}, timeout=300)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:] + boxes.tails()

    run = run_of(instance, batch_id)
    assert run.status == dg.DagsterRunStatus.SUCCESS
    events = instance.all_logs(run.run_id)
    ran_on = {}  # step -> the Celery worker the executor says ran it
    for entry in events:
        if entry.dagster_event and entry.dagster_event.is_engine_event and "in celery worker" in entry.dagster_event.message:
            ran_on[entry.step_key] = entry.dagster_event.engine_event_data.metadata["Celery worker"].value.split("@")[0]
    started = {e.step_key: e.dagster_event.pid for e in events if e.dagster_event and e.dagster_event.is_step_start}
    assert set(started) == set(ran_on) and "generated_batch" in started and len(started) >= 4, (ran_on, started)
    names = {INFERENCE: INFERENCE, TRAINING: TRAINING, DEFAULT_QUEUE: "cpu"}  # the page's -n names
    for step, pid in started.items():
        queue = INFERENCE if step == "generated_batch" else DEFAULT_QUEUE
        assert ran_on[step] == names[queue], (step, ran_on)
        for other, log in boxes.logs.items():  # the worker's own log has the step's start, in its pool's process
            assert (f" - {pid} - {step} - STEP_START - " in log.read_text(errors="replace")) == (other == queue), (step, other)
    queued = instance.get_latest_materialization_event(dg.AssetKey("queued_batch"))
    assert queued is not None and queued.run_id == run.run_id
    assert [p for p in shared["home"].queue_root.rglob("*.jsonl") if batch_id in p.name]  # handed over through TDM_HOME

    # training on the training box: a tiny model, a few steps, on what the batch queued
    shared["home"].config_path.write_text("training:\n  max_steps: 2\n  batch_size: 2\n  min_examples: 1\n")
    key = add_checkpoint(instance)
    command = ["job", "execute", "-m", "tdm_dagster.definitions", "-j", TRAINING_PIPELINE, "--op-selection", "checkpoint",
               "--tags", json.dumps({"dagster/partition": key})]  # fmt: skip
    try:
        trained = dagster_command(command, env={**env, "TDM_EXECUTOR": "celery"}, timeout=300)
    finally:
        shared["home"].config_path.unlink()
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:] + boxes.tails()
    run = run_of(instance, key)
    [start] = [e for e in instance.all_logs(run.run_id) if e.dagster_event and e.dagster_event.is_step_start]
    assert start.step_key == "checkpoint"
    for other, log in boxes.logs.items():
        assert (f" - {start.dagster_event.pid} - checkpoint - STEP_START - " in log.read_text(errors="replace")) == (other == TRAINING)
    assert list((shared["home"].training_dir / key).rglob("checkpoint-2"))

    for secret in (redis.password, postgres.password):
        assert not postgres.rows_containing(shared["db"], secret)
        for path in Path(env["DAGSTER_HOME"]).rglob("*"):
            assert not path.is_file() or secret not in path.read_text(errors="replace"), path


def test_a_step_killed_on_its_box_fails_the_run(shared, boxes, instance):
    """The inference box's step process dies mid-generation (the OOM killer, a crash): the
    run must end failed, naming the lost worker, not wait for ever; the worker lives on."""
    with fake_inference_server(delay_s=120) as (fake, url):
        port = int(url.rsplit(":", 1)[1])
        shared["home"].config_path.write_text(f"auto_generate:\n  source: inference\n  port: {port}\ninference:\n  max_attempts: 1\n  timeout_sec: 300\n")
        try:
            batch_id, command = batch_run(shared, instance, "syllo")
            with dagster_process(["dagster", *command], env={**shared["env"], "TDM_EXECUTOR": "celery"}, log=shared["root"] / "killed.log") as run_process:
                def generating():
                    run = run_of(instance, batch_id)
                    starts = [e for e in instance.all_logs(run.run_id) if e.dagster_event and e.dagster_event.is_step_start] if run else []
                    return starts and fake.chat_requests and starts[0].dagster_event.pid

                pid = wait_for(generating, timeout=120, what=f"generated_batch asking the inference server\n{boxes.tails()}")
                assert parent_pid(pid) == boxes.workers[INFERENCE].pid
                os.kill(pid, signal.SIGKILL)
                wait_for(lambda: run_process.poll() is not None, timeout=120, what="the run to end after its step was killed")
            assert run_process.returncode != 0
        finally:
            shared["home"].config_path.unlink()
    run = run_of(instance, batch_id)
    assert run.status == dg.DagsterRunStatus.FAILURE
    failure = next(e for e in instance.all_logs(run.run_id) if e.dagster_event and e.dagster_event.event_type == dg.DagsterEventType.RUN_FAILURE)
    assert "WorkerLostError" in str(failure.dagster_event.event_specific_data), failure
    assert boxes.workers[INFERENCE].poll() is None  # the box lives on: its next step gets a new process
