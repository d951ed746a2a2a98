"""Mapping source shapes to our specs: every mapped record passes the strict schema gate."""

import json
from collections import defaultdict

import pytest

from tdm_dagster.ingest import (
    MappedRecord,
    common_spec,
    map_record,
    map_source,
    read_records,
)
from tdm_dagster.records.issues import RecordIssue
from tdm_dagster.gate.schemas import schema_gate
from tests.support.fixture_data import GSM8K, ROLEPLAY, SEED_TASKS

CHAT = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
SEED_TASK = {
    "id": "seed_task_9",
    "name": "sentiment",
    "instruction": "Classify the sentiment.",
    "instances": [{"input": "I love it", "output": "positive"}, {"output": "neutral"}, {"input": "Awful", "output": "negative"}],
    "is_classification": True,
}


def mapped_or_fail(value: object) -> list[MappedRecord]:
    mapped = map_record(value)
    assert not isinstance(mapped, RecordIssue), mapped
    return mapped


def assert_gate_accepts(mapped: list[MappedRecord]) -> None:
    """Group by spec, as a caller batching a mixed file would, and check every record conforms."""
    by_spec: dict[str, list[dict]] = defaultdict(list)
    for item in mapped:
        by_spec[item.spec].append(item.record)
    for spec, records in by_spec.items():
        result = schema_gate(records, spec)
        assert result.rejected == {} and len(result.valid_indices) == len(records), (spec, result.rejected)


def issue_of(value: object) -> RecordIssue:
    outcome = map_record(value)
    assert isinstance(outcome, RecordIssue), outcome
    assert outcome.suite == "shape" and outcome.severity == "ERROR" and outcome.message and outcome.suggestion
    return outcome


@pytest.mark.parametrize(
    "value, spec, shape, record",
    [
        ({"instruction": "Add.", "input": "1 2", "output": "3"}, "instruction_v1", "alpaca",
         {"instruction": "Add.", "input": "1 2", "output": "3"}),
        ({"instruction": "Say hi.", "output": "hi"}, "instruction_v1", "alpaca", {"instruction": "Say hi.", "input": "", "output": "hi"}),
        ({"instruction": "Say hi.", "input": None, "output": "hi"}, "instruction_v1", "alpaca",
         {"instruction": "Say hi.", "input": "", "output": "hi"}),
        ({"prompt": "2+2=", "completion": "4"}, "completion_v1", "prompt_completion", {"prompt": "2+2=", "completion": "4"}),
        ({"messages": CHAT}, "chat_sft_v1", "chat_messages", {"messages": CHAT}),
        ({"conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"},
                            {"from": "user", "value": "again"}, {"from": "model", "value": "hi"}, {"from": "assistant", "value": "!"}]},
         "chat_sft_v1", "sharegpt",
         {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                       {"role": "user", "content": "again"}, {"role": "assistant", "content": "hi"}, {"role": "assistant", "content": "!"}]}),
    ],
)  # fmt: skip
def test_each_shape_maps_to_its_spec(value, spec, shape, record):
    [mapped] = mapped_or_fail(value)
    assert (mapped.spec, mapped.shape, mapped.record, mapped.sub_index) == (spec, shape, record, None)
    assert_gate_accepts([mapped])


def test_seed_task_gives_one_example_per_instance_with_its_task_and_index():
    mapped = mapped_or_fail(SEED_TASK)
    assert [item.sub_index for item in mapped] == [0, 1, 2]
    assert {item.spec for item in mapped} == {"instruction_v1"}
    assert mapped[1].record == {
        "instruction": "Classify the sentiment.",
        "input": "",
        "output": "neutral",
        "metadata": {"task_id": "seed_task_9", "task_name": "sentiment", "is_classification": True, "instance_index": 1},
    }
    assert_gate_accepts(mapped)


def test_seed_task_location_names_the_instance(tmp_path):
    path = tmp_path / "seeds.jsonl"
    path.write_text(json.dumps({"instruction": "x", "instances": []}) + "\n" + json.dumps(SEED_TASK) + "\n")
    empty, task = read_records(path)
    assert map_source(empty).code == "shape.bad_instances"
    assert map_source(empty).message.startswith(f"{path} line 1, record #0: instances")
    assert [task.where(item.sub_index) for item in map_source(task)][2] == f"{path} line 2, record #1 (instance #2)"


def test_seed_task_instance_without_output_is_left_to_the_gate():
    mapped = mapped_or_fail({"instruction": "x", "instances": [{"input": "a"}]})
    [issues] = schema_gate([mapped[0].record], "instruction_v1").rejected.values()
    assert issues[0].code == "schema.missing_field" and issues[0].field == "output"


