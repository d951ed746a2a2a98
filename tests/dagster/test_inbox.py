"""The inbox: atomic claims, the sensor, ingestion through Dagster, and `tdm validate`."""

import hashlib
import json
import os
import threading
import time

import dagster as dg
import pytest
from click.testing import CliRunner

from tdm_dagster.cli import main
from tdm_dagster.ingest.inbox import scan_inbox
from tdm_dagster.ingest.inbox_claims import claim, try_lock_batch, unprocessed_claims
from tdm_dagster.jobs import BATCH_PIPELINE, INGEST_INBOX, run_batch_pipeline
from tdm_dagster.resources import TdmHomeResource
from tdm_dagster.sensors import inbox_sensor
from tests.support.fixture_data import SEED_TASKS


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def drop(home, name, data: bytes, age_sec=60):
    folder = home.inbox_dir
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    old = path.stat().st_mtime - age_sec
    os.utime(path, (old, old))
    return path


TDM = {"tdm": TdmHomeResource()}
"""The sensors' ``tdm`` resource, as the Definitions configure it ($TDM_HOME)."""
GOOD_LINES = b"".join(
    json.dumps({"instruction": f"Write the number {n} in words.", "input": "", "output": f"The number {n} is written as {n}-word form, spelled out fully."}).encode() + b"\n"
    for n in range(30)
)


def test_files_settle_by_observation_not_by_mtime(home):
    """A file is ready once size and mtime stayed the same for settle_sec across scans;
    an old mtime alone (a skewed clock, a preserved timestamp) is not enough."""
    drop(home, "ready.jsonl", GOOD_LINES)
    growing = drop(home, "growing.jsonl", GOOD_LINES)
    drop(home, ".hidden.jsonl", GOOD_LINES)
    drop(home, "upload.jsonl.part", GOOD_LINES)
    t0 = time.time() + 100
    first = scan_inbox(home, settle_sec=5, now=t0)
    assert (first.ready, sorted(s.path.name for s in first.settling)) == ([], ["growing.jsonl", "ready.jsonl"])
    with open(growing, "ab") as handle:  # the writer appends, keeping an old mtime
        handle.write(GOOD_LINES[:50])
    os.utime(growing, (1_000_000_000, 1_000_000_000))
    later = scan_inbox(home, settle_sec=5, now=t0 + 5)
    assert [r.path.name for r in later.ready] == ["ready.jsonl"]
    assert [s.path.name for s in later.settling] == ["growing.jsonl"]
    assert [r.path.name for r in scan_inbox(home, settle_sec=5, now=t0 + 10).ready] == ["growing.jsonl", "ready.jsonl"]  # oldest mtime first
    assert [r.path.name for r in scan_inbox(home, settle_sec=0).ready] == ["growing.jsonl", "ready.jsonl"]


def settled(home, *names, settle_sec=0):
    return [ready for ready in scan_inbox(home, settle_sec=settle_sec).ready if not names or ready.path.name in names]


