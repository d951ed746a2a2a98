"""Answer verification through the one gate entry, on real generator output."""

import copy
import json
from dataclasses import replace

import pytest

from tdm_dagster.config.settings import TdmConfig
from tdm_dagster.gate.run import GateInput, run_gate
from tdm_dagster.gate.validate_file import validate_file
from tdm_dagster.gate.verify import AnswerCheck, register_verifier, unregister_verifier, verifier_names
from tdm_dagster.generate.generators import get_generator

CONFIG = TdmConfig()
GIBBERISH = " family sail2 ham2per comisealbilot pra12 famous dapfo"


def gate(records, spec, level="standard", config=CONFIG):
    return run_gate(GateInput.from_records(records, spec, "b"), config, level=level)


def batch(skill, n=30, level=2, seed=5):
    return get_generator(skill).generate(level, n, seed)


def with_reply(record, reply):
    changed = copy.deepcopy(record)
    changed["messages"][-1]["content"] = reply
    return changed


def answer_issues(outcome, position):
    return [issue for issue in outcome.issues.get(position, []) if issue.code.startswith("answer.")]


@pytest.mark.parametrize("skill", ["syllo", "binary"])
def test_builtin_generators_pass_verification_at_every_level(skill):
    generator = get_generator(skill)
    for level in range(1, generator.max_level + 1):
        records = generator.generate(level, 25, 100 + level)
        outcome = gate(records, generator.spec)
        assert outcome.report["records"]["approved"] == 25, outcome.rejected
        assert outcome.report["answers"]["checked"] == 25 == outcome.report["answers"]["correct"]
        assert all(verdict.correct and verdict.verifier == skill for verdict in outcome.answers.values())


def syllo_variants(record):
    words = record["metadata"]["answer"]
    numbered = lambda ws: "\n".join(f"{i}. {w}" for i, w in enumerate(ws, start=1))  # noqa: E731
    return {
        "correct, other style": ("\n".join(f"**{w.upper()}**" for w in words), True),
        "shuffled": (numbered([*words[1:], words[0]]), False),
        "missing word": (numbered(words[:-1]), False),
        "gibberish": (GIBBERISH, False),
    }


@pytest.mark.parametrize("level", ["standard", "deep"])
def test_syllo_replies_are_checked_word_by_word_in_clue_order(level):
    records = batch("syllo", n=80)  # 3 wrong of 80 keeps the batch over min_validity
    variants = syllo_variants(records[0])
    for offset, (reply, _) in enumerate(variants.values()):
        records[offset] = with_reply(records[offset], reply)
    outcome = gate(records, "syllo_v1", level=level)
    for offset, (name, (reply, correct)) in enumerate(variants.items()):
        issues = answer_issues(outcome, offset)
        assert (offset in outcome.rejected) is (not correct), name
        assert outcome.answers[offset].correct is correct, name
        if not correct:
            [issue] = issues
            assert issue.severity == "ERROR" and issue.field == "messages[1].content"
            expected = ", ".join(records[offset]["metadata"]["answer"])
            assert f"expected '{expected}'" in issue.message, issue.message
            assert "given '" in issue.message and " ".join(reply.split())[:40] in issue.message
    assert outcome.report["answers"]["wrong"] == 3


def test_a_long_wrong_reply_is_cut_in_the_message():
    records = batch("syllo", n=10)
    records[0] = with_reply(records[0], "word " * 500)
    [issue] = answer_issues(gate(records, "syllo_v1"), 0)
    assert "more chars)" in issue.message and len(issue.message) < 500


def test_binary_value_right_in_any_notation_and_wrong():
    records = batch("binary", n=60, level=3)
    first = records[0]["metadata"]
    value = int(first["answer"], 10 if first["operation"] == "bin_to_dec" else 2)
    right = f"Answer: {value}" if first["operation"] == "bin_to_dec" else f"The result is 0b{value:b}."
    wrong = f"Answer: {value + 1}" if first["operation"] == "bin_to_dec" else f"Answer: {value + 1:b}"
    records[0], records[1] = with_reply(records[0], right), with_reply(records[1], wrong)
    records[2] = with_reply(records[2], GIBBERISH)
    outcome = gate(records, "chat_sft_v1")
    assert 0 not in outcome.rejected and outcome.answers[0].correct
    assert [i.code for i in answer_issues(outcome, 1)] == ["answer.wrong"]
    assert f"expected '{records[1]['metadata']['answer']}'" in answer_issues(outcome, 1)[0].message
    assert "given 'family sail2" in answer_issues(outcome, 2)[0].message


