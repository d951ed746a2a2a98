"""The registry under real concurrent processes and SIGKILL: no lost version, no missing object.

Every race starts real ``tdm datasets`` processes on one TDM_HOME and runs at least 10
times; afterwards the current version must hold every committed file's records and
``verify`` must pass (every object present, every checksum right).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tdm_dagster.files.atomic import atomic_write_jsonl
from tdm_dagster.datasets import DatasetRegistry
from tdm_dagster.datasets.records import canonical_json

REPO = Path(__file__).resolve().parents[3]
TRIALS = 10


def chats(tag: str, count: int) -> list[dict]:
    return [
        {"messages": [{"role": "user", "content": f"{tag} question {i}"}, {"role": "assistant", "content": f"{tag} answer {i}"}]}
        for i in range(count)
    ]


def tdm(*args: str) -> subprocess.Popen:
    """``tdm datasets ARGS`` as its own process, running this checkout's code."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", "from tdm_dagster.cli import main; main()", "datasets", *args],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def finish(process: subprocess.Popen) -> str:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    return out


def contents(registry: DatasetRegistry, name: str, version: str | None = None) -> set[str]:
    return {canonical_json(record) for record in registry.records(name, version)}


def write_batch(folder: Path, tag: str, count: int) -> tuple[Path, set[str]]:
    records = chats(tag, count)
    path = folder / f"{tag}.jsonl"
    atomic_write_jsonl(path, records)
    return path, {canonical_json(record) for record in records}


def test_two_adds_at_once_both_land_in_the_current_version(home, tmp_path) -> None:
    registry = DatasetRegistry(home)
    registry.create("race")
    expected = set()
    for trial in range(TRIALS):
        (first, first_records), (second, second_records) = (write_batch(tmp_path, f"t{trial}{side}", 200) for side in "ab")
        processes = [tdm("add", "race", str(first)), tdm("add", "race", str(second))]
        for process in processes:
            finish(process)
        expected |= first_records | second_records
        assert contents(registry, "race") == expected, f"trial {trial}: a concurrent add was lost"
    versions = registry.versions("race")
    assert len(versions) == 2 * TRIALS
    assert registry.version_info("race").record_count == 400 * TRIALS
    assert registry.verify().ok


def test_add_racing_a_forced_delete_never_commits_a_version_with_missing_objects(home, tmp_path) -> None:
    """Each trial: ``add`` to the dataset and to a second one whose records are exactly the
    chunk that ``delete --version --force`` collects, all three at once."""
    registry = DatasetRegistry(home)
    for trial in range(TRIALS):
        shared, keep = f"shared{trial}", f"keep{trial}"
        registry.create(shared)
        registry.create(keep)
        registry.append(shared, chats(f"base{trial}", 20))
        doomed = chats(f"doomed{trial}", 30)
        registry.append(shared, doomed)  # 1.1, current: its chunk holds exactly ``doomed``
        same_chunk, _ = write_batch(tmp_path, f"same{trial}", 0)
        atomic_write_jsonl(same_chunk, doomed)  # stored as the very chunk 1.1 uses
        extra, extra_records = write_batch(tmp_path, f"extra{trial}", 40)
        processes = [
            tdm("delete", shared, "--version", "1.1", "--force"),
            tdm("add", keep, str(same_chunk)),
            tdm("add", shared, str(extra)),
        ]
        for process in processes:
            finish(process)
        report = registry.verify()
        assert report.ok, f"trial {trial}: {report.problems}"
        assert contents(registry, keep) == {canonical_json(record) for record in doomed}
        current = contents(registry, shared)
        assert extra_records <= current, f"trial {trial}: the add was lost"
        assert {canonical_json(r) for r in chats(f"base{trial}", 20)} <= current


PAUSED_APPEND = """
import sys
from tdm_dagster.datasets import DatasetRegistry
from tdm_dagster.home import TdmHome

class PausedAfterWritingObjects(DatasetRegistry):
    def _place(self, staged, known):
        placement = super()._place(staged, known)
        print("objects written", flush=True)
        sys.stdin.readline()
        return placement

records = [{"messages": [{"role": "user", "content": f"doomed question {i}"}, {"role": "assistant", "content": f"a{i}"}]} for i in range(30)]
info = PausedAfterWritingObjects(TdmHome.from_env()).append(sys.argv[1], records)
print(info.version, flush=True)
"""


