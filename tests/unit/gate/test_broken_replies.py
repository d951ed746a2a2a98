"""Replies broken the way generators break them are rejected per record at `standard`,
each naming its rule, value and threshold; a narrow pass warns and costs a tier; real
data keeps its replies (real gate runs on real GSM8K questions, a corpus built here)."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from tdm_dagster.config.quality import QualitySettings
from tdm_dagster.config.settings import TdmConfig
from tdm_dagster.gate.broken_replies import MEASURES, broken_reply
from tdm_dagster.gate.run import GateInput, run_gate
from tdm_dagster.gate.scoring import tier
from tdm_dagster.gate.validate_file import validate_file
from tdm_dagster.generate.generators import get_generator
from tests.support.broken_replies import KINDS, KNOWN_MISSES, broken_corpus, questions
from tests.support.fixture_data import GSM8K, ROLEPLAY, SEED_TASKS

PER_KIND = 20
MOST_ACCEPTED = 0.10
BROKEN_CODES = {*MEASURES, "content.chat_template_token"}
"""The broken-reply rules' codes, ``content.few_stop_words`` (judged with the language) among them."""


def _chat(prompt: str, reply: str, **metadata) -> dict:
    return {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": reply}], "metadata": metadata}


@pytest.fixture(scope="module")
def judged() -> dict[str, list[list]]:
    """Every kind's records gated in one `standard` run: the issues that reject each one
    on its own (the batch itself fails for so many bad records; that is not counted)."""
    corpus = broken_corpus(PER_KIND, seed=20)
    records = [_chat(prompt, reply) for replies in corpus.values() for prompt, reply in replies]
    outcome = run_gate(GateInput.from_records(records, "chat_sft_v1", "broken"), TdmConfig(), level="standard")
    own = [[i for i in outcome.issues.get(n, []) if i.rejects and i.code != "batch.rejected"] for n in range(len(records))]
    return {kind: own[k * PER_KIND : (k + 1) * PER_KIND] for k, kind in enumerate(corpus)}


@pytest.mark.parametrize("kind", [kind for kind in KINDS if kind not in KNOWN_MISSES])
def test_each_broken_kind_is_rejected_per_record(judged, kind):
    accepted = sum(1 for issues in judged[kind] if not issues)
    assert accepted / PER_KIND <= MOST_ACCEPTED, (kind, accepted, Counter(i.code for issues in judged[kind] for i in issues))


@pytest.mark.parametrize("kind", sorted(KNOWN_MISSES))
def test_known_misses_are_still_missed(judged, kind):
    """The corpus keeps kinds no rule catches yet (README says why): when one is caught,
    move it out of ``KNOWN_MISSES`` so that the test above holds it."""
    assert sum(1 for issues in judged[kind] if not issues) / PER_KIND > MOST_ACCEPTED


def test_a_rejection_names_its_rule_value_and_threshold(judged):
    settings = QualitySettings()
    thresholds = {
        "content.long_token": settings.max_token_chars, "content.symbol_ratio": settings.max_symbol_ratio,
        "content.unpronounceable_words": settings.max_vowelless_words, "content.word_salad": settings.max_ungrammatical_pairs,
        "content.short_loop": settings.max_loop_share, "content.prompt_echo": settings.max_prompt_echo,
        "content.foreign_script": settings.max_foreign_script_ratio,
    }  # fmt: skip
    floors = {"content.few_stop_words": settings.min_stop_word_ratio}
    seen = {}
    for records in judged.values():
        for issue in (issue for issues in records for issue in issues):
            if issue.code in BROKEN_CODES:
                seen.setdefault(issue.code, issue)
    assert set(thresholds) | set(floors) | {"content.mean_word_length", "content.chat_template_token"} <= set(seen)
    for code, threshold in floors.items():
        assert re.search(rf"{re.escape(MEASURES[code])} [\d.]+, rejected under {threshold:g}:", seen[code].message), seen[code].message
    for code, threshold in thresholds.items():
        issue = seen[code]
        assert issue.field == "messages[1].content" and issue.suggestion
        assert re.search(rf"{re.escape(MEASURES[code])} [\d.]+(?: \(in .*?\))?, rejected over {threshold:g}:", issue.message), issue.message
    assert re.search(r"mean word length [\d.]+.*, rejected (over 20|under 1.5)", seen["content.mean_word_length"].message)
    assert "'<|" in seen["content.chat_template_token"].message or "'</s>'" in seen["content.chat_template_token"].message


@pytest.mark.parametrize("path", [GSM8K, ROLEPLAY, SEED_TASKS], ids=["gsm8k", "gpteacher", "seed_tasks"])
def test_real_data_loses_no_reply_to_the_broken_reply_rules(path):
    """Measured on these subsets: none of 1,500 GSM8K, 1,000 GPTeacher, 175 seed-task
    records breaks a broken-reply rule, and none passes one narrowly (4 of the full 7,473
    GSM8K do)."""
    report = validate_file(path, TdmConfig(), level="standard")
    broken = [issue for issue in report["issues"] if issue["code"] in BROKEN_CODES]
    assert broken == []
    assert report["totals"]["accepted"] / report["totals"]["records"] >= 0.99, report["totals"]
    warned = {issue["line"] for issue in report["issues"] if issue["code"] == "content.near_broken"}
    assert len(warned) <= 0.002 * report["totals"]["records"] + 1


def _gate(records: list[dict]) -> list[tuple[float | None, list]]:
    """``records`` after 60 real GSM8K chats, so one rejection does not sink the batch."""
    padding = [_chat(q.prompt, q.answer) for q in questions()[:60]]
    outcome = run_gate(GateInput.from_records(padding + records, "chat_sft_v1", "m"), TdmConfig(), level="standard")
    assert outcome.batch_approved, outcome.report["recommendation"]
    return [(outcome.scores.get(60 + i), outcome.issues.get(60 + i, [])) for i in range(len(records))]


def test_a_narrow_pass_warns_and_costs_a_tier():
    """A 90-character token passes ``max_token_chars`` (100) narrowly (over 0.8 of it):
    kept with ``content.near_broken``, one tier lower; 40 characters: clean (silver: the
    reply model read it, no verifier did); 120: rejected."""
    prompt = "What is the checksum of the file?"
    reply = "The checksum is {} and it matches the one that was published on the site, so the file you have is the same as the one they made."
    (clean, clean_issues), (near, near_issues), (_, over_issues) = _gate(
        [_chat(prompt, reply.format("f" * 40)), _chat(prompt, reply.format("e" * 90)), _chat(prompt, reply.format("d" * 120))]
    )
    assert clean_issues == [] and tier(clean) == "silver"
    [warning] = near_issues
    assert warning.code == "content.near_broken" and warning.severity == "WARNING" and tier(near) == "bronze"
    assert "longest run of characters without a space rule narrowly: 90.000, rejected over 100 (margin from 80)" in warning.message
    assert [i.code for i in over_issues if i.rejects] == ["content.long_token"]


def test_a_floor_is_passed_narrowly_under_its_threshold_over_near():
    """Mean word length is a floor (1.5): 1.6 passes narrowly (under 1.5 / 0.8), 1.2 breaks it."""
    settings = QualitySettings()
    broken, near = broken_reply("I a go to be me so we I a", "Say something.", settings)  # 16 letters / 10 words
    assert broken is None and near is not None and near.code == "content.mean_word_length" and near.floor
    broken, _ = broken_reply("I a I o a I u I a e", "Say something.", settings)
    assert broken is not None and broken.code == "content.mean_word_length" and broken.value < 1.5


def test_verified_replies_are_judged_too_and_real_generators_pass():
    """The right answer followed by junk is right per its verifier, and still rejected;
    the builtin generators' (verified) replies keep passing."""
    q = questions()[0]
    junk = " ".join(["xkcdq", "brrtz", "pfffst", "grrmph", "zzzkt", "cllmn"])
    outcome = run_gate(
        GateInput.from_records([_chat(q.prompt, q.answer + " " + junk, reference_answer=q.final_number)], "chat_sft_v1", "v"),
        TdmConfig(), level="standard",
    )  # fmt: skip
    assert outcome.answers[0].correct
    assert "content.unpronounceable_words" in [i.code for i in outcome.rejected[0]]
    for skill in ("syllo", "binary"):
        records = get_generator(skill).generate(3, 40, 7)
        outcome = run_gate(GateInput.from_records(records, "chat_sft_v1", skill), TdmConfig(), level="standard")
        flagged = [i for found in outcome.issues.values() for i in found if i.code in BROKEN_CODES | {"content.near_broken"}]
        assert flagged == [], flagged[:3]


def test_other_scripts_pass_where_the_prompt_asks_for_them():
    settings = QualitySettings()
    russian = "Доброе утро, как у тебя дела сегодня? Надеюсь, что всё хорошо."
    for prompt in ("Translate into the other language: good morning, how are you today?", "Reply in Russian: good morning!", "Привет! Как дела?"):
        assert broken_reply(russian, prompt, settings) == (None, None), prompt
    broken, _ = broken_reply(russian, "How are you today?", settings)
    assert broken is not None and broken.code == "content.foreign_script" and broken.value == 1.0


def test_scripts_written_without_spaces_are_not_one_long_word():
    chinese = "她周一去了学校但是却发现没有其他的同学所以她意识到这个周一实际上是国家假日" * 4 + "。"
    thai = "ภาษาไทยเขียนติดกันโดยไม่เว้นวรรคระหว่างคำซึ่งเป็นเรื่องปกติของภาษานี้" * 3
    assert broken_reply(chinese, "她周一为什么没有上课？", QualitySettings()) == (None, None)
    assert broken_reply(thai, "เล่าเรื่องภาษาไทยให้ฟังหน่อย", QualitySettings()) == (None, None)


def test_format_characters_separate_words():
    """Salad glued with zero-width spaces reads as salad, not as one long token; a long word
    split by them is not a long token."""
    settings = QualitySettings()
    [(prompt, reply)] = broken_corpus(1, seed=3)["salad_zero_width_joined"]
    assert broken_reply(reply, prompt, settings)[0].code == "content.word_salad"
    glued = "\u200b".join("Every morning the old fisherman walked down to the harbour and counted his boats twice before he sat down".split())
    assert len(glued) > settings.max_token_chars and broken_reply(glued, "Tell me about the fisherman.", settings) == (None, None)


def test_thresholds_are_bounded_config():
    with pytest.raises(ValueError, match="quality.max_token_chars: 0 is not a whole number >= 1"):
        QualitySettings(max_token_chars=0)
    with pytest.raises(ValueError, match="quality.max_loop_share: 1.5 is not between 0 and 1"):
        QualitySettings(max_loop_share=1.5)
    url = "https://example.com/" + "a" * 300
    assert broken_reply(f"The file is at {url} for download.", "Where is the file?", QualitySettings())[0] is None
    relaxed = QualitySettings.from_mapping({"max_token_chars": 5000})
    assert broken_reply("x" * 3000 + " is the key.", "Key?", relaxed)[0] is None


def test_the_corpus_is_deterministic():
    assert json.dumps(broken_corpus(3, seed=1)) == json.dumps(broken_corpus(3, seed=1))
    assert broken_corpus(3, seed=1) != broken_corpus(3, seed=2)


def test_stop_words_scale_with_length_in_english_only():
    """A 26-word run with one stop word passes the old rule (not zero) but not the scaled
    one; English prose (3 in 28) passes; a German run with no English stop word is German."""
    from tdm_dagster.gate.text_quality import text_quality_issues

    english = ("Quarterly revenue figures showed strong growth across regional markets with northern stores "
               "reporting record sales and southern branches posting steady gains despite rising costs and bad weather")
    junk = english.replace(" and ", " ").replace(" with ", " ") + " again of"  # one stop word in 26 words
    german = ("Der kleine Hund läuft jeden Morgen schnell über die breite Straße zum alten Park und bellt dort laut "
              "bis alle Vögel aus den Bäumen davonfliegen")
    convs = [_chat("Summarise the report.", text)["messages"] for text in (english, junk, german)]
    found = text_quality_issues(range(3), convs, QualitySettings())
    assert 0 not in found and 2 not in found, found
    [issue] = found[1]
    assert issue.code == "content.few_stop_words" and "rejected under 0.04" in issue.message


def test_judging_a_reply_whole_measures_as_the_tail_loop_does(monkeypatch):
    """The speed work judges a reply whole, without the tail loop, where no tail could
    come near a threshold: the values are those the loop gives for one segment, the
    whole reply (every real fixture reply and broken one without many symbols), and the
    verdicts those of cutting every reply into its tails."""
    import tdm_dagster.gate.broken_replies as rules

    settings = QualitySettings()
    pairs = [(q.answer, q.prompt) for q in questions()]
    pairs += [(r["output"], r["instruction"]) for r in json.loads(ROLEPLAY.read_text())[:400]]
    pairs += [(reply, prompt) for replies in broken_corpus(5, seed=24).values() for prompt, reply in replies]
    few_symbols = settings.near_threshold * settings.max_symbol_ratio * 4 * settings.reply_min_words
    pairs = [(reply, prompt) for reply, prompt in pairs if len(rules._SYMBOL.findall(reply)) <= few_symbols]
    whole = [list(rules._ratios(reply, 0, frozenset(), settings)) for reply, _ in pairs]
    verdicts = [broken_reply(reply, prompt, settings) for reply, prompt in pairs]

    class OneSegment:
        @staticmethod
        def findall(text: str) -> list[str]:
            return [text]

    ratios = rules._ratios
    monkeypatch.setattr(rules, "_SEGMENT", OneSegment)
    assert [list(ratios(reply, 10**9, frozenset(), settings)) for reply, _ in pairs] == whole
    monkeypatch.undo()
    monkeypatch.setattr(rules, "_ratios", lambda text, _longest, foreign, s: ratios(text, 10**9, foreign, s))
    assert [broken_reply(reply, prompt, settings) for reply, prompt in pairs] == verdicts
