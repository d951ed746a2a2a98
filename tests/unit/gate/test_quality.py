"""The quality suites with real GX validations and the real bundled tokenizer (no mocks).

One GX context and one tokenizer are shared by the whole module (both are per-process
singletons / module fixtures), which keeps the runtime to a few seconds after warm-up.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tdm_dagster.gate.quality import (
    SUITE_NAMES,
    QualitySettings,
    TokenCounter,
    build_report,
    run_quality,
)
from tests.support.fixture_data import GSM8K, ROLEPLAY

SETTINGS = QualitySettings()


@pytest.fixture(scope="module")
def counter() -> TokenCounter:
    return TokenCounter()


def chat(user: str, assistant: str, system: str | None = None) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system}] if system else []
    return messages + [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]


def good_batch(n: int = 40) -> list[list[dict[str, str]]]:
    """Distinct, well-formed arithmetic chats of a sensible length."""
    return [
        chat(f"What is {i} plus {i * 7 + 3}? Show the sum.", f"{i} + {i * 7 + 3} = {i * 8 + 3}. The answer is {i * 8 + 3}.",
             system="You are a careful maths tutor." if i % 3 == 0 else None)
        for i in range(n)
    ]  # fmt: skip


def run(batch, counter, names=SUITE_NAMES, settings=SETTINGS):
    return run_quality(batch, settings, names, counter=counter)


def test_good_batch_passes_every_suite(counter):
    results = run(good_batch(), counter)
    assert list(results) == list(SUITE_NAMES)
    for name, result in results.items():
        assert result.passed, (name, result.details)
        assert result.pass_rate == 1.0 and not result.failed_records


def test_real_gsm8k_sample_passes(counter):
    rows = json.loads(GSM8K.read_text())[:500]
    results = run([chat(r["instruction"], r["output"]) for r in rows], counter)
    assert all(result.passed for result in results.values()), {n: r.details for n, r in results.items()}


def only_issue(result, record):
    issues = result.failed_records[record]
    assert len(issues) == 1, issues
    return issues[0]


def test_format_names_bad_role_and_non_alternation(counter):
    batch = good_batch()
    batch[3] = [{"role": "user", "content": "Hello there"}, {"role": "bot", "content": "Hi, how can I help?"}]
    batch[5] = [{"role": "user", "content": "One question"}, {"role": "user", "content": "and another"},
                {"role": "assistant", "content": "Both answered."}]  # fmt: skip
    batch[7] = [{"role": "user", "content": "Say something"}, {"role": "assistant", "content": ""}]
    result = run(batch, counter, ["format"])["format"]
    assert not result.passed and result.pass_rate == pytest.approx(37 / 40)
    bad_role = only_issue(result, 3)
    assert (bad_role.code, bad_role.field) == ("format.bad_role", "messages[1].role")
    assert bad_role.message == "messages[1].role: 'bot' is not one of system, user, assistant"
    assert only_issue(result, 5).code == "format.not_alternating"
    assert only_issue(result, 5).field == "messages[1].role"
    assert (only_issue(result, 7).code, only_issue(result, 7).field) == ("format.empty_content", "messages[1].content")
    assert set(result.failed_records) == {3, 5, 7}


def test_a_few_bad_records_are_rejected_while_the_suite_passes(counter):
    batch = good_batch(100)
    batch[10] = [{"role": "assistant", "content": "I speak first, which is wrong."}]
    result = run(batch, counter, ["format"])["format"]
    assert result.passed and result.pass_rate == pytest.approx(0.99)
    assert only_issue(result, 10).code == "format.not_alternating"


def test_length_uses_real_token_counts(counter):
    batch = good_batch()
    # "This\nthe" is 8 bytes (bounds 1..8 straddle min_tokens), so it needs the exact count.
    batch[1], batch[2], batch[4] = chat("This", "the"), chat("2", "4"), chat("Write a lot.", "word " * 5000)
    assert counter.count(["This\nthe", "2\n4"]) == [3, 3]
    assert counter.count(["Write a lot.\n" + "word " * 5000])[0] > SETTINGS.max_tokens
    result = run(batch, counter, ["length"])["length"]
    assert not result.passed
    issue = only_issue(result, 1)
    assert (issue.code, issue.field) == ("length.too_short", "messages")
    assert issue.message == "messages: 3 tokens is below min_tokens 4"
    assert only_issue(result, 2).code == "length.too_short"
    assert only_issue(result, 4).code == "length.too_long"
    assert "above max_tokens 4096" in only_issue(result, 4).message
    assert set(result.failed_records) == {1, 2, 4}


def test_diversity_fails_on_half_duplicate_responses(counter):
    batch = good_batch()
    for i in range(0, 40, 2):
        batch[i] = chat(f"Question number {i}: what colour is the sky?", "The sky is blue on a clear day.")
    result = run(batch, counter, ["diversity"])["diversity"]
    assert not result.passed
    assert result.observed["diversity.unique_responses"] == pytest.approx(21 / 40)
    assert result.failed_records == {}  # same responses, different questions: no exact duplicates


def test_diversity_rejects_exact_duplicate_examples(counter):
    batch = good_batch()
    batch[9] = batch[2]
    result = run(batch, counter, ["diversity"])["diversity"]
    issue = only_issue(result, 9)
    assert issue.code == "diversity.duplicate_example"
    assert issue.message == "messages: exact duplicate of record 2"


def test_balance_fails_on_unbalanced_turns(counter):
    batch = good_batch()
    for i in range(5):
        batch[i] = [{"role": "user", "content": "First part of the question."},
                    {"role": "user", "content": "Second part of the question."},
                    {"role": "assistant", "content": "One answer to both parts."}]  # fmt: skip
    result = run(batch, counter, ["balance"])["balance"]
    assert not result.passed
    issue = only_issue(result, 0)
    assert (issue.code, issue.field) == ("balance.turn_ratio", "messages")
    assert "1 assistant to 2 user turns" in issue.message
    assert result.observed["assistant_user_ratio"] == pytest.approx(40 / 45)


@pytest.mark.parametrize(
    ("assistant", "code"),
    [
        ("As an AI language model, I cannot have opinions about that.", "content.refusal_boilerplate"),
        ("Dear {{customer_name}}, thank you for your order.", "content.template_placeholder"),
        ("Lorem ipsum dolor sit amet, consectetur adipiscing elit.", "content.lorem_ipsum"),
        ("   \n\t ", "content.blank_turn"),
        ("Broken text \ufffd\ufffd here.", "content.replacement_char"),
        ("Bell \x07 character.", "content.control_char"),
        ("I love pizza so much. " * 40, "content.gopher_top_2gram"),
        ("Same line again\n" * 6 + "and a final different line", "content.gopher_dup_lines"),
    ],
)
def test_content_flags_the_offending_turn(counter, assistant, code):
    batch = good_batch()
    for i in (4, 8, 12):
        batch[i] = chat(f"Please answer question {i} for me.", assistant)
    result = run(batch, counter, ["content"])["content"]
    assert not result.passed and result.pass_rate == pytest.approx(37 / 40)
    issue = only_issue(result, 8)
    assert (issue.code, issue.field) == (code, "messages[1].content")
    assert issue.message.startswith("messages[1].content: ")


def test_roleplay_data_is_not_flagged_as_repetitive(counter):
    """The roleplay set is long and stylistically repetitive, but it is good data."""
    rows = json.loads(ROLEPLAY.read_text())
    content = run([chat(r["instruction"], r["output"]) for r in rows], counter, ["content"])["content"]
    assert content.passed and content.pass_rate > 0.99


def test_report_shape_and_json(counter):
    batch = good_batch()
    for i in range(3):
        batch[i] = chat(f"{i}", "the")
    report = build_report(run(batch, counter))
    assert set(report) == {"total_checks", "passed_checks", "failed_checks", "overall_pass", "recommendation", "results"}
    assert report["total_checks"] == 5 and report["failed_checks"] == 1 and not report["overall_pass"]
    assert report["recommendation"] == "reject: failed length"
    assert list(report["results"]) == list(SUITE_NAMES)
    length = report["results"]["length"]
    assert length["passed"] is False
    details = length["details"]
    assert details["pass_rate"] == pytest.approx(37 / 40)
    assert details["thresholds"]["length.too_short"]["min_value"] == 4
    assert details["samples"][0] == {"record": 0, "code": "length.too_short", "field": "messages",
                                     "reason": "messages: 3 tokens is below min_tokens 4"}  # fmt: skip
    json.dumps(report, allow_nan=False)
    assert build_report(run(good_batch(), counter))["recommendation"] == "approve"


def test_empty_batch_gives_a_clear_result(counter):
    results = run([], counter)
    assert all(not r.passed and r.details["reason"].startswith("empty batch") for r in results.values())
    assert build_report(results)["recommendation"] == "reject: failed format, length, diversity, balance, content"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"min_pass_rate": 1.5}, "quality.min_pass_rate: 1.5 is not between 0 and 1"),
        ({"min_tokens": 0}, "quality.min_tokens: 0 is not a whole number >= 1"),
        ({"max_tokens": 2}, "quality.max_tokens: 2 is below min_tokens 4"),
        ({"balance_tolerance": "a lot"}, "quality.balance_tolerance: 'a lot' is not between 0 and 1"),
        ({"top_ngram_char_fracs": {1: 0.2}}, "quality.top_ngram_char_fracs: key 1 is not an n-gram size from 2 to 64"),
        ({"min_token": 4}, "quality.min_token: unknown setting; allowed: tokenizer_path, min_tokens"),
    ],
)
def test_settings_validation_names_key_value_and_rule(values, message):
    with pytest.raises(ValueError) as error:
        QualitySettings.from_mapping(values)
    assert str(error.value).startswith(message)


def test_settings_from_mapping_accepts_yaml_style_values():
    settings = QualitySettings.from_mapping({"max_tokens": 2048, "top_ngram_char_fracs": {"2": 0.25}})
    assert settings.max_tokens == 2048 and dict(settings.top_ngram_char_fracs) == {2: 0.25}


def test_unloadable_tokenizer_names_the_path(tmp_path):
    with pytest.raises(ValueError, match=str(tmp_path)):
        TokenCounter(str(tmp_path)).count(["hello"])


def test_byte_bounds_hold_on_real_data(counter):
    texts = []
    for path in (GSM8K, ROLEPLAY):
        for row in json.loads(path.read_text()):
            texts += [row["instruction"], row["output"], f"{row['instruction']}\n{row['output']}"]
    texts += ["é" * 50, "日本語のテキスト" * 20, "🙂" * 30, "<|im_end|>" * 5, " " * 40, "a"]
    low, high = counter.byte_bounds(texts)
    exact = np.asarray(counter.count(texts))
    assert ((low <= exact) & (exact <= high)).all()


def test_quality_import_is_light():
    code = (
        "import sys, tdm_dagster.gate.quality\n"
        "print([m for m in ('great_expectations', 'transformers', 'torch') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[3])  # fmt: skip
    assert out.stdout.strip() == "[]"
