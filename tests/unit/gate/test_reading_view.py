"""Invisible characters hide nothing: the gate judges each record's reading view (format
characters removed, NFKC) for leakage, duplicates and the text rules, flags bidi controls
and invisible characters inside words, and keeps the stored record's bytes.

Real GSM8K items (tests/data), disguised the two ways a generator or an adversary would:
a zero-width space between every character, and a soft hyphen inside every word.
"""

from __future__ import annotations

import copy
import json
import random
import re
from dataclasses import replace
from pathlib import Path

import pytest

from bench.bench_near_dup import edited_copy
from tdm_dagster.gate.scoring import WARNING_PENALTY
from tdm_dagster.config.settings import TdmConfig
from tdm_dagster.gate.deep import remember_queued
from tdm_dagster.gate.minhash import normalize_text
from tdm_dagster.gate.reading_view import hidden_character_issues, reading_view
from tdm_dagster.gate.run import GateInput, run_gate
from tdm_dagster.home import TdmHome
from tests.support.fixture_data import GSM8K
from tests.support.sharded_gate import sharded_and_in_process

LEVELS = ("quick", "standard", "deep")


def zero_width(text: str) -> str:
    """U+200B between every character."""
    return "\u200b".join(text)


def soft_hyphens(text: str) -> str:
    """U+00AD in the middle of every word of four letters or more."""
    return re.sub(r"[A-Za-z]{4,}", lambda word: f"{word[0][:2]}\u00ad{word[0][2:]}", text)


DISGUISES = {"zero_width": zero_width, "soft_hyphens": soft_hyphens}


def disguised(record: dict, disguise) -> dict:
    return {**record, "instruction": disguise(record["instruction"]), "output": disguise(record["output"])}


@pytest.fixture(scope="module")
def gsm8k() -> list[dict]:
    return json.loads(GSM8K.read_text(encoding="utf-8"))


def test_the_view_removes_format_characters_and_applies_nfkc_and_is_its_own_view() -> None:
    assert reading_view(zero_width("Natalia sold clips")) == "Natalia sold clips"
    assert reading_view(soft_hyphens("Natalia sold clips")) == "Natalia sold clips"
    assert reading_view("ｆｕｌｌ ﬁne \u2066x\u2069 \ufeffy") == "full fine x y"
    assert reading_view("plain ASCII stays as it is") == "plain ASCII stays as it is"
    text = "e\u200b\u0301 caf\u00ad\u00e9 \u202eabc"
    assert reading_view(reading_view(text)) == reading_view(text) == "\u00e9 caf\u00e9 abc"
    assert normalize_text(zero_width("Hello, World")) == normalize_text(soft_hyphens("Hello, World")) == "hello world"


@pytest.mark.parametrize("disguise", DISGUISES)
def test_disguised_eval_items_leak_at_every_level_where_the_plain_copy_does(gsm8k, tmp_path: Path, disguise: str) -> None:
    held_out = gsm8k[:30]
    eval_file = tmp_path / "held_out.json"
    eval_file.write_text(json.dumps(held_out), encoding="utf-8")
    config = replace(TdmConfig(), gate=replace(TdmConfig().gate, eval_sets=(str(eval_file),)))
    clean = gsm8k[100:160]
    for level in LEVELS:
        caught = {}
        for name, copies in (("plain", held_out), (disguise, [disguised(r, DISGUISES[disguise]) for r in held_out])):
            outcome = run_gate(GateInput.from_records([*clean, *copies], "instruction_v1", "b"), config, level=level)
            leaked = {p for p, found in outcome.issues.items() if any(i.code.startswith("leakage.") for i in found)}
            caught[name] = leaked
        assert caught["plain"] == set(range(60, 90)), level  # the plain copies are caught at every level
        assert caught[disguise] == caught["plain"], (level, len(caught[disguise]))


@pytest.mark.parametrize("disguise", DISGUISES)
def test_disguised_copies_are_exact_and_near_duplicates_as_the_plain_copies_are(gsm8k, disguise: str) -> None:
    rng = random.Random(4)
    originals = gsm8k[:40]
    hide = DISGUISES[disguise]
    plain = [dict(r) for r in originals[:10]] + [{**r, "output": edited_copy(r["output"], rng, 0.03)} for r in originals[10:20]]
    hidden = [disguised(r, hide) for r in plain]
    for level, exact_code in (("standard", "diversity.duplicate_example"), ("deep", "dedup.exact_duplicate")):
        codes = {}
        for name, copies in (("plain", plain), (disguise, hidden)):
            outcome = run_gate(GateInput.from_records([*originals, *copies], "instruction_v1", "b"), TdmConfig(), level=level)
            codes[name] = [sorted({i.code for i in outcome.issues.get(40 + k, []) if i.code.startswith(("dedup.", "diversity."))})
                           for k in range(len(copies))]  # fmt: skip
        assert all(exact_code in found for found in codes["plain"][:10]), codes["plain"]
        assert codes[disguise] == codes["plain"], level
    near = sum(found == ["dedup.near_duplicate"] for found in codes[disguise][10:])
    assert near >= 8, codes[disguise]  # the others' edits vanish in normalisation: exact copies


def test_disguised_copies_of_queued_data_are_duplicates_of_it(gsm8k, tmp_path: Path) -> None:
    home = TdmHome(tmp_path / "home")
    home.ensure()
    queued = GateInput.from_records(gsm8k[:20], "instruction_v1", "q")
    from tdm_dagster.gate.schemas import schema_gate

    remember_queued(home, "q", schema_gate(queued.records, queued.specs).conversations, 0.8)
    copies = [disguised(gsm8k[3], zero_width), disguised(gsm8k[7], soft_hyphens)]
    outcome = run_gate(GateInput.from_records(copies, "instruction_v1", "new"), TdmConfig(), level="deep", queued_in=home)
    assert [[i.message for i in outcome.issues[p] if i.code == "dedup.exact_duplicate_of_queued"] for p in (0, 1)] == [
        ["exact duplicate of queued q:4"], ["exact duplicate of queued q:8"]]  # fmt: skip


