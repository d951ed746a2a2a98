"""The deep level end to end: leakage against evaluation sets and duplicates of queued data."""

import json
import random

import dagster as dg
import pytest
from click.testing import CliRunner

from tdm_dagster.cli import main
from tdm_dagster.ingest.inbox_claims import claim
from tdm_dagster.jobs import BATCH_PIPELINE, run_batch_pipeline
from tests.support.fixture_data import GSM8K


def edit(record, rng):
    words = record["instruction"].split()
    for _ in range(2):
        words[rng.randrange(len(words))] = "several"
    return {**record, "instruction": " ".join(words)}


@pytest.fixture(scope="module")
def gsm8k():
    return json.loads(GSM8K.read_text(encoding="utf-8"))


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_held_out_slice_put_back_is_flagged_with_pairs(home, tmp_path, gsm8k):
    rng = random.Random(7)
    held_out, train = gsm8k[:150], gsm8k[150:900]
    verbatim, edited = held_out[:8], [edit(r, rng) for r in held_out[8:16]]
    mixed = train + verbatim + edited
    write_jsonl(tmp_path / "train.jsonl", mixed)
    (tmp_path / "eval.json").write_text(json.dumps(held_out), encoding="utf-8")
    result = CliRunner().invoke(
        main, ["validate", str(tmp_path / "train.jsonl"), "--level", "deep", "--against", str(tmp_path / "eval.json"), "--json"]
    )
    data = json.loads(result.stdout)
    leaks = {issue["line"]: issue["message"] for issue in data["issues"] if issue["code"].startswith("leakage.")}
    expected_lines = set(range(len(train) + 1, len(mixed) + 1))
    assert set(leaks) == expected_lines  # all 16 put-back items, and nothing else
    for offset, line in enumerate(sorted(expected_lines)):
        assert f"eval.json:{offset}:" in leaks[line] or f"eval.json:{offset} " in leaks[line]  # names the eval item
    assert data["totals"]["rejected"] >= 16


def test_duplicates_within_file_and_of_queued_data(home, gsm8k):
    home.config_path.write_text("gate:\n  level: deep\n  min_validity: 0.5\n  min_overall: 0.5\n")
    first = gsm8k[1000:1060]
    home.inbox_dir.mkdir(exist_ok=True)
    from tdm_dagster.definitions import defs

    job = defs.resolve_job_def(BATCH_PIPELINE)
    with dg.instance_for_test() as instance:
        claimed = claim(home, write_jsonl(home.inbox_dir / "first.jsonl", first), "normal")
        assert run_batch_pipeline(job, instance, claimed.batch_id, run_config={}, tags={}).success

        near = dict(first[5], output=first[5]["output"].replace("$", "USD ", 1))
        second = gsm8k[1100:1150] + [first[3], first[3]] + [near]
        claimed2 = claim(home, write_jsonl(home.inbox_dir / "second.jsonl", second), "normal")
        result = run_batch_pipeline(job, instance, claimed2.batch_id, run_config={}, tags={})
        assert result.success
        evaluations = {
            e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data
            for e in result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION"
        }
    assert evaluations["duplicates"].passed is False
    assert evaluations["duplicates"].severity == dg.AssetCheckSeverity.WARN
    rows = [json.loads(l) for l in (home.rejected_dir / f"{claimed2.batch_id}.jsonl").read_text().splitlines()]
    reasons = {row["source"]["line"]: [r["message"] for r in row["reasons"]] for row in rows}
    assert any(f"duplicate of queued {claimed.batch_id}:4" in m for m in reasons[51])
    assert any("exact duplicate of second.jsonl:51" in m for m in reasons[52])
    scores = [json.loads(l) for l in (home.batch_dir(claimed2.batch_id) / "scores.jsonl").read_text().splitlines()]
    near_score = next(s for s in scores if s["line"] == 53)
    assert "dedup.near_duplicate_of_queued" in near_score["warnings"]


