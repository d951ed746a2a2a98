"""`tdm datasets` on data in its own shape: import through the gate (or not), re-adding
refused, overlapping files adding only what is new, a derive that changes nothing."""

import json

from tdm_dagster.files.atomic import atomic_write_jsonl
from tests.support.fixture_data import GSM8K, ROLEPLAY, SEED_TASKS
from tests.unit.cli.test_cli_datasets import data, tdm


def _rows(path) -> list[dict]:
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def test_gsm8k_in_its_own_shape_dedups_and_splits(home, tmp_path):
    imported = data("import", "g", str(GSM8K))
    total = len(json.loads(GSM8K.read_text()))
    assert imported["gate"]["level"] == "standard" and imported["record_count"] + imported["rejected"] == total
    unchanged = data("derive", "g", "--dedup")
    assert unchanged["version"] is None and unchanged["unchanged"] == "1.0"
    assert [v["version"] for v in data("versions", "g")] == ["1.0"]
    text = tdm("derive", "g", "--dedup").output
    assert "changed nothing" in text and "no new version" in text
    counts = data("split", "g")["counts"]
    n = imported["record_count"]
    assert abs(counts["train"] - 0.8 * n) <= 2 and abs(counts["val"] - 0.1 * n) <= 2 and abs(counts["test"] - 0.1 * n) <= 2


def test_import_gates_each_record_and_keeps_the_rejected_with_reasons(home, tmp_path):
    good = json.loads(ROLEPLAY.read_text())[:120]
    bad = [
        {**good[0], "output": ""},  # an empty reply
        {"text": "no shape we know", "label": 1},  # no shape
        {"prompt": "What is 2+2?", "completion": 4},  # wrong type
    ]
    path = tmp_path / "mixed.jsonl"
    atomic_write_jsonl(path, [*good[:60], *bad, *good[60:]])
    gated = data("import", "r", str(path))
    assert gated["record_count"] == len(good) and gated["rejected"] == len(bad)
    assert gated["gate"]["rejected_records"] == len(bad) and gated["gate"]["approved_records"] == len(good)
    rows = _rows(gated["rejected_file"])
    assert sorted(row["line"] for row in rows) == [61, 62, 63]
    for row in rows:
        assert row["reasons"][0]["severity"] == "ERROR" and row["source"]["raw"]
        assert row["reasons"][0]["message"].startswith(f"{path} line {row['line']}"), row["reasons"][0]["message"]
    assert {row["line"]: row["reasons"][0]["code"] for row in rows}[62] == "shape.unknown_shape"
    ungated = data("import", "r_all", str(path), "--no-gate")
    assert ungated["record_count"] == len(good) + len(bad) and ungated["gate"] is None and ungated["rejected"] == 0


def test_seed_tasks_import_with_and_without_the_gate(home):
    lines = SEED_TASKS.read_text().splitlines()
    tasks, instances = len(lines), sum(len(json.loads(line)["instances"]) for line in lines)
    gated = data("import", "s", str(SEED_TASKS))
    assert gated["record_count"] + gated["rejected"] == tasks and gated["gate"]["examples"] == instances
    assert data("import", "s_all", str(SEED_TASKS), "--no-gate")["record_count"] == tasks


def test_a_file_already_added_is_refused_and_overlap_adds_only_what_is_new(home, tmp_path):
    records = json.loads(GSM8K.read_text())[:110]
    first, overlap = tmp_path / "first.jsonl", tmp_path / "overlap.jsonl"
    atomic_write_jsonl(first, records[:60])
    atomic_write_jsonl(overlap, records[40:100])
    tdm("create", "a")
    assert data("add", "a", str(first))["record_count"] == 60
    again = tdm("add", "a", str(first), ok=False)
    assert again.exit_code == 1 and "first.jsonl" in again.output and "already in a: version 1.0 added it" in again.output
    copy = tmp_path / "renamed.jsonl"
    copy.write_bytes(first.read_bytes())
    assert "version 1.0 added it as first.jsonl" in tdm("add", "a", str(copy), ok=False).output
    grown = data("add", "a", str(overlap))
    assert grown["record_count"] == 100 and grown["operation"]["already_present"] == 20
    more = tmp_path / "more.jsonl"
    atomic_write_jsonl(more, records[90:])
    assert "10 record(s) already in a were left out" in tdm("add", "a", str(more)).output
    reimport = tdm("import", "a", str(overlap), ok=False)
    assert reimport.exit_code == 1 and "already in a" in reimport.output
    assert [v["version"] for v in data("versions", "a")] == ["1.0", "1.1", "1.2"]
    assert data("show", "a")["current"]["record_count"] == 110
