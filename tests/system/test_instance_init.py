"""Two processes using a fresh DAGSTER_HOME for the first time never corrupt it.

Without a lock, two processes creating the instance's SQLite databases at once can both
stamp the schema (two ``alembic_version`` rows: every later command fails) or crash on a
table the other just made. Each trial starts two real `tdm` processes that import
everything first, say so, and then open the fresh instance at the same moment (when the
test creates the start file), one through `tdm init`, the other through `tdm stats` (the
CLI's instance).
"""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import dagster as dg

from tdm_dagster.runs.instance import LOCK_NAME

DATABASES = ("history/runs.db", "history/runs/index.db", "schedules/schedules.db")
TDM = Path(sys.executable).parent / "tdm"
AT_THE_SAME_MOMENT = """
import os, sys, time
import dagster, tdm_dagster.runs.instance, tdm_dagster.gate.reports
from tdm_dagster.cli import main
print("ready", flush=True)
while not os.path.exists(os.environ["START_FILE"]):
    time.sleep(0.001)
main(sys.argv[1:])
"""


def alembic_heads(dagster_home: Path) -> dict[str, int]:
    heads = {}
    for name in DATABASES:
        with sqlite3.connect(dagster_home / name) as db:
            heads[name] = len(db.execute("SELECT version_num FROM alembic_version").fetchall())
    return heads


def test_two_processes_creating_one_fresh_instance_never_corrupt_it(home, tmp_path):
    for trial in range(10):
        dagster_home = tmp_path / f"dagster-{trial}"  # does not exist yet
        start = tmp_path / f"start-{trial}"
        env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "START_FILE": str(start)}
        processes = [
            subprocess.Popen([sys.executable, "-c", AT_THE_SAME_MOMENT, *command], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for command in (["init"], ["stats", "--json"])
        ]
        for process in processes:
            assert process.stdout.readline() == b"ready\n", process.stderr.read().decode()[-3000:]
        start.touch()
        outputs = [process.communicate(timeout=120) for process in processes]
        for process, (out, err) in zip(processes, outputs):
            assert process.returncode == 0, f"trial {trial}: {err.decode()[-3000:]}"
        assert json.loads(outputs[1][0])["batches"] == 0
        assert alembic_heads(dagster_home) == dict.fromkeys(DATABASES, 1), f"trial {trial}"
        assert (dagster_home / LOCK_NAME).exists() and "run_monitoring" in (dagster_home / "dagster.yaml").read_text()
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            assert instance.get_runs() == []


def test_two_generates_on_a_fresh_instance_both_record_their_runs(home, tmp_path):
    dagster_home = tmp_path / "dagster-home"
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home)}
    processes = [
        subprocess.Popen([str(TDM), "generate", "--force", "--count", "5", "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert json.loads(out)["ran"] is True, err.decode()[-3000:]
    assert alembic_heads(dagster_home) == dict.fromkeys(DATABASES, 1)
    listed = subprocess.run([str(TDM.parent / "dagster"), "run", "list"], env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr[-3000:]
    assert listed.stdout.count("Job: generate_and_queue") == 2 and listed.stdout.count("Job: batch_pipeline") == 2
