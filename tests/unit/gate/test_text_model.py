"""The shipped reply model (tdm_dagster.gate.text_model): it catches broken kinds the
rules miss, keeps the real replies it never trained on, loads from the package without a
network and not at code-location import; cut-off replies; tiers by what judged a reply.

The model trained on the public files past the records ``tests/data/`` holds, so every
real reply here is one it never saw (and the seed tasks a domain it never saw)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import replace

import pytest

from tdm_dagster.config.quality import QualitySettings
from tdm_dagster.config.settings import TdmConfig
from tdm_dagster.gate.run import GateInput, run_gate
from tdm_dagster.gate.scoring import tier
from tdm_dagster.gate.text_model.model import MODEL_PATH, _batch_ids, fluencies, load_model, tokens, unfinished_ending
from tdm_dagster.gate.text_model.train import build
from tests.support.broken_replies import broken_corpus, questions
from tests.support.fixture_data import GSM8K, ROLEPLAY, SEED_TASKS

def _chat(prompt: str, reply: str, **metadata) -> dict:
    return {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": reply}], "metadata": metadata}


def _replies(path) -> list[str]:
    if path.suffix == ".jsonl":
        return [i["output"] for line in path.read_text().splitlines() for i in json.loads(line)["instances"]]
    return [r["output"] for r in json.loads(path.read_text())]


def _accepted(records: list[dict], config: TdmConfig) -> list[bool]:
    padding = [_chat(q.prompt, q.answer) for q in questions()[:200]]  # real chats, so the batch stands
    outcome = run_gate(GateInput.from_records(padding + records, "chat_sft_v1", "m"), config, level="standard")
    return [not [i for i in outcome.issues.get(200 + n, []) if i.rejects and i.code != "batch.rejected"] for n in range(len(records))]


def test_the_model_catches_salad_the_rules_miss_and_names_its_value():
    """Salad of the prompt's own words: the model rejects some the rules pass (measured 5
    of 50; all of them with the fluency floor at 0 pass it), each naming value and floor."""
    corpus = broken_corpus(40, seed=21)["salad_of_prompt_words"]
    records = [_chat(prompt, reply) for prompt, reply in corpus]
    padding = [_chat(q.prompt, q.answer) for q in questions()[:300]]  # real chats, so the batch stands
    caught = []
    for config in (TdmConfig(), replace(TdmConfig(), quality=QualitySettings(min_reply_fluency=0.0))):
        outcome = run_gate(GateInput.from_records(padding + records, "chat_sft_v1", "m"), config, level="standard")
        caught.append([i for n in range(300, 340) for i in outcome.issues.get(n, []) if i.code == "content.model_fluency"])
    with_model, without = caught
    assert len(with_model) >= 2 and without == []
    assert all(re.search(r"reply model fluency \(word pairs English writes\) 0\.\d{3}, rejected under 0\.7", issue.message) for issue in with_model)


@pytest.mark.parametrize("path", [GSM8K, ROLEPLAY, SEED_TASKS], ids=["gsm8k", "gpteacher", "seed_tasks"])
def test_real_replies_it_never_saw_are_fluent(path):
    """Measured: least fluency GSM8K 1.40, GPTeacher 1.75, seed tasks 0.89 (floor 0.7)."""
    judged = [value for value in fluencies(_replies(path)) if value is not None]
    assert len(judged) > 0.35 * len(_replies(path)) and min(judged) > QualitySettings().min_reply_fluency


def test_word_salad_scores_far_under_real_replies():
    """Salad of the 200 commonest words (the rules catch it too): 0-0.74, real held-out replies 0.89 and up."""
    salad = [reply for _, reply in broken_corpus(30, seed=23)["salad_500_words"]]
    assert max(fluencies(salad)) < QualitySettings().min_reply_fluency


def test_batch_tokens_are_each_replys_tokens():
    """The one-pass tokenizer of the speed work gives each reply's own tokens (decisions unchanged)."""
    model = load_model()
    texts = _replies(ROLEPLAY)[:300] + _replies(GSM8K)[:300] + ["a\x00b c", "", "Ünïcödé ’tis İstanbul 3.5! x?", "1,000.5 .50"]
    expected = []
    for text in texts:
        expected.extend(model.vocabulary.get(word, -1) for word in tokens(text))
        expected.append(-2)
    assert _batch_ids(texts) == expected


