"""The comparison engine with real generators, real curriculum and the real gate."""

import json

from click.testing import CliRunner

from tdm_dagster.cli import main
from tdm_dagster.generate.curriculum import CurriculumState, curriculum_path
from tdm_dagster.evaluate.comparison import (
    HELD_OUT_SEED_BASE,
    evaluate,
    held_out_sets,
    load_history,
    probe_sets,
    rank,
    record,
)


def answering(correct_every: int):
    """A stand-in model that answers every ``correct_every``-th prompt correctly (by
    regenerating the puzzle from the prompt's generator) and the rest wrongly."""
    count = {"n": 0}

    def answer(messages):
        count["n"] += 1
        return answers[messages[-1]["content"]] if count["n"] % correct_every == 0 else "I do not know."

    return answer


answers: dict[str, str] = {}


def with_answers(sets):
    for held_out in sets:
        for example in held_out.examples:
            answers[example["messages"][0]["content"]] = example["messages"][-1]["content"]
    return sets


def sets_with_answers(levels, per_level=10, seed=0):
    return with_answers(held_out_sets(levels, per_level, seed))


def test_accuracy_per_skill_and_level_and_failed_cases():
    sets = sets_with_answers({"binary": [1, 2], "syllo": [1]})
    probes = with_answers(probe_sets(sets, 10))
    result = evaluate("checkpoint-1", sets, answering(2), probes=probes)
    assert set(result.accuracy) == {"binary", "syllo"}
    assert result.overall_accuracy == 0.5
    assert result.held_out_failures == 15
    probe_prompts = {e["messages"][0]["content"] for p in probes for e in p.examples}
    assert 0 < len(result.failed_cases) <= len(probe_prompts) // 2 + 1
    assert all(case["example"]["messages"][0]["content"] in probe_prompts for case in result.failed_cases)
    assert all(case["reply"] == "I do not know." for case in result.failed_cases)
    assert all(e["metadata"]["seed"] >= HELD_OUT_SEED_BASE for s in sets for e in s.examples[:1])


def test_rank_prefers_accuracy_then_loss():
    sets = sets_with_answers({"binary": [1]})
    good = evaluate("checkpoint-2", sets, answering(1), held_out_loss=lambda ex: 2.0)
    bad = evaluate("checkpoint-1", sets, answering(5), held_out_loss=lambda ex: 1.0)
    same_acc_lower_loss = evaluate("checkpoint-3", sets, answering(1), held_out_loss=lambda ex: 1.5)
    assert [r.checkpoint for r in rank([bad, good, same_acc_lower_loss])] == ["checkpoint-3", "checkpoint-2", "checkpoint-1"]


def test_history_trends_curriculum_and_corrections(home):
    sets = sets_with_answers({"syllo": [1]})
    first = record(home, evaluate("checkpoint-1", sets, answering(2), probes=with_answers(probe_sets(sets, 10))))
    assert first["trend"]["overall_pct"] is None and first["corrections_file"]
    entries = [record(home, evaluate(f"checkpoint-{step}", sets, answering(1))) for step in (2, 3, 4)]
    assert entries[1]["trend"]["overall_pct"] == 0.0
    assert [h["checkpoint"] for h in load_history(home)] == ["checkpoint-1", "checkpoint-2", "checkpoint-3", "checkpoint-4"]
    assert load_history(home)[1]["trend"]["overall_pct"] == 100.0
    assert entries[0]["advanced"] == {"syllo": False}  # 2 evaluations: not yet
    assert entries[1]["advanced"] == {"syllo": True}  # mean(0.5, 1, 1) = 0.83 >= 0.8 over the last 3
    assert entries[2]["advanced"] == {}  # level 2 now; this set only holds level 1
    assert CurriculumState.load(curriculum_path(home)).level_of("syllo") == 2

    corrections = home.root / "inbox" / first["corrections_file"].rsplit("/", 1)[-1]
    rows = [json.loads(line) for line in corrections.read_text().splitlines()]
    assert len(rows) == 5 and all(r["metadata"]["source"] == "correction" for r in rows)
    verdict = CliRunner().invoke(main, ["validate", str(corrections), "--json", "--level", "quick"])
    assert json.loads(verdict.stdout)["totals"]["accepted"] == 5  # they pass the gate like any batch
