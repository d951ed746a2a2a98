"""`tdm datasets derive` and `diff` tell the truth on real data: --where compares by type,
a derive that would leave nothing is refused, and an edited record is one "changed"."""

import json

from tests.support.fixture_data import GSM8K, SEED_TASKS
from tests.unit.cli.test_cli_datasets import data, tdm


def _seed_tasks() -> list[dict]:
    return [json.loads(line) for line in SEED_TASKS.read_text().splitlines()]


def test_where_compares_by_type(home):
    tasks = _seed_tasks()
    data("import", "s", str(SEED_TASKS), "--no-gate")
    not_classification = sum(1 for task in tasks if task["is_classification"] is False)
    assert 0 < not_classification < len(tasks)
    kept = data("derive", "s", "--from", "1.0", "--where", "is_classification=false")
    assert kept["record_count"] == not_classification
    kept = data("derive", "s", "--from", "1.0", "--where", "is_classification=true")
    assert kept["record_count"] == len(tasks) - not_classification
    name = tasks[3]["name"]
    assert data("derive", "s", "--from", "1.0", "--where", f"name={name}", "--where", "is_classification=" + json.dumps(tasks[3]["is_classification"]))["record_count"] == 1
    # a boolean is never the number 1, and a text field still matches its text
    refused = tdm("derive", "s", "--from", "1.0", "--where", "is_classification=1", ok=False)
    assert refused.exit_code == 1 and "leaves no record" in refused.output


def test_a_derive_that_removes_everything_is_refused_unless_allowed(home):
    data("import", "s", str(SEED_TASKS), "--no-gate")
    refused = tdm("derive", "s", "--where", "name=no_such_task", ok=False)
    assert refused.exit_code == 1
    assert "s 1.0: the derive leaves no record (field_filter removed" in refused.output and "--allow-empty" in refused.output
    assert "Traceback" not in refused.output
    assert [v["version"] for v in data("versions", "s")] == ["1.0"]
    assert data("show", "s")["current"]["version"] == "1.0"
    empty = data("derive", "s", "--where", "name=no_such_task", "--allow-empty")
    assert (empty["version"], empty["record_count"]) == ("1.1", 0)


def test_diff_after_clean_counts_each_edited_record_once(home):
    data("import", "g", str(GSM8K), "--no-gate")
    cleaned = data("derive", "g", "--clean")
    edited = cleaned["operation"]["steps"][0]["changed"]
    assert edited > 100  # GSM8K's prompts and answers carry spacing that --clean rewrites
    summary = data("diff", "g", "1.0", "1.1")
    assert (summary["added"], summary["removed"], summary["changed"]) == (0, 0, edited)
    assert summary["unchanged"] == cleaned["record_count"] - edited
