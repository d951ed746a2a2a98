"""A batch judged in chunks gets the outcome it gets judged whole: the same decisions,
issues, scores (tiers from the reply model included), deep findings (semantic duplicates
included, with the ``[semantic]`` extra) and report (labelled records' class balance
included), on real data (the GSM8K and roleplay subsets) with copies, edited copies,
reworded copies and leaks placed across chunk boundaries."""

import json
import random
from dataclasses import replace

import pytest

from tdm_dagster.config.sections import LabelsConfig
from tdm_dagster.config.settings import TdmConfig
from tdm_dagster.gate.outcome import check_view
from tdm_dagster.gate.run import GateInput, gate_findings, run_gate
from tdm_dagster.gate.semantic.findings import load_embedder
from tdm_dagster.gate.validate_file import validate_file
from tdm_dagster.records.issues import RecordIssue
from tests.support.fixture_data import GSM8K, ROLEPLAY, SEED_TASKS
from tests.support.labelled_examples import ENTITY_LABELS, INTENTS, SENTIMENTS, labelled_examples
from tests.support.paraphrase import reword

CHUNK = 97
"""Small enough that the batch below runs in several chunks."""


def chat(record):
    prompt = "\n".join(part for part in (record["instruction"], record.get("input", "")) if part)
    return {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": record["output"]}]}


def edited(record, rng):
    words = record["messages"][1]["content"].split()
    for _ in range(2):
        words[rng.randrange(len(words))] = "several"
    return {"messages": [record["messages"][0], {"role": "assistant", "content": " ".join(words)}]}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """About 640 real records, with exact copies, lightly edited copies (near duplicates),
    malformed and unreadable records, refusals, and leaked evaluation items, spread over
    the chunks; and the evaluation file they leak from."""
    rng = random.Random(21)
    raw = json.loads(GSM8K.read_text(encoding="utf-8"))[:400]
    gsm8k = [chat(r) for r in raw]
    roleplay = [chat(r) for r in json.loads(ROLEPLAY.read_text(encoding="utf-8"))[:200]]
    held_out, records = gsm8k[:20], gsm8k[20:] + roleplay
    rng.shuffle(records)
    later_copies = [dict(records[i]) for i in (3, 50, 120, 121, 300)]
    near = [edited(records[i], rng) for i in (5, 99, 250, 400) if len(records[i]["messages"][1]["content"].split()) > 20]
    reworded = [chat({**r, "instruction": reword(r["instruction"], i)}) for i, r in enumerate(raw[40:400:60])]
    odd = [
        {"messages": [{"role": "assistant", "content": "hello"}]},
        {"messages": [{"role": "user", "content": "Say something."}, {"role": "assistant", "content": "As an AI language model, I cannot."}]},
        {"text": "not a chat"},
    ]
    records = records + later_copies + near + reworded + held_out[:6] + odd
    rng.shuffle(records)
    records[10] = None  # could not be read: its reason comes with the input
    folder = tmp_path_factory.mktemp("eval")
    (folder / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in held_out), encoding="utf-8")
    read_issues = {10: [RecordIssue("read", "read.invalid_json", "line 11: not JSON", "")]}
    return GateInput.from_records(records, "chat_sft_v1", "chunked", read_issues), str(folder / "eval.jsonl")


def comparable(outcome):
    """Everything the outcome says, but the seconds each suite took."""
    report = json.loads(json.dumps(outcome.report, default=str))
    for result in report["results"].values():
        result["details"].pop("seconds", None)
    view = json.loads(json.dumps(check_view(outcome), default=str))
    return {
        "approved": outcome.approved_indices,
        "rejected": outcome.rejected,
        "issues": outcome.issues,
        "scores": outcome.scores,
        "deep": outcome.deep,
        "answers": outcome.answers,
        "shortfalls": outcome.shortfalls,
        "report": report,
        "view": view,
    }


