"""Is each reply language? Gibberish is rejected, real data and short answers are not,
and a verifier's decision is never overruled (real gate runs, real language identifier)."""

import random

import pytest

from tdm_dagster.config.quality import QualitySettings
from tdm_dagster.config.settings import TdmConfig
from tdm_dagster.gate.run import GateInput, run_gate
from tdm_dagster.gate.text_quality import text_quality_issues
from tdm_dagster.gate.validate_file import validate_file
from tdm_dagster.generate.generators import get_generator
from tests.support.fixture_data import GSM8K, ROLEPLAY, SEED_TASKS
from tests.support.gibberish import chat, tiny_model_gibberish

def codes(replies, settings=QualitySettings()):
    convs = [chat(r)["messages"] for r in replies]
    found = text_quality_issues(range(len(convs)), convs, settings)
    return [[i.code for i in found.get(n, [])] for n in range(len(replies))]


def test_tiny_model_gibberish_is_rejected_with_a_located_reason():
    rng = random.Random(3)
    replies = [tiny_model_gibberish(rng) for _ in range(100)] + ["family sail2 ham2per comisealbilot pra12 famous dapfo"]
    found = codes(replies)
    assert all(found), [r for r, c in zip(replies, found) if not c][:3]
    assert {c for cs in found for c in cs} <= {"content.mixed_alnum_words", "content.no_stop_words"}
    outcome = run_gate(GateInput.from_records([chat(r) for r in replies], "chat_sft_v1", "b"), TdmConfig(), level="standard")
    assert not outcome.approved_indices
    [issue] = [i for i in outcome.rejected[100] if i.code == "content.mixed_alnum_words"]
    assert issue.field == "messages[1].content" and "sail2" in issue.message and issue.suggestion


def test_word_salad_without_digits_is_rejected_but_lists_code_and_short_answers_pass():
    salad = "comisealbilot dapfo xyzzy plugh frobnicate stuff orange"
    legit = [
        "4", "Paris", "yes, at 5pm", "The answer is 18.", "Positive",
        "Vegetables: carrots, celery, broccoli, cauliflower, spinach, kale, tomatoes",
        "def reverse_sort(lst):\n    return sorted(lst, reverse=True)",
        "Altogether, Jim has 200g + 100g + 100g = 400g of flour.",
        "while l1 or l2 or carry: carry, out = step(l1, l2, carry)",
        "Naruto -> Naruto\nNippon -> Japan\nMasashi -> Masashi Kishimoto",
    ]
    found = codes([salad, *legit])
    assert found[0] == ["content.no_stop_words"]
    # kept; the code line (2 of 6 words mix letters and digits, 0.33 of 0.34) passes narrowly: a margin WARNING
    assert found[1:] == [[]] * 8 + [["content.near_mixed_alnum"]] + [[]]


def test_other_languages_pass_unless_quality_languages_says_otherwise():
    german = "Der Hund läuft schnell über die Straße und bellt laut."
    salad_like_german = "Hund Katze Maus Haus Baum Garten Blume Sonne"  # no English stop word, yet German
    assert codes([german, salad_like_german]) == [[], []]
    assert codes([german, "The dog runs fast across the street."], QualitySettings(languages=["en"])) == [
        ["content.unexpected_language"], []
    ]


def test_a_verifier_is_not_overruled_by_the_heuristics():
    """A SYLLO answer is a list of words with no stop word: right per its verifier, kept;
    the same reply with no reference to check is judged as text, and rejected."""
    [record] = get_generator("syllo").generate(3, 1, 5)
    reply = " ".join(record["metadata"]["answer"])  # the six hidden words, in clue order, one line
    record["messages"][-1]["content"] = reply
    outcome = run_gate(GateInput.from_records([record], "chat_sft_v1", "b"), TdmConfig(), level="standard")
    assert outcome.approved_indices == [0], outcome.rejected
    assert outcome.answers[0].correct
    unreferenced = chat(reply)
    outcome = run_gate(GateInput.from_records([unreferenced], "chat_sft_v1", "b"), TdmConfig(), level="standard")
    assert "content.no_stop_words" in [i.code for i in outcome.rejected[0]]


@pytest.mark.parametrize("path", [GSM8K, ROLEPLAY, SEED_TASKS], ids=["gsm8k", "gpteacher", "seed_tasks"])
def test_real_data_keeps_at_least_99_percent_at_standard(path):
    totals = validate_file(path, TdmConfig(), level="standard")["totals"]
    assert totals["accepted"] / totals["records"] >= 0.99, totals


def test_bad_language_settings_are_refused_at_load():
    with pytest.raises(ValueError, match="'xx' not ISO 639-1"):
        QualitySettings(languages=["xx"])
    with pytest.raises(ValueError, match="not a list"):
        QualitySettings(languages="en")


def test_pathological_replies_are_judged_in_linear_time():
    """A 2 MB reply without a space (the run pattern once tried every offset inside it:
    hours at this size) and 200,000 glued words; pytest's timeout fails a relapse."""
    huge_word = "a" * 2_000_000 + " b c"
    glued = " ".join(["x1"] * 200_000)
    assert codes([huge_word, glued]) == [["content.long_token"], ["content.mixed_alnum_words"]]
