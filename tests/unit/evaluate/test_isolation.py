"""Evaluation isolation with real generators: held-out items never go back to training."""

import json

from tdm_dagster.evaluate.comparison import PROBE_SEED_BASE, evaluate, held_out_sets, probe_sets, record
from tdm_dagster.evaluate.isolation import prompt_key, register_held_out, seen_in_training
from tdm_dagster.generate.generators import problem_of
from tdm_dagster.queue.store import TrainingQueue
from tests.support.reworded import syllo_in_other_clue_order


def _never_right(messages):
    return "I do not know."


def test_probes_share_no_prompt_with_the_held_out_set_even_where_the_problem_space_repeats():
    held_out = held_out_sets({"binary": [1], "syllo": [1]}, 20)
    probes = probe_sets(held_out, 10)
    held = {prompt_key(e) for s in held_out for e in s.examples}
    assert all(prompt_key(e) not in held for s in probes for e in s.examples)
    binary_probes = next(p for p in probes if p.skill == "binary")
    assert len(binary_probes.examples) < 10  # level 1 binary repeats: the check dropped real collisions
    assert all(e["metadata"]["seed"] >= PROBE_SEED_BASE for p in probes for e in p.examples)


def test_corrections_come_from_probes_never_from_the_held_out_set(home):
    held_out = held_out_sets({"binary": [1, 2], "syllo": [1]}, 10)
    result = evaluate("checkpoint-1", held_out, _never_right, probes=probe_sets(held_out, 5))
    assert result.overall_accuracy == 0.0 and result.held_out_failures == 30
    entry = record(home, result)
    rows = [json.loads(line) for line in open(entry["corrections_file"], encoding="utf-8")]
    assert len(rows) == len(result.failed_cases) > 0
    held = {prompt_key(e) for s in held_out for e in s.examples}
    assert not {prompt_key(row) for row in rows} & held
    assert entry["held_out_failures"] == 30


def test_seen_in_training_counts_held_out_items_in_queued_and_trained_data(home):
    held_out = held_out_sets({"binary": [2], "syllo": [1]}, 10)
    assert seen_in_training(home, held_out) == 0
    queue = TrainingQueue(home)
    queue.enqueue("ordinary", [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}], "normal")
    queue.enqueue("leaky", held_out[1].examples[:3], "high")
    trained = home.trained_archive_dir / "checkpoint-1"
    trained.mkdir(parents=True)
    (trained / "old.jsonl").write_text(json.dumps(held_out[0].examples[0]) + "\nnot json\n", encoding="utf-8")
    assert seen_in_training(home, held_out) == 4


def test_registered_held_out_sets_are_files_the_deep_gate_reads(home):
    held_out = held_out_sets({"syllo": [1]}, 4)
    [path] = register_held_out(home, held_out)
    assert path.parent == home.eval_sets_dir
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [row["messages"] for row in rows] == [e["messages"] for e in held_out[0].examples]


def test_every_level_refuses_a_held_out_prompt_once_registered(home):
    """Before queuing, at quick and standard too: the check is a set lookup."""
    from tdm_dagster.config.settings import load_config
    from tdm_dagster.gate.run import GateInput, run_gate
    from tdm_dagster.generate.generators import get_generator

    held_out = held_out_sets({"binary": [2]}, 10)
    records = get_generator("binary").generate(2, 30, 11) + [held_out[0].examples[6]]  # 30 of 31 valid: the batch passes
    gate_input = GateInput.from_records(records, "chat_sft_v1", "batch")
    assert not run_gate(gate_input, load_config(home), level="quick", queued_in=home).rejected  # nothing registered yet
    register_held_out(home, held_out)
    for level in ("quick", "standard"):
        outcome = run_gate(gate_input, load_config(home), level=level, queued_in=home)
        assert list(outcome.rejected) == [30], level
        [issue] = [i for i in outcome.rejected[30] if i.code == "leakage.eval_prompt"]
        assert "heldout_binary_level2.jsonl:6" in issue.message and issue.suggestion


