"""An example budget per training run: high before normal before low, exactly that many
examples, the rest left queued in its place, and a claimer killed mid-split loses and
duplicates nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from tdm_dagster.config.settings import ConfigError, load_config
from tdm_dagster.files.atomic import atomic_write_jsonl, read_jsonl
from tdm_dagster.generate.generators import get_generator
from tdm_dagster.home import PRIORITIES, TdmHome
from tdm_dagster.queue import claim_split
from tdm_dagster.queue import claims as queue_claims

REPO = Path(__file__).resolve().parents[3]


def _fill(home: TdmHome, per_prio: int = 2, n: int = 10) -> dict[str, list[dict]]:
    """Real generator batches as queue files, oldest first in name order; returns the
    records of each file by ``<prio>/<name>``."""
    written = {}
    for p_index, priority in enumerate(PRIORITIES):
        for i in range(per_prio):
            name = f"batch_{priority}_{i}.jsonl"
            records = get_generator("syllo").generate(1, n, p_index * 100 + i)
            atomic_write_jsonl(home.queue_dir(priority) / name, records)
            os.utime(home.queue_dir(priority) / name, (1000 + i, 1000 + i))
            written[f"{priority}/{name}"] = records
    return written


def _key(record: dict) -> str:
    return json.dumps(record, sort_keys=True)


def _queued_records(home: TdmHome) -> list[dict]:
    return [r for p in PRIORITIES for f in sorted(home.queue_dir(p).glob("*.jsonl")) for r in read_jsonl(f)]


def test_budget_takes_high_then_normal_and_leaves_the_rest_in_place(home):
    written = _fill(home)
    low_before = {p.name: (p.read_bytes(), p.stat().st_mtime) for p in home.queue_dir("low").glob("*.jsonl")}
    claim = queue_claims.claim(home, max_examples=25)
    assert [f"{f.priority}/{f.name}" for f in claim.files] == [
        "high/batch_high_0.jsonl", "high/batch_high_1.jsonl", "normal/batch_normal_0.jsonl"
    ]
    taken = claim.examples()
    expected = written["high/batch_high_0.jsonl"] + written["high/batch_high_1.jsonl"] + written["normal/batch_normal_0.jsonl"][:5]
    assert taken == expected and claim.info["examples"] == 25
    # the normal file was cut: its last 5 examples wait in the queue, ahead of batch_normal_1
    rest = home.queue_dir("normal") / claim_split.rest_name("batch_normal_0.jsonl", claim.claim_id)
    assert read_jsonl(rest) == written["normal/batch_normal_0.jsonl"][5:]
    order = [path.name for _prio, path, _m in queue_claims._waiting(home)]
    assert order[:2] == [rest.name, "batch_normal_1.jsonl"]
    assert {p.name: (p.read_bytes(), p.stat().st_mtime) for p in home.queue_dir("low").glob("*.jsonl")} == low_before
    assert queue_claims.claimable_examples(home) == 60 - 25

    second = queue_claims.claim(home, max_examples=1000)
    assert second.info["examples"] == 35
    assert [f.priority for f in second.files] == ["normal", "normal", "low", "low"]
    together = Counter(map(_key, taken + second.examples()))
    assert together == Counter(_key(r) for records in written.values() for r in records)
    assert max(together.values()) == 1
    assert queue_claims.claim(home, max_examples=5) is None and queue_claims.claimable_examples(home) == 0

    dest = queue_claims.archive(claim, "ckpt-a")
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["examples"] == 25
    assert manifest["files"][-1]["rest_queued_as"] == rest.name and manifest["files"][-1]["examples"] == 5


def test_budget_on_a_file_boundary_splits_nothing_and_release_restores(home):
    written = _fill(home, per_prio=1, n=7)
    claim = queue_claims.claim(home, max_examples=14)
    assert [f.priority for f in claim.files] == ["high", "normal"] and len(claim.examples()) == 14
    assert "splits" not in claim.info
    queue_claims.release(claim)
    assert Counter(map(_key, _queued_records(home))) == Counter(_key(r) for rs in written.values() for r in rs)
    with pytest.raises(ValueError, match="max_examples is 0"):
        queue_claims.claim(home, max_examples=0)


def test_config_key_is_validated(home):
    home.config_path.parent.mkdir(parents=True, exist_ok=True)
    home.config_path.write_text("training:\n  max_examples_per_run: 0\n")
    with pytest.raises(ConfigError, match="training.max_examples_per_run is 0; expected a positive integer or null"):
        load_config(home, environ={})
    home.config_path.write_text("training:\n  max_examples_per_run: 480\n")
    assert load_config(home, environ={}).training.max_examples_per_run == 480
    home.config_path.write_text("")
    assert load_config(home, environ={}).training.max_examples_per_run is None


_KILLED_CLAIMER = textwrap.dedent(
    """
    import os, sys, time
    sys.path.insert(0, {repo!r})
    from tdm_dagster.queue import claim_split, claims
    marker, point = {marker!r}, {point!r}

    def stop():
        open(marker, "w").write(point)
        time.sleep(120)  # the parent SIGKILLs us here

    real_journal, real_roll, real_rename = claim_split.atomic_write_json, claim_split._roll_forward, os.rename
    if point == "rest_written":
        claim_split.atomic_write_json = lambda *a: stop()
    elif point == "journalled":
        claim_split._roll_forward = lambda *a: stop()
    else:  # head rewritten, rest not yet back in the queue
        def rename(src, dst):
            if os.path.basename(src).startswith(claim_split.REST_PREFIX):
                stop()
            return real_rename(src, dst)
        claim_split.os.rename = rename
    claims.claim({home!r}, max_examples=25)
    """
)


@pytest.mark.parametrize("point", ["rest_written", "journalled", "head_rewritten"])
def test_sigkill_mid_split_loses_and_duplicates_nothing(home, tmp_path, point):
    written = _fill(home)
    everything = Counter(_key(r) for records in written.values() for r in records)
    marker = tmp_path / "marker"
    script = _KILLED_CLAIMER.format(repo=str(REPO), marker=str(marker), point=point, home=str(home.root))
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.time() < deadline, f"claimer never reached {point}"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    (stale,) = queue_claims.stale_claims(home)
    in_claim = [r for f in stale.dir.glob("*.jsonl") if ".tmp" not in f.name for r in read_jsonl(f)]
    on_disk = Counter(map(_key, in_claim + _queued_records(home)))
    assert all(on_disk[key] >= 1 for key in everything)  # mid-split: maybe twice over, never lost
    queue_claims.release(stale)
    assert queue_claims.list_claims(home) == []
    assert Counter(map(_key, _queued_records(home))) == everything  # each example exactly once
    again = queue_claims.claim(home, max_examples=25)
    assert again.examples() == (
        written["high/batch_high_0.jsonl"] + written["high/batch_high_1.jsonl"] + written["normal/batch_normal_0.jsonl"][:5]
    )