def test_provenance_keys_move_into_metadata_which_the_gate_accepts():
    value = {"id": 7, "source": "gsm8k", "metadata": {"split": "train"}, "prompt": "p", "completion": "c"}
    [mapped] = mapped_or_fail(value)
    assert mapped.record == {"prompt": "p", "completion": "c", "metadata": {"split": "train", "id": 7, "source": "gsm8k"}}
    assert_gate_accepts([mapped])


def test_conflicting_provenance_is_rejected():
    issue = issue_of({"id": 1, "metadata": {"id": 2}, "messages": CHAT})
    assert issue.code == "shape.metadata_conflict" and issue.field == "metadata.id"
    assert issue_of({"metadata": "train", "messages": CHAT}).code == "shape.wrong_type"


def test_wrong_field_types_map_through_and_the_gate_rejects_them():
    [mapped] = mapped_or_fail({"instruction": 5, "output": "x"})
    [issues] = schema_gate([mapped.record], mapped.spec).rejected.values()
    assert (issues[0].code, issues[0].field) == ("schema.wrong_type", "instruction")


@pytest.mark.parametrize(
    "value, code, field, words",
    [
        ({"conversations": [{"from": "human", "value": "hi"}, {"from": "bing", "value": "hello"}]}, "shape.unknown_role",
         "conversations[1].from", ["'bing'", "human, user, gpt, assistant, model, system"]),
        ({"conversations": [{"from": "human", "value": "hi", "weight": 1}]}, "shape.bad_turn", "conversations[0]", ["'from' and 'value'"]),
        ({"conversations": "hi"}, "shape.wrong_type", "conversations", ["array of turns"]),
        ({"instruction": "x", "instances": [{"input": "a", "output": "b", "label": 1}]}, "shape.bad_instance", "instances[0]", ["label"]),
        ({"instruction": "x", "output": "y", "category": "qa"}, "shape.unexpected_key", "category",
         ["category is not part of the alpaca shape {instruction, output, input?}"]),
        ({"instruction": "x", "output": "y", "instances": []}, "shape.ambiguous_shape", "", ["alpaca and alpaca_seed_task"]),
        ({"instruction": "x", "input": "y"}, "shape.unknown_shape", "", ["closest: alpaca, missing output", "we accept: alpaca"]),
        ({"question": "q", "answer": "a"}, "shape.unknown_shape", "", ["keys ['answer', 'question']", "sharegpt {conversations} -> chat_sft_v1"]),
        (["a", "list"], "shape.not_an_object", "", ["list"]),
    ],
)  # fmt: skip
def test_records_that_map_to_no_spec_say_why(value, code, field, words):
    issue = issue_of(value)
    assert (issue.code, issue.field) == (code, field)
    for word in words:
        assert word in issue.message


def test_a_mixed_file_maps_record_by_record(tmp_path):
    path = tmp_path / "mixed.jsonl"
    values = [{"instruction": "a", "output": "b"}, {"messages": CHAT}, {"prompt": "p", "completion": "c"}, {"bad": 1}]
    path.write_text("".join(json.dumps(value) + "\n" for value in values))
    outcomes = [map_source(record) for record in read_records(path)]
    mapped = [item for outcome in outcomes if not isinstance(outcome, RecordIssue) for item in outcome]
    assert [item.spec for item in mapped] == ["instruction_v1", "chat_sft_v1", "completion_v1"]
    assert common_spec(mapped) is None and common_spec(mapped[:1]) == "instruction_v1"
    assert outcomes[3].message.startswith(f"{path} line 4, record #3: keys ['bad']")
    assert_gate_accepts(mapped)


def test_map_source_passes_read_issues_through(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text("{nope\n")
    [record] = read_records(path)
    assert map_source(record) is record.issue


# --- the real public data --------------------------------------------------------------


@pytest.mark.parametrize("path", [ROLEPLAY, GSM8K], ids=lambda path: path.name)
def test_real_alpaca_arrays_map_one_to_one_and_pass_the_gate(path):
    expected = json.loads(path.read_bytes())
    mapped = [item for record in read_records(path) for item in map_source(record)]
    assert len(mapped) == len(expected)
    assert common_spec(mapped) == "instruction_v1" and {item.shape for item in mapped} == {"alpaca"}
    assert [item.record["output"] for item in mapped] == [value["output"] for value in expected]
    assert_gate_accepts(mapped)


def test_real_seed_tasks_map_to_exactly_one_example_per_instance():
    path = SEED_TASKS
    tasks = [json.loads(line) for line in path.read_text().splitlines()]
    instances = [(task["id"], position) for task in tasks for position in range(len(task["instances"]))]
    mapped = [item for record in read_records(path) for item in map_source(record)]
    assert len(tasks) == 175 and len(mapped) == len(instances)
    assert [(item.record["metadata"]["task_id"], item.sub_index) for item in mapped] == instances
    assert [item.record["metadata"]["instance_index"] for item in mapped] == [position for _, position in instances]
    assert_gate_accepts(mapped)
