"""Dedup, splits, diff and clean key on the content of whatever shape a dataset stored:
instruction/input/output, prompt/completion, chat messages and seed tasks, on real data."""

from __future__ import annotations

import json

import pytest

from tdm_dagster.datasets import CleanText, DatasetRegistry, DropExactDuplicates, DropNearDuplicates, Filter
from tdm_dagster.datasets.errors import NothingChangedError
from tdm_dagster.datasets.splits import assign_splits
from tests.support.fixture_data import GSM8K, SEED_TASKS


def _alpaca(record: dict) -> dict:
    return record


def _prompt_completion(record: dict) -> dict:
    return {"prompt": record["instruction"], "completion": record["output"]}


def _messages(record: dict) -> dict:
    return {"messages": [{"role": "user", "content": record["instruction"]}, {"role": "assistant", "content": record["output"]}]}


SHAPES = {"instruction_input_output": _alpaca, "prompt_completion": _prompt_completion, "messages": _messages}
TEXT_KEYS = {"instruction_input_output": ("instruction", "output"), "prompt_completion": ("prompt", "completion")}


def _gsm8k(n: int, shape: str) -> list[dict]:
    return [SHAPES[shape](record) for record in json.loads(GSM8K.read_text())[:n]]


def _reworded(record: dict, shape: str, edit) -> dict:
    """``record`` with ``edit`` applied to its reply text, in its own shape."""
    if shape == "messages":
        user, assistant = record["messages"]
        return {"messages": [user, {**assistant, "content": edit(assistant["content"])}]}
    reply = TEXT_KEYS[shape][1]
    return {**record, reply: edit(record[reply])}


def _respaced(record: dict, shape: str) -> dict:
    """The same content with other whitespace: an exact duplicate once normalised."""
    return _reworded(record, shape, lambda text: "  " + text.replace(" ", "   ") + "\n")


@pytest.mark.parametrize("shape", SHAPES)
def test_dedup_drops_only_the_copies(shape):
    originals = _gsm8k(300, shape)
    assert DropExactDuplicates().apply(originals)[0] == originals  # distinct problems stay distinct
    copies = [_respaced(originals[i], shape) for i in range(0, 300, 15)]
    kept, report = DropExactDuplicates().apply(originals + copies)
    assert kept == originals and report["removed"] == len(copies) == 20
    near = [_reworded(originals[i], shape, lambda text: text + " Done.") for i in range(0, 300, 30)]
    kept, report = DropNearDuplicates().apply(originals + near)
    assert kept == originals and report["removed"] == len(near)


def test_dedup_of_seed_tasks_compares_their_instances():
    tasks = [json.loads(line) for line in SEED_TASKS.read_text().splitlines()]
    assert DropExactDuplicates().apply(tasks)[0] == tasks
    renamed = {**tasks[3], "id": "copy_of_3", "name": "copy"}  # same instruction and instances
    other_output = {**tasks[4], "id": "x", "instances": [{**tasks[4]["instances"][0], "output": "Something else entirely."}]}
    kept, _ = DropExactDuplicates().apply([*tasks, renamed, other_output])
    assert kept == [*tasks, other_output]


@pytest.mark.parametrize("shape", SHAPES)
def test_splits_hold_their_ratios_and_keep_duplicates_together(shape):
    originals = _gsm8k(1000, shape)
    copies = [_respaced(originals[i], shape) for i in range(0, 1000, 50)]
    records = originals + copies
    result = assign_splits(records, {"train": 0.8, "val": 0.1, "test": 0.1}, seed=1)
    counts = {name: len(found) for name, found in result.splits.items()}
    assert sum(counts.values()) == len(records)
    for name, share in {"train": 0.8, "val": 0.1, "test": 0.1}.items():
        assert abs(counts[name] - share * len(records)) <= 2, counts
    assert result.groups == len(originals) and result.grouped_records == 2 * len(copies)
    for offset, original in enumerate(range(0, 1000, 50)):
        assert result.assignment[1000 + offset] == result.assignment[original]


@pytest.mark.parametrize("shape", SHAPES)
def test_diff_pairs_changed_records_by_their_prompt(home, shape):
    registry = DatasetRegistry(home)
    registry.create("d")
    records = _gsm8k(200, shape)
    registry.append("d", records[:150])
    changed = [_reworded(record, shape, lambda text: text + "\nChecked twice.") for record in records[:10]]
    registry.derive("d", [Filter(lambda r: r not in records[:10] and r not in records[140:150])])
    registry.append("d", [*changed, *records[150:]])
    diff = registry.diff("d", "1.0", "1.2").summary()
    assert (diff["changed"], diff["added"], diff["removed"], diff["unchanged"]) == (10, 50, 10, 130)


def test_clean_text_and_a_derive_that_changes_nothing(home):
    registry = DatasetRegistry(home)
    registry.create("c")
    messy = [_respaced(record, "instruction_input_output") for record in _gsm8k(20, "instruction_input_output")]
    registry.append("c", messy)
    cleaned = registry.derive("c", [CleanText()])
    assert cleaned.operation["steps"][0]["changed"] == 20
    assert [r["output"] for r in registry.records("c")] == [r["output"] for r in _gsm8k(20, "instruction_input_output")]
    with pytest.raises(NothingChangedError, match=r"c 1.1: the derive changed nothing \(clean_text removed 0 changed 0, drop_exact"):
        registry.derive("c", [CleanText(), DropExactDuplicates()])
    assert [v.version for v in registry.versions("c")] == ["1.0", "1.1"]