def test_racing_claims_take_each_file_once(home):
    paths = [drop(home, f"f{n}.jsonl", GOOD_LINES) for n in range(20)]
    won = []

    def grab():
        for path in paths:
            result = claim(home, path, "normal")
            if result:
                won.append(result)

    threads = [threading.Thread(target=grab) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(w.original_name for w in won) == sorted(p.name for p in paths)
    for claimed in won:  # each claimer owns its batch until it lets go
        assert try_lock_batch(home, claimed.batch_id) is None
        claimed.release()
        assert try_lock_batch(home, claimed.batch_id) is not None
    assert list(home.inbox_dir.iterdir()) == []


def run_requested(instance, request):
    from tdm_dagster.definitions import defs

    assert request.job_name in (None, INGEST_INBOX)
    result = defs.resolve_job_def(INGEST_INBOX).execute_in_process(run_config=request.run_config, instance=instance, tags=request.tags)
    return result.output_for_node("ingest_inbox_files")


def test_sensor_waits_for_settling_then_starts_one_ingest_run(home, instance):
    home.config_path.write_text("inbox:\n  settle_sec: 1\n")
    drop(home, "data set #1 (ünïcode).jsonl", GOOD_LINES)
    first = inbox_sensor(dg.build_sensor_context(instance=instance, resources=TDM))
    assert isinstance(first, dg.SkipReason) and "1 file(s) still being written" in first.skip_message
    time.sleep(1.1)
    request = inbox_sensor(dg.build_sensor_context(instance=instance, resources=TDM))
    assert request.run_config["ops"]["ingest_inbox_files"]["config"] == {"wait_for_settling": False}
    [outcome] = run_requested(instance, request)
    assert outcome["queued"] and outcome["batch_id"].startswith("inbox_data-set-1-n-code_")
    archived = next(home.archive_dir.glob("*/*.jsonl"))
    assert archived.read_bytes() == GOOD_LINES  # the original, untouched
    assert isinstance(inbox_sensor(dg.build_sensor_context(instance=instance, resources=TDM)), dg.SkipReason)


def test_sensor_survives_odd_entries_and_bad_config(home, instance):
    home.config_path.write_text("inbox:\n  settle_sec: 0\n")
    (home.inbox_dir / "a-folder").mkdir(parents=True)
    (home.inbox_dir / "loop.jsonl").symlink_to("loop.jsonl")
    request = inbox_sensor(dg.build_sensor_context(instance=instance, resources=TDM))
    outcomes = run_requested(instance, request)
    assert sorted((o["file"], o["state"]) for o in outcomes) == [("a-folder", "failed"), ("loop.jsonl", "failed")]
    assert isinstance(inbox_sensor(dg.build_sensor_context(instance=instance, resources=TDM)), dg.SkipReason)  # reported once
    home.config_path.write_text("gate:\n  level: extreme\n")
    drop(home, "x.jsonl", GOOD_LINES)
    skipped = inbox_sensor(dg.build_sensor_context(instance=instance, resources=TDM))
    assert isinstance(skipped, dg.SkipReason) and "gate.level" in skipped.skip_message


def ingest_one(home, instance, name, data):
    drop(home, name, data)
    [ready] = settled(home, name)
    claimed = claim(home, ready.path, "normal", ready.signature)
    from tdm_dagster.definitions import defs

    result = run_batch_pipeline(defs.resolve_job_def(BATCH_PIPELINE), instance, claimed.batch_id, run_config={}, tags={})
    report = json.loads((home.reports_dir / f"{claimed.batch_id}.json").read_text())
    return claimed, result, report


def test_good_file_is_queued_as_chats(home, instance):
    claimed, result, report = ingest_one(home, instance, "good.jsonl", GOOD_LINES)
    assert result.success
    assert report["records"] == {**report["records"], "generated": 30, "approved": 30, "rejected": 0}
    queued = [json.loads(line) for line in (home.queue_dir("normal") / f"{claimed.batch_id}.jsonl").read_text().splitlines()]
    assert queued[0]["messages"][0]["role"] == "user" and queued[0]["metadata"]["spec"] == "instruction_v1"
    assert unprocessed_claims(home) == []


def test_bad_records_are_kept_byte_for_byte_with_reasons(home, instance):
    bad = b'{"prompt": "unterminated\n\xff\xfe not utf-8\n[1, 2]\n{"question": "?", "answer": "!"}\n'
    claimed, result, report = ingest_one(home, instance, "mixed.jsonl", GOOD_LINES + bad)
    rows = [json.loads(line) for line in (home.rejected_dir / f"{claimed.batch_id}.jsonl").read_text().splitlines()]
    by_line = {row["source"]["line"]: row for row in rows}
    codes = {line: [r["code"] for r in row["reasons"]] for line, row in by_line.items()}
    assert codes[31][0] == "read.invalid_json"
    assert codes[32][0] == "read.invalid_utf8"
    assert codes[33][0] == "read.not_an_object"
    assert codes[34][0].startswith("shape.")
    import base64

    assert base64.b64decode(by_line[32]["source"]["raw_base64"]) == b"\xff\xfe not utf-8"
    assert by_line[31]["source"]["raw"] == '{"prompt": "unterminated'
    assert report["records"]["generated"] == 34 == report["records"]["approved"] + report["records"]["rejected"]
    archived = next(home.archive_dir.glob(f"{claimed.batch_id}/*"))
    assert hashlib.sha256(archived.read_bytes()).digest() == hashlib.sha256(GOOD_LINES + bad).digest()


def test_empty_file_is_rejected_clearly(home, instance):
    claimed, result, report = ingest_one(home, instance, "empty.jsonl", b"")
    assert not result.success
    row = json.loads((home.rejected_dir / f"{claimed.batch_id}.jsonl").read_text().splitlines()[0])
    assert row["reasons"][0]["code"] == "read.empty_file"


def run_validate(*args):
    return CliRunner().invoke(main, ["validate", *args])


def test_validate_json_totals_and_issues(home, tmp_path):
    path = tmp_path / "file.jsonl"
    path.write_bytes(GOOD_LINES + b"not json\n")
    result = run_validate(str(path), "--json", "--level", "quick")
    data = json.loads(result.stdout)
    assert data["totals"]["records"] == 31
    assert data["totals"]["accepted"] + data["totals"]["rejected"] == 31
    [issue] = data["issues"]
    assert (issue["line"], issue["severity"], issue["code"]) == (31, "ERROR", "read.invalid_json")
    assert issue["message"]
    assert result.exit_code == 0  # 30/31 valid: validity 0.968 passes


def test_validate_exit_codes(home, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"[1]\n[2]\n")
    assert run_validate(str(bad)).exit_code == 1
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert run_validate(str(empty), "--json").exit_code == 2
    assert run_validate(str(tmp_path / "missing.jsonl")).exit_code != 0
    wrong = run_validate(str(bad), "--spec", "chat_v9")
    assert wrong.exit_code == 2 and "unknown schema spec" in wrong.output


def test_validate_spec_mismatch(home, tmp_path):
    path = tmp_path / "alpaca.jsonl"
    path.write_bytes(GOOD_LINES)
    data = json.loads(run_validate(str(path), "--spec", "chat_sft_v1", "--json").stdout)
    assert data["totals"]["accepted"] == 0
    assert data["issues"][0]["code"] == "schema.spec_mismatch"


def test_validate_real_seed_tasks_one_example_per_instance(home):
    raw = [json.loads(line) for line in SEED_TASKS.read_text().splitlines() if line.strip()]
    instances = sum(len(task["instances"]) for task in raw)
    data = json.loads(run_validate(str(SEED_TASKS), "--json").stdout)
    assert data["totals"]["input_records"] == len(raw) == 175
    assert data["totals"]["records"] == instances


def test_large_file_is_processed_in_bounded_parts(home, instance):
    """A file longer than gate.max_batch_records becomes consecutive batches; every
    record is accounted for once, with its line in the original file."""
    home.config_path.write_text(
        "inbox:\n  settle_sec: 0\ngate:\n  max_batch_records: 12\n  min_completeness: 0.5\n  min_consistency: 0.5\n  min_validity: 0.5\n  min_overall: 0.5\n"
    )
    drop(home, "big.jsonl", GOOD_LINES + b"oops\n")  # 31 records: parts of 12, 12, 7
    result = CliRunner().invoke(main, ["ingest", "--json"], catch_exceptions=False)
    outcomes = json.loads(result.stdout)
    assert [o["batch_id"].rsplit("_part", 1)[-1] if "_part" in o["batch_id"] else "1" for o in outcomes] == ["1", "0002", "0003"]
    reports = [json.loads((home.reports_dir / f"{o['batch_id']}.json").read_text()) for o in outcomes]
    assert [r["records"]["generated"] for r in reports] == [12, 12, 7]
    rejected = [json.loads(l) for o in outcomes if (home.rejected_dir / f"{o['batch_id']}.jsonl").exists()
                for l in (home.rejected_dir / f"{o['batch_id']}.jsonl").read_text().splitlines()]  # fmt: skip
    assert [row["source"]["line"] for row in rejected] == [31]
    queued = sum(len((home.queue_dir("normal") / f"{o['batch_id']}.jsonl").read_text().splitlines()) for o in outcomes if o["queued"])
    assert queued + len(rejected) == 31
    assert unprocessed_claims(home) == []


def test_sensor_runs_the_next_part_and_an_orphaned_claim(home, instance):
    home.config_path.write_text("inbox:\n  settle_sec: 0\ngate:\n  max_batch_records: 20\n")
    drop(home, "big.jsonl", GOOD_LINES)
    first, second = run_requested(instance, inbox_sensor(dg.build_sensor_context(instance=instance, resources=TDM)))
    assert second["batch_id"] == f"{first['batch_id']}_part0002" and first["queued"] and second["queued"]
    # A claim whose process died (its lock is free, no report): the sensor starts a run for it.
    drop(home, "orphan.jsonl", GOOD_LINES)
    [ready] = settled(home, "orphan.jsonl")
    orphan = claim(home, ready.path, "normal", ready.signature)
    assert isinstance(inbox_sensor(dg.build_sensor_context(instance=instance, resources=TDM)), dg.SkipReason)  # owned by a live claimer
    orphan.release()
    recovered = run_requested(instance, inbox_sensor(dg.build_sensor_context(instance=instance, resources=TDM)))
    assert [(o["batch_id"], o["queued"]) for o in recovered] == [(orphan.batch_id, True), (f"{orphan.batch_id}_part0002", True)]
    assert unprocessed_claims(home) == []
