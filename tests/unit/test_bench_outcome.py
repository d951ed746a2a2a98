"""The outcome benchmark's weak teacher, judged by the real gate: its replies are well
formed, so only the answer verifier can catch them, and salvage keeps its right ones."""

import random

import pytest

from bench.outcome_generators import LEVEL, WeakTeacher
from tdm_dagster.config.settings import TdmConfig
from tdm_dagster.gate.run import GateInput, run_gate
from tdm_dagster.gate.salvage import salvaged
from tdm_dagster.generate.generators.syllo import SylloGenerator, load_lexicon, parse_word_list


@pytest.fixture(scope="module")
def judged():
    lexicon = random.Random(0).sample(load_lexicon(), 20)
    generator = SylloGenerator(lexicon)
    teacher = WeakTeacher.for_lexicon(lexicon, generator)
    records = [teacher.answer(e) for e in generator.generate(LEVEL, 100, 7)]
    right = {p for p, r in enumerate(records) if generator.check_answer(r, r["messages"][1]["content"])}
    outcome = run_gate(GateInput.from_records(records, generator.spec, "teacher"), TdmConfig())
    return {e.word for e in lexicon}, records, right, outcome


def test_weak_teacher_is_wrong_in_a_well_formed_way(judged):
    words, records, right, _ = judged
    assert 0 < len(right) < len(records)
    for record in records:
        answer = parse_word_list(record["messages"][1]["content"])
        assert len(answer) == 4 and set(answer) <= words


def test_only_the_verifier_catches_the_weak_teacher(judged):
    _, records, right, outcome = judged
    for position in range(len(records)):
        own = [i.code for i in outcome.issues.get(position, []) if i.rejects and i.suite != "batch"]
        assert own == ([] if position in right else ["answer.wrong"]), position


def test_salvage_keeps_exactly_the_right_replies_of_a_rejected_batch(judged):
    _, records, right, outcome = judged
    assert not outcome.batch_approved and outcome.approved_indices == []
    assert set(salvaged(outcome, records, source="generated").approved_indices) == right