def test_bidi_controls_are_an_error_and_invisible_characters_inside_words_a_warning(gsm8k) -> None:
    def chat(reply: str, prompt: str = "Say something about the weather today.") -> dict:
        return {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": reply}]}

    records = [
        chat("The total is \u202e01$ yad rep\u202c and that is all."),  # Trojan Source: displays reversed
        chat("The wea\u200bther is fi\u200bne to\u00adday, with a light breeze from the west."),
        chat("Family: \U0001F468\u200d\U0001F469\u200d\U0001F467 \u2014 a fine day out in the sun for all of us."),  # emoji ZWJ
        chat("\ufeffThe weather is fine today, with a light breeze from the east."),  # a byte-order mark
        chat("In Persian, \u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 means I want, and it is spelled with a joiner."),
        chat("Hebrew reads right to left: \u05e9\u05dc\u05d5\u05dd\u200f, and needs no override for that at all."),
        chat("The weather is fine today, with a light breeze from the north.", prompt="Say some\u2067thing\u2069 nice."),
    ]
    records += [chat(r["output"], r["instruction"]) for r in gsm8k[:60]]  # a batch that passes
    stored = copy.deepcopy(records)
    outcome = run_gate(GateInput.from_records(records, "chat_sft_v1", "b"), TdmConfig(), level="standard")
    mine = {p: [(i.code, i.severity, i.message) for i in found if i.code.startswith("text.")] for p, found in outcome.issues.items()}
    mine = {p: found for p, found in mine.items() if found}
    assert mine[0] == [("text.bidi_control", "ERROR", "messages[1].content: 2 bidi control character(s), the first U+202E "
                        "(RIGHT-TO-LEFT OVERRIDE) at offset 13: what is displayed is not what is stored")]  # fmt: skip
    assert mine[1] == [("text.invisible_characters", "WARNING", "messages[1].content: 3 invisible character(s) inside words, "
                        "the first U+200B (ZERO WIDTH SPACE) at offset 7")]  # fmt: skip
    assert [code for code, _, _ in mine[6]] == ["text.bidi_control"] and "messages[0].content" in mine[6][0][2]
    assert set(mine) == {0, 1, 6}  # emoji joiners, a BOM, Persian joiners and Hebrew marks are not flagged
    assert outcome.batch_approved and set(outcome.rejected) == {0, 6}
    assert outcome.scores[1] == pytest.approx(outcome.scores[3] - WARNING_PENALTY)  # the warning costs a tier
    assert records == stored and json.dumps(records) == json.dumps(stored)  # the stored bytes are untouched


def test_text_rules_read_the_view(gsm8k) -> None:
    """A refusal or lorem ipsum spelled with zero-width spaces or full-width letters is
    the same text to a reader, and to the content rules."""
    records = [
        {"messages": [{"role": "user", "content": "Tell me a story."},
                      {"role": "assistant", "content": zero_width("As an AI language model, I cannot tell stories.")}]},
        {"messages": [{"role": "user", "content": "Fill this in."},
                      {"role": "assistant", "content": "ｌｏｒｅｍ ｉｐｓｕｍ dolor sit amet, consectetur adipiscing elit, sed do."}]},
    ]  # fmt: skip
    outcome = run_gate(GateInput.from_records(records, "chat_sft_v1", "b"), TdmConfig(), level="standard")
    assert "content.refusal_boilerplate" in [i.code for i in outcome.issues[0]]
    assert "content.lorem_ipsum" in [i.code for i in outcome.issues[1]]


def test_hidden_character_issues_name_the_first_turn_once_per_code() -> None:
    conversations = [[{"role": "user", "content": "a\u200bb c\u200bd"}, {"role": "assistant", "content": "e\u200bf \u202dx"}]]
    found = hidden_character_issues([5], conversations)
    assert [(i.code, i.field) for i in found[5]] == [("text.invisible_characters", "messages[0].content"),
                                                     ("text.bidi_control", "messages[1].content")]  # fmt: skip
    assert "2 invisible character(s)" in found[5][0].message and "offset 1" in found[5][0].message


def test_the_sharded_gate_catches_disguised_copies_as_the_in_process_gate_does(gsm8k, tmp_path: Path) -> None:
    """Sketch, shuffle and judge (what Ray runs), called in turn: the same view, so the
    same duplicates and leaks, across shards."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    eval_file = tmp_path / "held_out.json"
    eval_file.write_text(json.dumps(gsm8k[200:201]), encoding="utf-8")
    config = replace(TdmConfig(), gate=replace(TdmConfig().gate, eval_sets=(str(eval_file),)))
    shards = [gsm8k[:30], gsm8k[30:60] + [disguised(gsm8k[5], zero_width), disguised(gsm8k[200], soft_hyphens)]]
    paths = []
    for number, shard in enumerate(shards):
        paths.append(tmp_path / f"part-{number}.parquet")
        pq.write_table(pa.Table.from_pylist(shard), paths[-1])
    judged, in_process = sharded_and_in_process(paths, config, "deep")
    assert judged == in_process
    assert {"dedup.exact_duplicate", "diversity.duplicate_example"} <= {code for code, _ in judged["part-1.parquet:31"][1]}
    assert ("dedup.exact_duplicate", "exact duplicate of part-0.parquet:6") in judged["part-1.parquet:31"][1]
    assert {"leakage.ngram", "leakage.eval_prompt"} <= {code for code, _ in judged["part-1.parquet:32"][1]}
