import json

import pytest

from tdm_dagster.gate.schemas import SPECS, schema_gate
from tests.support.fixture_data import GSM8K

CHAT = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}


def test_known_specs():
    assert set(SPECS) == {"chat_sft_v1", "syllo_v1", "completion_v1", "instruction_v1", "labelled_v1"}


def test_unknown_spec_rejects_every_record_before_content_checks():
    result = schema_gate([CHAT, CHAT], "chat_v9")
    assert result.valid_indices == []
    assert result.batch_error and "unknown schema spec 'chat_v9'" in result.batch_error
    assert "chat_sft_v1" in result.batch_error
    assert set(result.rejected) == {0, 1}


@pytest.mark.parametrize(
    "record, code, field",
    [
        ({"messages": "hi"}, "schema.wrong_type", "messages"),
        ({}, "schema.missing_field", "messages"),
        ({**CHAT, "extra": 1}, "schema.unknown_field", "extra"),
        ({"messages": [{"role": "user"}]}, "schema.bad_message", "messages[0]"),
        ({"messages": [{"role": "user", "content": 5}]}, "schema.wrong_type", "messages[0].content"),
        ({"messages": [{"role": "user", "content": "x", "name": "bob"}]}, "schema.bad_message", "messages[0]"),
        (["not", "an", "object"], "schema.not_an_object", ""),
        ({**CHAT, "metadata": "x"}, "schema.wrong_type", "metadata"),
    ],
)
def test_chat_records_that_break_the_spec(record, code, field):
    result = schema_gate([CHAT, record], "chat_sft_v1")
    assert result.valid_indices == [0]
    [issue] = result.rejected[1]
    assert (issue.code, issue.field) == (code, field)
    assert issue.message


def test_mismatched_schema_refuses_the_batch():
    alpaca = {"instruction": "Add", "input": "1 and 2", "output": "3"}
    result = schema_gate([alpaca] * 3, "chat_sft_v1")
    assert result.batch_error and "no record matches spec chat_sft_v1" in result.batch_error
    assert len(result.rejected) == 3


def test_alpaca_and_completion_read_as_chats():
    alpaca = {"instruction": "Add the numbers", "input": "1 and 2", "output": "3"}
    no_input = {"instruction": "Say hi", "input": "", "output": "hi"}
    result = schema_gate([alpaca, no_input], "instruction_v1")
    assert result.conversations[0][0] == {"role": "user", "content": "Add the numbers\n\n1 and 2"}
    assert result.conversations[1][0]["content"] == "Say hi"
    completion = schema_gate([{"prompt": "p", "completion": "c"}], "completion_v1")
    assert completion.conversations == [[{"role": "user", "content": "p"}, {"role": "assistant", "content": "c"}]]


def test_syllo_spec_requires_puzzle_metadata():
    good = {**CHAT, "metadata": {"skill": "syllo", "level": 2, "seed": 1, "answer": ["banana"]}}
    bad_level = {**CHAT, "metadata": {"skill": "syllo", "level": 9, "seed": 1, "answer": ["banana"]}}
    no_meta = dict(CHAT)
    result = schema_gate([good, bad_level, no_meta], "syllo_v1")
    assert result.valid_indices == [0]
    assert result.rejected[1][0].field == "metadata.level"
    assert result.rejected[2][0].code == "schema.missing_field"


def test_real_alpaca_data_passes_instruction_spec():
    records = json.loads(GSM8K.read_text(encoding="utf-8"))[:500]
    result = schema_gate(records, "instruction_v1")
    assert len(result.valid_indices) == 500
    assert schema_gate(records, "completion_v1").batch_error