@pytest.mark.parametrize("target", ["same dataset", "other dataset"])
def test_delete_between_an_adds_object_write_and_its_commit(home, target) -> None:
    """Deterministic worst case, 10 times: ``delete --version --force`` collects the very chunk an
    add has just found already stored (and so did not write), before that add commits."""
    registry = DatasetRegistry(home)
    doomed = [{"messages": [{"role": "user", "content": f"doomed question {i}"}, {"role": "assistant", "content": f"a{i}"}]} for i in range(30)]
    for trial in range(TRIALS):
        shared, adder = f"shared{trial}", f"shared{trial}" if target == "same dataset" else f"other{trial}"
        registry.create(shared)
        if adder != shared:
            registry.create(adder)
        registry.append(shared, chats(f"base{trial}", 5))
        registry.append(shared, doomed)  # 1.1 holds the chunk of exactly ``doomed``
        paused = subprocess.Popen(
            [sys.executable, "-c", PAUSED_APPEND, adder], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert paused.stdout.readline().strip() == "objects written"
        registry.delete_version(shared, "1.1", force=True)  # this process, while the other one waits
        out, _ = paused.communicate("go\n", timeout=60)
        assert paused.returncode == 0
        report = registry.verify()
        assert report.ok, f"trial {trial}: {report.problems}"
        assert {canonical_json(r) for r in doomed} <= contents(registry, adder)


def add_duration(home, tmp_path, records: int) -> float:
    registry = DatasetRegistry(home)
    registry.create("timing")
    path, _ = write_batch(tmp_path, "timing", records)
    start = time.monotonic()
    finish(tdm("add", "timing", str(path)))
    return time.monotonic() - start


def test_sigkilled_add_leaves_the_old_or_the_new_version_and_the_next_add_works(home, tmp_path) -> None:
    records = 3000
    duration = add_duration(home, tmp_path, records)
    registry = DatasetRegistry(home)
    registry.create("killed")
    expected = contents_before = set()
    outcomes = {"old": 0, "new": 0, "finished before the kill": 0}
    for trial in range(TRIALS):
        path, batch = write_batch(tmp_path, f"k{trial}", records)
        process = tdm("add", "killed", str(path))
        time.sleep(duration * (0.4 + 0.1 * trial))  # from process start-up to past the commit
        outcomes["finished before the kill"] += process.poll() is not None
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        current = contents(registry, "killed") if registry.describe("killed").current_version else set()
        if current == contents_before | batch:
            outcomes["new"] += 1
        else:
            assert current == contents_before, f"trial {trial}: neither the old nor the new version"
            outcomes["old"] += 1
        assert registry.verify("killed").ok
        follow, follow_batch = write_batch(tmp_path, f"after{trial}", 5)
        process = tdm("add", "killed", str(follow))
        finish(process)  # a lock held by the killed process is gone with it
        expected = current | follow_batch
        assert contents(registry, "killed") == expected
        contents_before = expected
    assert registry.verify().ok
    print(json.dumps({"add_seconds": round(duration, 2), **outcomes}))


@pytest.mark.parametrize("trial", range(TRIALS))
def test_sigkill_while_holding_the_dataset_lock_frees_it(home, trial) -> None:
    """A process killed inside the commit section (lock held) never blocks the next writer."""
    registry = DatasetRegistry(home)
    registry.create("held")
    registry.append("held", chats("first", 3))
    code = (
        "import os, signal, sys\n"
        "from tdm_dagster.datasets import DatasetRegistry\n"
        "from tdm_dagster.home import TdmHome\n"
        "registry = DatasetRegistry(TdmHome.from_env())\n"
        "with registry._dataset_lock('held'), registry._objects_lock(shared=True):\n"
        "    print('locked', flush=True)\n"
        "    sys.stdin.readline()\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    blocked = tdm("add", "held", str(_batch(home, trial)))
    time.sleep(0.5 + trial * 0.05)
    assert blocked.poll() is None, "add went ahead while another process held the dataset's lock"
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    finish(blocked)
    assert registry.version_info("held").record_count == 3 + 4
    assert registry.verify().ok


def _batch(home, trial: int) -> Path:
    path = home.root / f"lock{trial}.jsonl"
    atomic_write_jsonl(path, chats(f"lock{trial}", 4))
    return path


APPEND_NEW_BATCHES = """
import json, sys
from tdm_dagster.datasets import DatasetRegistry
from tdm_dagster.home import TdmHome

batches = json.loads(sys.stdin.read())
info = DatasetRegistry(TdmHome.from_env()).append_new_batches("asset", batches)
print(json.dumps(info and info.operation["new_batches"]))
"""


def test_two_processes_appending_the_same_new_batches_add_each_once(home) -> None:
    """What two overlapping runs of the training_dataset asset do: every batch lands exactly once."""
    registry = DatasetRegistry(home)
    registry.create("asset")
    expected: list[str] = []
    for trial in range(TRIALS):
        batches = {f"batch{trial}_{side}": chats(f"asset{trial}{side}", 20) for side in "abc"}
        payload = json.dumps(batches)
        processes = [
            subprocess.Popen([sys.executable, "-c", APPEND_NEW_BATCHES], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        added = [json.loads(process.communicate(payload, timeout=120)[0]) for process in processes]
        assert all(process.returncode == 0 for process in processes)
        assert sorted(batch for new in added if new for batch in new) == sorted(batches), f"trial {trial}: {added}"
        expected += [json.dumps(record, sort_keys=True) for records in batches.values() for record in records]
        current = [json.dumps(record, sort_keys=True) for record in registry.records("asset")]
        assert sorted(current) == sorted(expected), f"trial {trial}: a batch is missing or twice"
    assert registry.verify().ok
