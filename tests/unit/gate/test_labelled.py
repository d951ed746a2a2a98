"""Labelled examples (spec labelled_v1, seed 001) through the real gate: good ones pass,
each kind of bad span, empty text, an out-of-range confidence and an undeclared label is
rejected with a reason naming it, and the balance suite reports the class balance."""

import copy

import pytest

from tdm_dagster.config.sections import LabelsConfig
from tdm_dagster.config.settings import TdmConfig
from tdm_dagster.gate.run import GateInput, run_gate
from tdm_dagster.ingest.shapes import map_record
from tests.support.labelled_examples import ENTITY_LABELS, INTENTS, SENTIMENTS, labelled_examples


def _gate(records, config=TdmConfig(), level="standard", spec="labelled_v1"):
    return run_gate(GateInput.from_records(records, spec, "labelled"), config, level=level)


def _own_reasons(outcome):
    """Positions rejected for a reason of their own, not only because their batch was."""
    return sorted(position for position, found in outcome.rejected.items() if found[0].code != "batch.rejected")


def _broken(change):
    records = labelled_examples()
    change(records[1])
    return records


def _set(record, key, value):
    record[key] = value


BROKEN = {
    "empty text": (lambda r: _set(r, "text", "   "), "text: empty"),
    "span past the end": (lambda r: r["expected_entities"][0].__setitem__(3, 400), "outside the text of 45 characters"),
    "span covers other text": (lambda r: r["expected_entities"][0].__setitem__(0, "Austin"), "the span covers 'Boston', not the entity's text"),
    "inside a word": (lambda r: r["expected_entities"].__setitem__(0, ["Bost", "GPE", 19, 23]), "not on token boundaries"),
    "overlapping": (lambda r: r["expected_entities"].append(["Boston to", "GPE", 19, 28]), "overlaps expected_entities[0] [19, 25)"),
    "not an entity": (lambda r: r["expected_entities"].append({"text": "Boston"}), "expected [text, label, start, end]"),
    "confidence over 1": (lambda r: _set(r, "confidence", 1.5), "confidence: 1.5 is outside 0-1"),
    "confidence as text": (lambda r: _set(r, "confidence", "high"), "confidence: expected integer or number, got str"),
    "unknown key": (lambda r: _set(r, "expected_mood", "calm"), "expected_mood: field not allowed by labelled_v1"),
}


def test_labelled_examples_map_to_their_spec_and_pass_the_gate():
    records = labelled_examples()
    assert [part.spec for record in records for part in map_record(record)] == ["labelled_v1"] * len(records)
    outcome = _gate(records)
    assert outcome.batch_approved and sorted(outcome.approved_indices) == list(range(len(records)))


@pytest.mark.parametrize("kind", BROKEN)
def test_a_broken_labelled_example_is_rejected_naming_what_is_wrong(kind):
    change, reason = BROKEN[kind]
    outcome = _gate(_broken(change), level="quick")
    assert _own_reasons(outcome) == [1]  # one bad record in twelve: the batch is rejected as a whole, for it
    assert reason in outcome.rejected[1][0].message, outcome.rejected[1][0].message


def test_object_entities_are_checked_like_lists():
    records = labelled_examples()
    for record in records:
        record["expected_entities"] = [dict(zip(("text", "label", "start", "end"), item)) for item in record["expected_entities"]]
    assert len(_gate(records, level="quick").approved_indices) == len(records)
    records[0]["expected_entities"][0]["start"] += 1
    assert "the span covers" in _gate(records, level="quick").rejected[0][0].message


def test_labels_outside_the_declared_sets_are_rejected():
    declared = TdmConfig(labels=LabelsConfig(intents=tuple(INTENTS), sentiments=tuple(SENTIMENTS), entity_labels=tuple(ENTITY_LABELS)))
    assert len(_gate(labelled_examples(), declared).approved_indices) == len(labelled_examples())
    records = labelled_examples()
    records[2]["expected_intent"] = "refund"
    records[4]["expected_entities"][0][1] = "LOCATION"
    outcome = _gate(records, declared)
    assert _own_reasons(outcome) == [2, 4]
    assert outcome.rejected[2][0].code == "schema.unknown_label" and "expected_intent: 'refund' is not a declared label" in outcome.rejected[2][0].message
    assert "expected_entities[0].label: 'LOCATION'" in outcome.rejected[4][0].message
    # with no sets declared, any label goes
    assert len(_gate(copy.deepcopy(records)).approved_indices) == len(records)


def test_the_balance_suite_reports_class_balance():
    records = labelled_examples()
    balance = _gate(records).report["results"]["balance"]["details"]["observed"]["class_balance"]
    intents = [record["expected_intent"] for record in records]
    assert balance["expected_intent"]["counts"] == {intent: intents.count(intent) for intent in set(intents)}
    assert balance["expected_intent"]["imbalance"] == max(map(intents.count, intents)) / min(map(intents.count, intents))
    assert set(balance["entity_labels"]["counts"]) == set(ENTITY_LABELS)
    # a chat batch has no class balance to report
    chat = [{"messages": [{"role": "user", "content": r["text"]}, {"role": "assistant", "content": "Sure, I can help with that request."}]} for r in records]
    assert "class_balance" not in _gate(chat, spec="chat_sft_v1").report["results"]["balance"]["details"]["observed"]
