"""The queue's quality re-check: files that no longer pass are trimmed or held, never lost."""

import json

import pytest

from tdm_dagster.config.settings import load_config
from tdm_dagster.generate.generators import get_generator
from tdm_dagster.queue.recheck import (
    held_files,
    recheck_queue,
    release,
)
from tdm_dagster.queue.claims import claim
from tdm_dagster.queue.store import TrainingQueue


def queue(home, batch_id, records, priority="normal"):
    return TrainingQueue(home).enqueue(batch_id, records, priority)[0]


@pytest.fixture
def binary():
    return get_generator("binary").generate(level=3, count=60, seed=1)


def test_a_clean_queue_is_left_as_it_is(home, binary):
    path = queue(home, "b1", binary)
    before = path.read_bytes(), path.stat().st_mtime
    result = recheck_queue(home, load_config(home))
    assert [(f.batch_id, f.verdict, f.records) for f in result.files] == [("b1", "passed", 60)]
    assert result.clean
    assert (path.read_bytes(), path.stat().st_mtime) == before
    assert json.loads(home.state_file("recheck").read_text())["totals"]["passed"] == 1


def test_a_file_that_fails_under_todays_settings_is_held_then_released(home, binary):
    queue(home, "b1", binary, "high")
    home.config_path.write_text("quality:\n  max_tokens: 20\n")  # tightened since the batch was queued
    result = recheck_queue(home, load_config(home))
    [verdict] = result.files
    assert verdict.verdict == "held" and "length" in verdict.reasons[0]
    assert TrainingQueue(home).files() == []
    [held] = held_files(home)
    assert held["batch_id"] == "b1" and held["priority"] == "high" and held["reasons"] == verdict.reasons
    assert len(open(held["path"]).readlines()) == 60  # every record kept
    assert not result.clean and result.held_records == 60

    restored = release(home, "b1")
    assert restored == home.queue_dir("high") / "b1.jsonl" and held_files(home) == []
    with pytest.raises(FileNotFoundError, match="no held batch named 'b1'"):
        release(home, "b1")


def test_records_that_no_longer_pass_are_trimmed_and_kept_with_their_reasons(home, binary):
    path = queue(home, "b1", binary)
    lines = path.read_text().splitlines()
    lines[4] = "{not json"
    lines[9] = json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}]})
    path.write_text("\n".join(lines) + "\n")
    mtime = path.stat().st_mtime
    result = recheck_queue(home, load_config(home))
    [verdict] = result.files
    assert (verdict.verdict, verdict.removed, verdict.records) == ("trimmed", 2, 60)
    kept = path.read_text().splitlines()
    assert len(kept) == 58 and "{not json" not in kept and path.stat().st_mtime == mtime
    rejected = [json.loads(line) for line in (home.rejected_dir / "b1.recheck.jsonl").read_text().splitlines()]
    assert [row["line"] for row in rejected] == [5, 10]
    assert all(row["reasons"] and row["batch_id"] == "b1" for row in rejected)
    unreadable = rejected[0]
    assert unreadable["source"] == {"file": str(path), "line": 5, "raw": "{not json"}  # the bytes as they were
    [read_issue] = [r for r in unreadable["reasons"] if r["suite"] == "read"]
    assert read_issue["code"] == "read.invalid_json" and "b1.jsonl line 5" in read_issue["message"]
    assert len(kept) + len(rejected) == 60


def test_deep_level_removes_records_leaked_into_a_new_evaluation_set(home, binary, tmp_path):
    queue(home, "b1", binary)
    leaked = binary[7]["messages"]
    eval_set = tmp_path / "eval.jsonl"
    eval_set.write_text(json.dumps({"messages": leaked}) + "\n")
    home.config_path.write_text(f"gate:\n  level: deep\n  eval_sets: [{eval_set}]\n")
    [verdict] = recheck_queue(home, load_config(home)).files
    assert verdict.verdict == "trimmed" and verdict.removed == 1
    [row] = [json.loads(line) for line in (home.rejected_dir / "b1.recheck.jsonl").read_text().splitlines()]
    assert row["line"] == 8 and any(reason["suite"] == "leakage" for reason in row["reasons"])


def test_dry_run_changes_nothing(home, binary):
    path = queue(home, "b1", binary)
    home.config_path.write_text("quality:\n  max_tokens: 20\n")
    result = recheck_queue(home, load_config(home), apply=False)
    assert result.files[0].verdict == "held" and result.dry_run
    assert path.exists() and held_files(home) == [] and not home.state_file("recheck").exists()


def test_an_interrupted_recheck_is_put_back_first(home, binary):
    path = queue(home, "b1", binary)
    home.rechecking_dir("normal").mkdir(parents=True)
    path.rename(home.rechecking_dir("normal") / path.name)  # as a re-check killed mid-way leaves it
    assert TrainingQueue(home).files() == []
    result = recheck_queue(home, load_config(home))
    assert [f.verdict for f in result.files] == ["passed"] and path.exists()


def test_a_file_a_trainer_claims_meanwhile_is_skipped_not_lost(home, binary):
    queue(home, "a", binary[:30])
    queue(home, "b", binary[30:])

    claims = []

    def a_trainer_claims_the_queue(verdict):
        if verdict.batch_id == "a":
            claims.append(claim(home, max_files=2))

    result = recheck_queue(home, load_config(home), progress=a_trainer_claims_the_queue)
    assert [(f.batch_id, f.verdict) for f in result.files] == [("a", "passed"), ("b", "skipped")]
    assert TrainingQueue(home).files() == []
    assert sorted(claims[0].source_names) == ["normal/a.jsonl", "normal/b.jsonl"]


def test_the_cli_reports_lists_and_releases(home, binary):
    from click.testing import CliRunner

    from tdm_dagster.cli import main

    queue(home, "b1", binary)
    home.config_path.write_text("quality:\n  max_tokens: 20\n")
    runner = CliRunner()
    dry = runner.invoke(main, ["recheck", "--dry-run"])
    assert dry.exit_code == 0 and "dry run: would have 0 passed, 0 trimmed (0 records), 1 held" in dry.output
    assert held_files(home) == []
    done = runner.invoke(main, ["recheck", "--json"])
    assert json.loads(done.output)["totals"]["held"] == 1
    listed = runner.invoke(main, ["recheck", "held"])
    assert "normal/b1" in listed.output and "length" in listed.output
    assert "released b1" in runner.invoke(main, ["recheck", "release", "b1"]).output
    missing = runner.invoke(main, ["recheck", "release", "b1"])
    assert missing.exit_code == 1 and "no held batch named 'b1' (held: none)" in missing.output


def test_an_empty_or_unreadable_file_is_held_with_the_reason(home, binary):
    queue(home, "b1", binary)
    (home.queue_dir("low") / "empty.jsonl").write_bytes(b"")
    result = recheck_queue(home, load_config(home))
    assert {f.batch_id: f.verdict for f in result.files} == {"b1": "passed", "empty": "held"}
    [held] = held_files(home)
    assert held["batch_id"] == "empty" and "file is empty (0 bytes)" in held["reasons"][0]
