"""Problem keys read back from generated examples: equal for the same problem, whatever its wording."""

from __future__ import annotations

import copy

import pytest

from tdm_dagster.generate.generators import get_generator, problem_of
from tdm_dagster.generate.generators.binary import OPERATIONS
from tests.support.reworded import syllo_in_other_clue_order


@pytest.mark.parametrize("level", [1, 3, 5])
def test_syllo_key_is_the_word_set_whatever_the_clue_order(level):
    examples = get_generator("syllo").generate(level, 50, 17)
    keys = [problem_of(example) for example in examples]
    assert [key[1].split() for key in keys] == [sorted(e["metadata"]["answer"]) for e in examples]
    assert len(set(keys)) == 50  # a batch never repeats a word set, so neither do the keys
    other_order = syllo_in_other_clue_order(examples[0])
    assert other_order["metadata"]["answer"] != examples[0]["metadata"]["answer"]
    assert problem_of(other_order) == keys[0] == ("syllo", " ".join(sorted(examples[0]["metadata"]["answer"])))


def test_syllo_key_needs_the_words():
    [example] = get_generator("syllo").generate(2, 1, 3)
    syllo = get_generator("syllo")
    assert syllo.example_key({"messages": example["messages"]}) is None
    for answer in ([], "apple river", ["apple", 3], ["two words"]):
        assert syllo.example_key({**example, "metadata": {**example["metadata"], "answer": answer}}) is None
    ingested = {**example, "metadata": {"skill": "syllo", "reference_answer": ["River", "apple"]}}
    assert syllo.example_key(ingested) == "apple river"  # what `tdm ingest --answers` writes


@pytest.mark.parametrize("level", [1, 4, 7])
def test_binary_key_is_the_problem_one_to_one_with_the_prompt(level):
    binary = get_generator("binary")
    examples = binary.generate(level, 300, 5) + binary.generate(level, 300, 6)
    key_of_prompt = {}
    for example in examples:
        key = binary.example_key(example)
        operation, *operands = key.split()
        assert operation == example["metadata"]["operation"] and operation in OPERATIONS
        assert len(operands) == (1 if operation.endswith(("_bin", "_dec")) else 2)
        assert key_of_prompt.setdefault(example["messages"][0]["content"], key) == key
    assert len(set(key_of_prompt.values())) == len(key_of_prompt)  # different prompts, different problems


def test_binary_key_only_for_prompts_as_the_generator_writes_them():
    binary = get_generator("binary")
    [example] = [e for e in binary.generate(3, 40, 9) if e["metadata"]["operation"] == "add"][:1]
    assert binary.example_key(example) is not None
    reworded = copy.deepcopy(example)
    reworded["messages"][0]["content"] = "Please " + reworded["messages"][0]["content"].lower()
    assert binary.example_key(reworded) is None  # judged by its text instead
    relabelled = copy.deepcopy(example)
    relabelled["metadata"]["operation"] = "sub"
    assert binary.example_key(relabelled) is None
    for broken in ({"messages": example["messages"]}, {"metadata": example["metadata"]}, {**example, "messages": "text"}):
        assert binary.example_key(broken) is None


def test_problem_of_takes_the_generator_from_metadata_skill():
    [example] = get_generator("syllo").generate(1, 1, 4)
    key = problem_of(example)
    assert problem_of({**example, "metadata": {**example["metadata"], "skill": " SYLLO "}}) == key
    assert problem_of({**example, "metadata": {**example["metadata"], "skill": "gsm8k"}}) is None
    assert problem_of({**example, "metadata": {**example["metadata"], "skill": 7}}) is None
    assert problem_of({"messages": example["messages"]}) is None
    assert problem_of({"messages": example["messages"], "metadata": "syllo"}) is None