@pytest.mark.parametrize("level", ["quick", "standard", "deep"])
def test_chunks_decide_as_the_whole_batch(batch, level):
    gate_input, eval_file = batch
    config = TdmConfig()
    config = replace(config, gate=replace(config.gate, eval_sets=(eval_file,), min_validity=0.5, min_overall=0.5))
    whole = run_gate(gate_input, config, level=level, chunk_records=len(gate_input.records))
    chunked = run_gate(gate_input, config, level=level, chunk_records=CHUNK)
    assert len(gate_input.records) > 6 * CHUNK
    assert comparable(chunked) == comparable(whole)
    codes = {issue.code for found in whole.issues.values() for issue in found}
    assert whole.rejected and whole.approved_indices
    if level != "quick":
        assert "diversity.duplicate_example" in codes
    if level != "quick":  # the reply model decided some tiers
        assert gate_findings(gate_input, config, level).model_judged
    if level == "deep":  # the findings that look across chunks are there, and the same
        assert {"dedup.exact_duplicate", "dedup.near_duplicate", "leakage.ngram"} <= codes
        if load_embedder() is not None:  # the [semantic] extra: reworded copies, some in a later chunk than their original
            pairs = [(p, int(i.message.rsplit(":", 1)[1]) - 1) for p, found in whole.issues.items() for i in found if i.code == "dedup.semantic_duplicate"]
            assert any(p // CHUNK != partner // CHUNK for p, partner in pairs), pairs


def test_batch_rules_fail_alike_in_chunks(batch):
    """A batch whose replies repeat (half of them one of three short replies) fails the
    distinct-responses rule, in chunks as whole, with the same most repeated replies shown."""
    gate_input, _ = batch
    rng = random.Random(3)
    repeated = [
        {"messages": [r["messages"][0], {"role": "assistant", "content": rng.choice(["Yes.", "No.", "Maybe so."])}]} if r and "messages" in r and i % 2 else r
        for i, r in enumerate(gate_input.records)
    ]
    low = replace(gate_input, records=repeated)
    whole = run_gate(low, TdmConfig(), level="standard", chunk_records=len(repeated))
    chunked = run_gate(low, TdmConfig(), level="standard", chunk_records=CHUNK)
    assert comparable(chunked) == comparable(whole)
    assert not whole.suites["diversity"].passed
    assert any("most_repeated" in sample for sample in whole.suites["diversity"].samples)


def test_validate_reads_and_judges_a_file_in_parts_as_whole(tmp_path):
    """``tdm validate`` of a file read a few records at a time: the same report, lines and
    seed-task instances included, a broken line and a truncated end included."""
    gsm8k = json.loads(GSM8K.read_text(encoding="utf-8"))[:150]
    seeds = SEED_TASKS.read_text(encoding="utf-8").splitlines()[:20]
    lines = [json.dumps(r) for r in gsm8k[:70]] + seeds + ["{not json"] + [json.dumps(r) for r in gsm8k[70:] + gsm8k[:5]]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + '\n{"instruction": "cut', encoding="utf-8")
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps({"line": n, "answer": "42"}) + "\n" for n in (2, 90, 170, 9999)), encoding="utf-8")
    config = TdmConfig()
    whole = validate_file(path, config, level="deep", answers=answers, chunk_records=10_000)
    parts = validate_file(path, config, level="deep", answers=answers, chunk_records=23)
    assert parts == whole
    assert sum(issue["code"].startswith("read.") for issue in whole["issues"]) == 2 and whole["totals"]["input_records"] > 150
    assert any("instance" in issue for issue in whole["issues"]) and whole["answers"]["unmatched_in_answers_file"] == 1


def test_labelled_records_in_chunks_as_whole():
    """Labelled examples judged a few at a time: the same undeclared-label rejections and
    the same class balance, counted over the whole batch."""
    records = labelled_examples() * 3
    records[2] = {**records[2], "expected_intent": "refund"}
    declared = TdmConfig(labels=LabelsConfig(intents=tuple(INTENTS), sentiments=tuple(SENTIMENTS), entity_labels=tuple(ENTITY_LABELS)))
    gate_input = GateInput.from_records(records, "labelled_v1", "labelled")
    whole = run_gate(gate_input, declared, level="standard", chunk_records=len(records))
    chunked = run_gate(gate_input, declared, level="standard", chunk_records=5)
    assert comparable(chunked) == comparable(whole)
    assert whole.rejected[2][0].code == "schema.unknown_label"
    balance = whole.report["results"]["balance"]["details"]["observed"]["class_balance"]
    intents = [record["expected_intent"] for record in records]
    assert balance["expected_intent"]["counts"] == {intent: intents.count(intent) for intent in set(intents)}