def chat(prompt, reply, **metadata):
    return {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": reply}], "metadata": metadata}


def arithmetic_batch(replies, skill="gsm8k"):
    """Word problems with a numeric reference; ``replies`` maps position -> reply."""
    records = []
    for i in range(30):
        total = 3 * i + 7
        reply = replies.get(i, f"She has {i} apples and gets {2 * i + 7} more, so {i} + {2 * i + 7} = {total}.\n#### {total}")
        records.append(chat(f"Ann has {i} apples and buys {2 * i + 7} more. How many apples now?", reply, skill=skill, answer=str(total)))
    return records


def test_generic_verifier_matches_normalised_final_answers():
    replies = {0: "The answer is 7.", 1: "10", 2: "1,000 apples? No: 13", 3: "#### 17", 4: "Answer: 19.0", 5: GIBBERISH, 6: "I think it is 99."}
    outcome = gate(arithmetic_batch(replies), "chat_sft_v1")
    verdicts = {i: outcome.answers[i].correct for i in replies}
    assert verdicts == {0: True, 1: True, 2: True, 3: False, 4: True, 5: False, 6: False}
    assert all(outcome.answers[i].verifier == "generic" for i in range(30))
    assert "expected '16'" in answer_issues(outcome, 3)[0].message and "given '17'" in answer_issues(outcome, 3)[0].message


def test_generic_verifier_on_text_answers():
    records = [chat(f"Capital of country {i}?", reply, answer=f"City {i}") for i, reply in enumerate(["city 0", "The answer is: CITY 1!", "Paris"])]
    outcome = gate(records * 10, "chat_sft_v1")
    assert [outcome.answers[i].correct for i in range(3)] == [True, True, False]


def test_records_without_a_reference_are_not_judged():
    records = [chat(f"Say something about {i}.", f"Something about {i}.") for i in range(20)]
    outcome = gate(records, "chat_sft_v1")
    assert outcome.answers == {} and outcome.report["answers"]["checked"] == 0 and not outcome.rejected


def test_quick_level_does_not_verify():
    records = [with_reply(record, GIBBERISH) for record in batch("syllo", n=10)]
    outcome = gate(records, "syllo_v1", level="quick")
    assert not outcome.rejected and outcome.answers == {} and "answers" not in outcome.report


@pytest.fixture
def shouting_verifier():
    @register_verifier("shouting")
    def shouting(reference, reply, metadata):
        return AnswerCheck(reply == str(reference).upper(), str(reference).upper(), reply)

    yield "shouting"
    unregister_verifier("shouting")


def test_user_registered_verifier_judges_its_skill(shouting_verifier):
    assert "shouting" in verifier_names()
    records = [chat(f"Shout word {i}.", f"WORD{i}" if i else "word0", skill="Shouting", answer=f"word{i}") for i in range(20)]
    outcome = gate(records, "chat_sft_v1")
    assert set(outcome.rejected) == {0} and outcome.answers[0].verifier == "shouting"
    assert "expected 'WORD0', given 'word0'" in answer_issues(outcome, 0)[0].message
    with pytest.raises(ValueError, match="already registered"):
        register_verifier("shouting")(lambda reference, reply, metadata: AnswerCheck(True, "", ""))


def test_config_points_a_skill_at_a_verifier(shouting_verifier):
    records = [chat(f"Shout word {i}.", f"word{i}", skill="echo", answer=f"word{i}") for i in range(20)]
    assert not gate(records, "chat_sft_v1").rejected  # the generic verifier accepts the exact echo
    config = replace(CONFIG, gate=replace(CONFIG.gate, verifiers={"echo": "shouting"}))
    assert len(gate(records, "chat_sft_v1", config=config).rejected) == 20
    missing = replace(CONFIG, gate=replace(CONFIG.gate, verifiers={"echo": "nope"}))
    with pytest.raises(KeyError, match="'nope' for skill 'echo'"):
        gate(records, "chat_sft_v1", config=missing)


def test_an_unusable_reference_is_noted_not_rejected():
    records = batch("binary", n=20)
    records[0]["metadata"]["answer"] = "twelve"
    outcome = gate(records, "chat_sft_v1")
    [issue] = answer_issues(outcome, 0)
    assert issue.code == "answer.unverifiable" and issue.severity == "INFO" and issue.suggestion
    assert 0 not in outcome.rejected and 0 not in outcome.answers
    assert outcome.report["answers"]["unverifiable"] == 1


def test_ingested_files_bring_their_references(tmp_path):
    """A top-level ``reference_answer`` or ``answer`` moves into metadata and is checked by ``tdm validate``."""
    records = batch("syllo", n=30)
    lines = []
    for i, record in enumerate(records):
        key = "reference_answer" if i % 2 else "answer"
        metadata = {k: v for k, v in record["metadata"].items() if k != "answer"}
        reply = GIBBERISH if i == 3 else record["messages"][-1]["content"]
        lines.append({"messages": with_reply(record, reply)["messages"], "metadata": metadata, key: record["metadata"]["answer"]})
    path = tmp_path / "replies.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = validate_file(path, CONFIG)
    wrong = [issue for issue in result["issues"] if issue["code"] == "answer.wrong"]
    assert [issue["line"] for issue in wrong] == [4] and "given 'family sail2" in wrong[0]["message"]
    assert result["totals"]["accepted"] == 29


def test_tiers_come_from_what_was_measured():
    """Verified answers are gold whatever the source; unverified model output and
    imported data are silver at best (when the reply model judged them), bronze when
    nothing judged them (a reply too short for the model); warnings lower that."""
    verified = batch("binary", n=30)
    for record in verified:
        record["metadata"]["source"] = "inference"
    assert gate(verified, "chat_sft_v1").report["tiers"] == {"gold": 30, "silver": 0, "bronze": 0, "raw": 0}
    unverified = [chat(f"Tell me about topic {i}.", f"Topic {i} is interesting because of reason {i}.", source="inference") for i in range(30)]
    outcome = gate(unverified, "chat_sft_v1")
    assert outcome.report["tiers"]["bronze"] == 30
    judged = [
        chat(f"Tell me about topic {i}.", f"Topic {i} is interesting because of reason {i}, and it is one of the things "
             "that people who work in this field talk about when they want to explain what they do.", source="inference")
        for i in range(30)
    ]  # fmt: skip
    assert gate(judged, "chat_sft_v1").report["tiers"]["silver"] == 30
    reviewed = [chat(f"Tell me about topic {i}.", f"Topic {i} matters for reason {i}.", human_reviewed=True) for i in range(30)]
    assert gate(reviewed, "chat_sft_v1").report["tiers"]["gold"] == 30
    from tdm_dagster.gate.outcome import score_rows

    rows = score_rows(gate(verified, "chat_sft_v1"))
    assert all(row["verified"] and row["tier"] == "gold" for row in rows)
    assert not any(row["verified"] for row in score_rows(outcome))


def test_validate_answers_side_file(home, tmp_path):
    """``tdm validate --answers``: replies exported without their answers are checked
    against a side file that names records by line or id."""
    from click.testing import CliRunner

    from tdm_dagster.cli import main

    records = batch("syllo", n=30)
    data = []
    for i, record in enumerate(records):
        reply = GIBBERISH if i == 5 else record["messages"][-1]["content"]
        data.append({"id": f"p{i}", "messages": with_reply(record, reply)["messages"]})
    (tmp_path / "replies.jsonl").write_text("".join(json.dumps(r) + "\n" for r in data))
    side = [{"id": f"p{i}", "answer": r["metadata"]["answer"], "skill": "syllo"} for i, r in enumerate(records) if i % 2 == 0]
    side += [{"line": i + 1, "answer": r["metadata"]["answer"], "skill": "syllo"} for i, r in enumerate(records) if i % 2]
    side.append({"id": "nowhere", "answer": "x"})
    (tmp_path / "answers.jsonl").write_text("".join(json.dumps(r) + "\n" for r in side))
    without = CliRunner().invoke(main, ["validate", str(tmp_path / "replies.jsonl"), "--json"])
    assert json.loads(without.stdout)["answers"]["checked"] == 0
    result = CliRunner().invoke(main, ["validate", str(tmp_path / "replies.jsonl"), "--answers", str(tmp_path / "answers.jsonl"), "--json"])
    report = json.loads(result.stdout)
    assert report["answers"]["checked"] == 30 and report["answers"]["wrong"] == 1
    assert report["answers"]["unmatched_in_answers_file"] == 1
    [wrong] = [issue for issue in report["issues"] if issue["code"] == "answer.wrong"]
    assert wrong["line"] == 6 and "given 'family sail2" in wrong["message"]
    (tmp_path / "bad.jsonl").write_text('{"line": 1}\n')
    refused = CliRunner().invoke(main, ["validate", str(tmp_path / "replies.jsonl"), "--answers", str(tmp_path / "bad.jsonl")])
    assert refused.exit_code == 2 and "bad.jsonl:1" in refused.output


def test_queue_recheck_trims_wrong_answers_queued_before_verification(home):
    """The re-check runs the same gate: a wrong answer that reached the queue is trimmed with its reason."""
    from tdm_dagster.config.settings import load_config
    from tdm_dagster.queue.recheck import recheck_queue
    from tdm_dagster.queue.store import TrainingQueue

    records = batch("binary", n=60, level=3)
    records[7] = with_reply(records[7], GIBBERISH)
    path = TrainingQueue(home).enqueue("b1", records, "normal")[0]
    [verdict] = recheck_queue(home, load_config(home)).files
    assert (verdict.verdict, verdict.removed) == ("trimmed", 1)
    assert len(path.read_text().splitlines()) == 59
    [row] = [json.loads(line) for line in (home.rejected_dir / "b1.recheck.jsonl").read_text().splitlines()]
    assert row["line"] == 8 and [reason["code"] for reason in row["reasons"]] == ["answer.wrong"]