def test_the_model_ships_small_loads_offline_and_not_at_import(tmp_path):
    """The file is in the package (< 2 MB, its README names data and licences); a process
    whose sockets all fail loads and uses it; importing the code location does not."""
    assert MODEL_PATH.stat().st_size < 2_000_000
    readme = (MODEL_PATH.parent / "README.md").read_text()
    assert "GSM8K" in readme and "GPTeacher" in readme and "MIT" in readme
    offline = (
        "import socket\n"
        "def refuse(*a, **k): raise OSError('no network')\n"
        "socket.socket.connect = refuse; socket.create_connection = refuse; socket.getaddrinfo = refuse\n"
        "import tdm_dagster.definitions, sys\n"
        "assert 'tdm_dagster.gate.text_model.model' not in sys.modules, 'imported at code-location import'\n"
        "from tdm_dagster.gate.text_model.model import fluencies\n"
        "print(fluencies(['The cat sat on the mat, and then it went to the shop to buy some milk for all of us.'])[0])\n"
    )
    done = subprocess.run([sys.executable, "-c", offline], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout.strip().splitlines()[-1]) > 1.0


def test_training_is_deterministic():
    replies = _replies(ROLEPLAY)[:200]
    first, second = build(replies), build(replies)
    assert first.keys() == second.keys() and all((first[k] == second[k]).all() for k in first)


def test_cut_off_replies():
    """``metadata.finish_reason: length`` is an ERROR; an ending the model reads as
    unfinished is a WARNING (not a rejection: measured, an ERROR would cost real data 1 %),
    and it warns on about half of the replies cut off after a preamble."""
    prompt = questions()[5].prompt
    cut = _chat(prompt, "Let's work through it", finish_reason="length")
    padding = [_chat(q.prompt, q.answer) for q in questions()[10:70]]
    outcome = run_gate(GateInput.from_records([cut, *padding], "chat_sft_v1", "m"), TdmConfig(), level="standard")
    assert [i.code for i in outcome.issues[0] if i.rejects] == ["content.cut_off"]
    assert unfinished_ending("Let's look at each part of the") is not None
    assert unfinished_ending("Now we compute the averag") is not None
    assert unfinished_ending("So she has 18 apples.") is None and unfinished_ending("Best regards, John") is None
    truncated = broken_corpus(30, seed=22)["truncated_after_preamble"]
    assert sum(1 for _, reply in truncated if unfinished_ending(reply)) >= 12


def test_tiers_by_what_judged_a_reply():
    """Real records of each tier: a GSM8K answer verified against its reference is gold;
    a GPTeacher roleplay reply (no reference) the model judged is silver; a seed task's
    one-word answer nothing could judge is bronze; a narrow escape costs a tier."""
    gsm8k = json.loads(GSM8K.read_text())[0]
    roleplay = json.loads(ROLEPLAY.read_text())[0]
    seed = next(json.loads(line) for line in SEED_TASKS.read_text().splitlines() if len(json.loads(line)["instances"][0]["output"].split()) <= 3)
    records = [
        _chat(gsm8k["instruction"], gsm8k["output"], reference_answer="72"),
        _chat(roleplay["instruction"] + "\n" + roleplay["input"], roleplay["output"]),
        _chat(seed["instruction"] + "\n" + seed["instances"][0]["input"], seed["instances"][0]["output"]),
        _chat("What is the checksum of the file?", "The checksum is " + "e" * 90 + " and it matches the one that was "
              "published on the site, so the file you have is the same as the one they made."),
    ]  # fmt: skip
    padding = [_chat(q.prompt, q.answer) for q in questions()[10:70]]
    outcome = run_gate(GateInput.from_records(records + padding, "chat_sft_v1", "m"), TdmConfig(), level="standard")
    assert [tier(outcome.scores[n]) for n in range(4)] == ["gold", "silver", "bronze", "bronze"]
    assert [i.code for i in outcome.issues.get(3, [])] == ["content.near_broken"]
