"""A schedule with nothing to do skips its tick, saying why, instead of launching a run
that fails (issue 19, item 12): the ticks evaluated by Dagster as the daemon does, and the
upkeep jobs run by hand with `dagster job execute` on a fresh home."""

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from tdm_dagster.datasets import DatasetRegistry
from tdm_dagster.generate.generators import get_generator
from tdm_dagster.resources import TdmHomeResource

BIN = Path(sys.executable).parent
MADE_BY = "(the training_dataset asset makes it from the approved batches)"
NO_DATASET = f"no dataset named 'training' yet {MADE_BY}"


def ticks() -> dict[str, tuple[str | None, int]]:
    """Each schedule's tick, evaluated now: (its skip message, how many runs it requests)."""
    from tdm_dagster.location import build_definitions

    return {schedule.name.removesuffix("_schedule"): evaluate(schedule) for schedule in build_definitions().schedules}


def evaluate(schedule: dg.ScheduleDefinition) -> tuple[str | None, int]:
    """The tick's skip message and how many runs it requests."""
    with dg.instance_for_test() as instance, dg.build_schedule_context(instance=instance, resources={"tdm": TdmHomeResource()}) as context:
        data = schedule.evaluate_tick(context)
    return data.skip_message, len(data.run_requests or [])


def test_on_a_fresh_home_the_ticks_with_nothing_to_do_skip_saying_why(home):
    assert ticks() == {
        "generate_and_queue": (None, 1),
        "mine_sources": ("mine_sources skipped: no source to mine: collectors.git_repos, collectors.docs and collectors.conversation_logs are empty", 0),
        "recheck_quality": ("recheck_quality skipped: the queue is empty: nothing to re-check", 0),
        "deduplicate_dataset": (f"deduplicate_dataset skipped: {NO_DATASET}", 0),
        "export_dataset": (f"export_dataset skipped: {NO_DATASET}", 0),
        "refresh_stats": (None, 1),
    }
    assert not (home.root / "datasets").exists()  # a tick creates no catalog


def test_each_tick_runs_once_there_is_something_to_do(home, tmp_path):
    registry = DatasetRegistry(home)
    registry.create("training")
    assert ticks()["export_dataset"] == (f"export_dataset skipped: dataset 'training' has no version yet {MADE_BY}", 0)
    registry.append("training", get_generator("binary").generate(3, 5, 1))
    (tmp_path / "notes.md").write_text("# Notes\n\nSome text.\n")
    home.config_path.write_text(f"collectors:\n  docs: [{json.dumps(str(tmp_path / 'notes.md'))}]\n")
    queued = home.queue_dir("normal")
    queued.mkdir(parents=True, exist_ok=True)
    (queued / "b1.jsonl").write_text("{}\n")
    assert {name: runs for name, (_, runs) in ticks().items()} == dict.fromkeys(
        ("generate_and_queue", "mine_sources", "recheck_quality", "deduplicate_dataset", "export_dataset", "refresh_stats"), 1
    )


def test_a_recheck_left_mid_way_is_something_to_do(home):
    """An interrupted re-check left a file aside: the next tick runs, and puts it back."""
    aside = home.rechecking_dir("high")
    aside.mkdir(parents=True)
    (aside / "b1.jsonl").write_text("{}\n")
    assert ticks()["recheck_quality"] == (None, 1)


def test_a_bad_config_skips_the_tick_with_the_problem(home):
    from tdm_dagster.location import build_definitions

    [schedule] = [s for s in build_definitions().schedules if s.name == "export_dataset_schedule"]
    home.config_path.write_text("dataset:\n  name: [1, 2]\n")  # broken after the location loaded
    skipped, runs = evaluate(schedule)
    assert skipped.startswith("config problem, not running export_dataset: ") and "dataset.name" in skipped and runs == 0


@pytest.mark.parametrize(("job", "said"), [("export_dataset", "nothing to export"), ("deduplicate_dataset", "nothing to de-duplicate")])
def test_an_upkeep_job_run_by_hand_on_a_fresh_home_succeeds_saying_why(home, dagster_home, job, said):
    env = {**os.environ, "TDM_HOME": str(home.root), "DAGSTER_HOME": str(dagster_home)}
    done = subprocess.run(
        [str(BIN / "dagster"), "job", "execute", "-m", "tdm_dagster.definitions", "-j", job],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "Traceback" not in output and "Stack Trace" not in output and "DatasetNotFoundError" not in output
    [line] = [line for line in output.splitlines() if said in line]
    assert line.endswith(f"{said}: {NO_DATASET}")
    with dg.DagsterInstance.get() as instance:
        [run] = instance.get_runs(dg.RunsFilter(job_name=job))
    assert run.status == dg.DagsterRunStatus.SUCCESS
