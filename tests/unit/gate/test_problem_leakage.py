"""Generated skills at the deep gate: judged against the registered held-out sets by
problem key, real generators and real gate runs. Template prompts over a small vocabulary
(a SYLLO clue is fixed text for its word) share 12-word runs with other problems by
chance; the same problem in other words shares little."""

from __future__ import annotations

import json

import pytest

from tdm_dagster.config.settings import load_config
from tdm_dagster.evaluate.comparison import held_out_sets
from tdm_dagster.evaluate.isolation import register_held_out
from tdm_dagster.gate.deep import conversation_text, load_eval_sets, prompt_and_answer
from tdm_dagster.gate.leakage import find_answer_leaks, find_ngram_leaks
from tdm_dagster.gate.run import GateInput, run_gate
from tdm_dagster.generate.generators import get_generator, problem_of
from tests.support.reworded import syllo_in_other_clue_order

MAX_BYTES = 1 << 20


@pytest.fixture(scope="module")
def held_out():
    """As the evaluation draws them: 100 held-out puzzles per level."""
    return {level: held_out_sets({"syllo": [level]}, 100) for level in (1, 3)}


def gate(home, records, level="deep", spec="syllo_v1"):
    return run_gate(GateInput.from_records(records, spec, "batch"), load_config(home), level=level, queued_in=home)


def leak_codes(outcome):
    found = {p: sorted(i.code for i in issues if i.code.startswith("leakage.")) for p, issues in outcome.rejected.items()}
    return {p: codes for p, codes in found.items() if codes}


def flagged_by_text(home, records):
    """Batch positions the n-gram and answer checks flag against the registered sets (the
    verdict for every pair before problem keys)."""
    keys = [f"batch:{i + 1}" for i in range(len(records))]
    texts = [conversation_text(r["messages"]) for r in records]
    prompts = [prompt_and_answer(r["messages"])[0] for r in records]
    flagged = set()
    for eval_set in load_eval_sets([str(p) for p in home.registered_eval_sets()], MAX_BYTES):
        leaks = find_ngram_leaks(eval_set, keys, texts) + find_answer_leaks(eval_set, keys, prompts)
        flagged |= {keys.index(leak.train_key) for leak in leaks if leak.train_key in keys}
    return flagged


@pytest.mark.parametrize("level", [1, 3])
def test_builtin_syllo_batches_pass_deep_against_the_registered_held_out_set(home, held_out, level):
    register_held_out(home, held_out[level])
    batch = get_generator("syllo").generate(level, 200, 1000 + level)
    assert not {problem_of(r) for r in batch} & {problem_of(e) for e in held_out[level][0].examples}  # other puzzles
    assert len(flagged_by_text(home, batch)) >= 20  # their wording overlaps by chance (43 and 60 of 200 before keys)
    outcome = gate(home, batch)
    assert leak_codes(outcome) == {}
    assert len(outcome.approved_indices) == 200 and outcome.batch_approved


def test_a_held_out_puzzle_in_another_clue_order_is_rejected_as_an_eval_problem(home, held_out):
    register_held_out(home, held_out[1])
    item = held_out[1][0].examples[7]
    other_order = syllo_in_other_clue_order(item)
    batch = get_generator("syllo").generate(1, 60, 31) + [other_order]
    outcome = gate(home, batch)
    assert leak_codes(outcome) == {60: ["leakage.eval_problem"]}
    assert outcome.batch_approved and len(outcome.approved_indices) == 60
    [issue] = [i for i in outcome.rejected[60] if i.code == "leakage.eval_problem"]
    words = " ".join(sorted(item["metadata"]["answer"]))
    assert "heldout_syllo_level1.jsonl:7" in issue.message and f"'{words}'" in issue.message
    assert issue.severity == "ERROR" and issue.suggestion


@pytest.mark.parametrize("level", ["quick", "standard", "deep"])
def test_an_exact_held_out_item_is_still_rejected_at_every_level(home, held_out, level):
    register_held_out(home, held_out[1])
    batch = get_generator("syllo").generate(1, 60, 32) + [held_out[1][0].examples[3]]
    outcome = gate(home, batch, level=level)
    assert leak_codes(outcome) == {60: ["leakage.eval_prompt"]}  # once: not also as eval_problem
    assert any("heldout_syllo_level1.jsonl:3" in i.message for i in outcome.rejected[60])
    assert outcome.batch_approved and len(outcome.approved_indices) == 60


def test_records_without_a_key_are_still_judged_by_their_text(home, held_out):
    """A user's copy of a held-out puzzle with no metadata, one clue word changed: the
    n-gram check catches it, as before problem keys."""
    register_held_out(home, held_out[1])
    item = held_out[1][0].examples[11]
    prompt = item["messages"][0]["content"].replace("Clues:", "Hints:")
    copied = {"messages": [{"role": "user", "content": prompt}, item["messages"][1]]}
    batch = [{"messages": r["messages"]} for r in get_generator("syllo").generate(1, 60, 33)] + [copied]
    assert problem_of(copied) is None
    outcome = gate(home, batch, spec="chat_sft_v1")
    assert 60 in leak_codes(outcome) and "leakage.ngram" in leak_codes(outcome)[60]
    assert any("heldout_syllo_level1.jsonl:11" in i.message for i in outcome.rejected[60])


def test_a_set_registered_before_problem_keys_is_judged_by_text_as_before(home, held_out):
    """An old registered file (messages only) loads, has no keys, and the gate's leakage
    findings are exactly the text checks' findings."""
    home.eval_sets_dir.mkdir()
    path = home.eval_sets_dir / "heldout_syllo_level1.jsonl"
    path.write_text("".join(json.dumps({"messages": e["messages"]}) + "\n" for e in held_out[1][0].examples), encoding="utf-8")
    [eval_set] = load_eval_sets([str(path)], MAX_BYTES)
    assert len(eval_set) == 100 and all(item.problem is None for item in eval_set.items)
    batch = get_generator("syllo").generate(1, 200, 1001) + [held_out[1][0].examples[5]]
    outcome = gate(home, batch)
    codes = leak_codes(outcome)
    assert set(codes) == flagged_by_text(home, batch) and len(codes) >= 20
    assert "leakage.eval_prompt" in codes[200]