def test_builtin_batches_draw_around_registered_held_out_prompts(home):
    """Binary level 1 repeats held-out items (up to 16 in 100): drawn around them, the
    batch is whole and the gate approves it; drawn blindly, the gate would cut it."""
    import pytest

    from tdm_dagster.config.settings import load_config
    from tdm_dagster.gate.run import GateInput, run_gate
    from tdm_dagster.generate.planning import GenerationError, produce_records
    from tdm_dagster.evaluate.isolation import held_out_filter
    from tdm_dagster.records.batches import BatchPlan

    plan = BatchPlan("b", "binary", 1, 100, 4, "builtin", "normal", "chat_sft_v1", "2026-12-03T00:00:00")
    assert held_out_filter(home, 1 << 20) is None
    register_held_out(home, held_out_sets({"binary": [1]}, 20))
    avoid = held_out_filter(home, 1 << 20)
    blind = produce_records(plan)
    assert sum(map(avoid, blind)) > 0  # the problem space does repeat them
    drawn = produce_records(plan, avoid=avoid)
    assert len(drawn) == 100 and not any(map(avoid, drawn))
    outcome = run_gate(GateInput.from_records(drawn, "chat_sft_v1", "b"), load_config(home), level="standard", queued_in=home)
    assert len(outcome.approved_indices) == 100
    with pytest.raises(GenerationError, match="not held-out evaluation items, fewer than the 100 asked for"):
        produce_records(plan, avoid=lambda example: True)


def test_a_damaged_registered_set_is_read_as_the_gate_reads_it(home):
    """A line broken by hand costs that line only: the other held-out prompts are still
    drawn around, and nothing raises."""
    from tdm_dagster.evaluate.isolation import held_out_filter

    held_out = held_out_sets({"binary": [2]}, 5)
    [path] = register_held_out(home, held_out)
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"messages": [oops\n')
    avoid = held_out_filter(home, 1 << 20)
    assert all(avoid(example) for example in held_out[0].examples)


def test_registered_items_carry_metadata_and_problem_keys_the_gate_reads(home):
    from tdm_dagster.gate.deep import load_eval_sets

    held_out = held_out_sets({"syllo": [2], "binary": [3]}, 6)
    paths = register_held_out(home, held_out)
    for path, held in zip(paths, held_out):
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        assert [(r["metadata"]["skill"], r["metadata"]["level"]) for r in rows] == [(held.skill, held.level)] * 6
        assert [(held.skill, r["metadata"]["problem_key"]) for r in rows] == [problem_of(e) for e in held.examples]
    items = [item for eval_set in load_eval_sets([str(p) for p in paths], 1 << 20) for item in eval_set.items]
    assert [item.problem for item in items] == [problem_of(e) for held in held_out for e in held.examples]
    assert all(item.problem is not None for item in items)


def test_a_held_out_problem_in_other_words_is_drawn_around_and_counted_as_seen(home):
    from tdm_dagster.evaluate.isolation import held_out_filter

    held_out = held_out_sets({"syllo": [1]}, 10)
    other_order = syllo_in_other_clue_order(held_out[0].examples[4])
    register_held_out(home, held_out)
    avoid = held_out_filter(home, 1 << 20)
    assert avoid(other_order) and avoid(held_out[0].examples[0])
    assert not any(map(avoid, probe_sets(held_out, 40)[0].examples))  # other puzzles are not avoided
    TrainingQueue(home).enqueue("reworded", [other_order], "normal")
    assert seen_in_training(home, held_out) == 1  # its prompt was never queued, its problem was


def test_a_set_registered_with_messages_only_still_loads_and_is_matched_by_prompt(home):
    from tdm_dagster.evaluate.isolation import held_out_filter

    held_out = held_out_sets({"syllo": [1]}, 10)
    home.eval_sets_dir.mkdir()
    old = home.eval_sets_dir / "heldout_syllo_level1.jsonl"
    old.write_text("".join(json.dumps({"messages": e["messages"]}) + "\n" for e in held_out[0].examples), encoding="utf-8")
    avoid = held_out_filter(home, 1 << 20)
    assert all(map(avoid, held_out[0].examples))
    assert not avoid(syllo_in_other_clue_order(held_out[0].examples[4]))  # no key in the file: by prompt, as before