def test_a_held_out_item_put_into_the_inbox_is_refused_at_deep(home):
    """The evaluation registers its held-out sets; a batch carrying their items, word for
    word or with a short prompt the n-gram check cannot see, loses exactly those records."""
    from tdm_dagster.definitions import defs
    from tdm_dagster.evaluate.comparison import held_out_sets
    from tdm_dagster.evaluate.isolation import register_held_out
    from tdm_dagster.generate.generators import get_generator

    home.config_path.write_text("gate:\n  level: deep\n  min_validity: 0.5\n  min_overall: 0.5\n")
    held_out = held_out_sets({"syllo": [1], "binary": [2]}, 10)
    register_held_out(home, held_out)
    training = get_generator("syllo").generate(1, 20, 7) + get_generator("binary").generate(2, 20, 7)
    leaked = [held_out[0].examples[2], held_out[1].examples[4]]
    home.inbox_dir.mkdir(exist_ok=True)
    with dg.instance_for_test() as instance:
        claimed = claim(home, write_jsonl(home.inbox_dir / "mixed.jsonl", training + leaked), "normal")
        assert run_batch_pipeline(defs.resolve_job_def(BATCH_PIPELINE), instance, claimed.batch_id, run_config={}, tags={}).success
    rows = [json.loads(l) for l in (home.rejected_dir / f"{claimed.batch_id}.jsonl").read_text().splitlines()]
    codes = {row["source"]["line"]: {r["code"] for r in row["reasons"]} for row in rows}
    assert {line for line, found in codes.items() if "leakage.eval_prompt" in found} == {41, 42}
    assert any("heldout_binary_level2.jsonl:4" in r["message"] for row in rows for r in row["reasons"])


def test_generated_puzzles_are_judged_by_problem_against_the_registered_sets(home):
    """200 SYLLO puzzles share clue text with the 100 registered held-out ones by chance
    but none is one of their problems: all are queued. A held-out puzzle with its clues in
    another order is refused as an eval problem, a verbatim one as an eval prompt."""
    from tdm_dagster.definitions import defs
    from tdm_dagster.evaluate.comparison import held_out_sets
    from tdm_dagster.evaluate.isolation import register_held_out
    from tdm_dagster.generate.generators import get_generator
    from tests.support.reworded import syllo_in_other_clue_order

    home.config_path.write_text("gate:\n  level: deep\n")
    held_out = held_out_sets({"syllo": [1]}, 100)
    register_held_out(home, held_out)
    training = get_generator("syllo").generate(1, 200, 20261203)
    leaked = [syllo_in_other_clue_order(held_out[0].examples[9]), held_out[0].examples[12]]
    home.inbox_dir.mkdir(exist_ok=True)
    with dg.instance_for_test() as instance:
        claimed = claim(home, write_jsonl(home.inbox_dir / "puzzles.jsonl", training + leaked), "normal")
        result = run_batch_pipeline(defs.resolve_job_def(BATCH_PIPELINE), instance, claimed.batch_id, run_config={}, tags={})
        assert result.success
        leakage = next(
            e.asset_check_evaluation_data for e in result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION" and e.asset_check_evaluation_data.check_name == "leakage"
        )  # fmt: skip
    assert leakage.passed is False
    rows = [json.loads(l) for l in (home.rejected_dir / f"{claimed.batch_id}.jsonl").read_text().splitlines()]
    codes = {row["source"]["line"]: sorted(r["code"] for r in row["reasons"] if r["code"].startswith("leakage.")) for row in rows}
    assert codes == {201: ["leakage.eval_problem"], 202: ["leakage.eval_prompt"]}
    assert any("heldout_syllo_level1.jsonl:9" in r["message"] for row in rows for r in row["reasons"])
    queued = [line for path in home.queue_root.rglob("*.jsonl") for line in path.read_text().splitlines()]
    assert len(queued) == 200
