"""The reply rules' fast paths measure what the plain definitions measure, on every text
of a varied corpus: the real public sets, the broken-reply corpus, generated chats and
texts made to hit each fast path's edge (Unicode case folding, odd whitespace, template
tokens, plain runs of every length). The plain definitions live here as the reference."""

from __future__ import annotations

import json
import re
from collections import Counter
from functools import lru_cache

import pytest

from tdm_dagster.config.quality import QualitySettings
from tdm_dagster.gate import broken_replies, reply_words, text_quality
from tdm_dagster.gate.text_model import model as text_model
from tdm_dagster.gate.broken_replies import _TEMPLATE_TOKEN
from tdm_dagster.gate.reply_words import EDGE_PUNCTUATION as _EDGE_PUNCTUATION, SALAD_PAIR as _SALAD_PAIR
from tdm_dagster.generate.generators import SKILLS
from tests.support.broken_replies import broken_corpus
from tests.support.fixture_data import GSM8K, ROLEPLAY, SEED_TASKS

SETTINGS = QualitySettings()
TIGHT = QualitySettings.from_mapping({"max_mean_word_length": 8, "max_symbol_ratio": 0.1, "max_loop_share": 0.2, "max_prompt_echo": 0.3})
"""Thresholds that many real replies come near: the margins and their bounds are exercised."""

EDGE_CASES = [
    "",
    " ",
    "the of the the the",
    "The Of THE the\tof\x1cof\x1fand and",
    "ThE tHe It and And aND",
    "ſ its of Its of",  # the long s folds to "s" in the regex, not in str.lower
    "ſ the an an",
    "\u212a the Kelvin sign its \u212a",
    "my  your\n\nour their  its his is",
    "your and, the. of of, the the",
    "«the» of the\u00a0of the\u2003the",
    "a a a a an an at at on on in in",
    "I think the the answer is 5",
    "x" * 200,
    "<|im_end|>",
    "answer </s>",
    "[INST] hi [/INST]",
    "<<SYS>>",
    "## Instruction: do it",
    "### Response:",
    "#1 is # and <b> and [1]",
    "word " * 25,
    "a1 b2 c3 d4 e5 f6 g7 h8 the",
    "a1 b2 c3 d4 e5",
    "a1 b2 c3 d4 e5 f6",
    " ".join(f"w{i}" for i in range(19)) + "\n" + " ".join(f"w{i}" for i in range(20)),
    " ".join(["alpha"] * 21) + ". " + " ".join(["the"] * 30),
    "x_a b c d e f g h i j k l m n o p q r s t u v w x y z",
    "²3 ²3 ²3 ²3 ²3 ²3 ²3",
    "ab١٢ cd٣ ef gh ij kl mn",
    "Ünïcödé wörds änd the öf thé",
    "https://example.com/a-b the of the",
    "'quoted' \"words\" (in) [brackets] -- --- ... !!!",
    "İS THE İS of İ",
    "The answer is 5. " + "internationalization characteristically " * 6,
    "Short words here. Then: " + " ".join(["abcdefghijklmnop"] * 7),
    "a b c d e f " + "quintessentially " * 3 + "x y z",
    "ok: " + "%%%% ^^^^ " * 20,
]


@lru_cache(maxsize=1)
def _pairs() -> list[tuple[str, str]]:
    """(prompt, reply) pairs: real, broken, generated and made up."""
    pairs = [("", text) for text in EDGE_CASES] + [("Say it in English.", text) for text in EDGE_CASES]
    for path, most in ((GSM8K, None), (ROLEPLAY, 600)):
        rows = json.loads(path.read_text())[:most]
        pairs += [(row["instruction"] + ("\n" + row["input"] if row["input"] else ""), row["output"]) for row in rows]
    for line in SEED_TASKS.read_text().splitlines():
        task = json.loads(line)
        pairs += [(task["instruction"] + "\n" + i["input"], i["output"]) for i in task["instances"]]
    pairs += [pair for kind in broken_corpus(10, seed=21).values() for pair in kind]
    for generator in SKILLS.values():
        for example in generator.generate(generator.max_level, 20, 21):
            pairs.append((example["messages"][-2]["content"], example["messages"][-1]["content"]))
    return pairs


@lru_cache(maxsize=1)
def _corpus() -> list[str]:
    return [text for pair in _pairs() for text in pair]


def _reference_tokens(text: str) -> list[str]:
    return [t for t in (token.strip(_EDGE_PUNCTUATION) for token in text.lower().split()) if t]


def _reference_repeated_share(words: list[str], n: int) -> float:
    seen: set[tuple[str, ...]] = set()
    covered = [False] * len(words)
    for index, gram in enumerate(zip(*(words[i:] for i in range(n)))):
        if gram in seen:
            covered[index : index + n] = [True] * n
        else:
            seen.add(gram)
    return sum(covered) / len(words)


def _reference_counts(segment: str, foreign: frozenset[str], symbols: int | None = None) -> broken_replies._Counts:
    words = [
        token.strip(_EDGE_PUNCTUATION)
        for token in broken_replies._LETTERED_TOKEN.findall(broken_replies._unspaced_blanked(segment))
        if "://" not in token
    ]
    letters = broken_replies._LETTER.findall(segment) if foreign else ()
    return broken_replies._Counts(
        len(words), sum(map(len, words)), sum(map(len, segment.split())),
        len(broken_replies._SYMBOL.findall(segment)) if symbols is None else symbols,
        len(letters), sum(1 for c in letters if broken_replies._script(c) in foreign),
    )  # fmt: skip


def _reference_stop_share(text: str, run_words: int) -> float | None:
    least = None
    for run in _reference_run(run_words).finditer(text):
        words = run.group().lower().split(" ")
        share = sum(1 for word in words if word in text_quality.STOP_WORDS) / len(words)
        least = share if least is None else min(least, share)
    return least


def _reference_mixed_share(text: str, min_words: int) -> float:
    def share(run: str) -> float:
        words = run.split(" ")
        return sum(1 for w in words if re.search(r"[^\W\d_]", w) and re.search(r"\d", w)) / len(words)

    return max((share(run.group()) for run in _reference_run(min_words).finditer(text)), default=0.0)


def _reference_run(words: int) -> re.Pattern[str]:
    return re.compile(rf"(?<![^\W_])[^\W_]+(?: [^\W_]+){{{words - 1},}}")


def test_the_corpus_is_varied():
    texts = _corpus()
    assert len(texts) > 3000
    assert sum(not t.isascii() for t in texts) > 50
    assert sum(bool(_TEMPLATE_TOKEN.search(t)) for t in texts) >= 10
    assert sum(len(_SALAD_PAIR.findall(t)) > 0 for t in texts) > 40


@pytest.mark.parametrize(
    "settings",
    [SETTINGS, TIGHT],
    ids=["defaults", "tight"],
)
def test_every_reply_is_judged_as_by_the_plain_definitions(settings, monkeypatch):
    """Each reply's broken and nearest rule (value, threshold, where), with the fast paths
    and with each replaced by its plain definition: tails always cut, the template regex
    always run, the salad regex counted, the loop and echo shares always measured, word by word."""
    pairs = _pairs()
    fast = [broken_replies.broken_reply(reply, prompt, settings) for prompt, reply in pairs]
    monkeypatch.setattr(broken_replies, "_long_words_may_come_near", lambda tokens, longest, settings: True)
    monkeypatch.setattr(broken_replies, "_may_hold_template_token", lambda reply: True)
    monkeypatch.setattr(broken_replies, "salad_pairs", lambda text: len(_SALAD_PAIR.findall(text)))
    monkeypatch.setattr(broken_replies, "reply_tokens", _reference_tokens)
    monkeypatch.setattr(reply_words, "reply_tokens", _reference_tokens)  # the prompt's tokens, in echo_share
    monkeypatch.setattr(broken_replies, "_could_loop", lambda tokens, settings: True)
    monkeypatch.setattr(broken_replies, "_may_echo", lambda tokens, prompt, settings: True)
    monkeypatch.setattr(broken_replies, "repeated_share", _reference_repeated_share)
    monkeypatch.setattr(broken_replies, "_counts", _reference_counts)
    plain = [broken_replies.broken_reply(reply, prompt, settings) for prompt, reply in pairs]
    assert fast == plain
    judged = Counter(measured.code for pair in fast for measured in pair if measured is not None)
    assert sum(judged.values()) > 200 and len(judged) >= 7, judged
    assert judged[broken_replies.MEAN_WORD_LENGTH] >= 2, judged


def test_tokens_are_the_plain_definitions():
    assert [reply_words.reply_tokens(t) for t in _corpus()] == [_reference_tokens(t) for t in _corpus()]


@pytest.mark.parametrize("n", [1, 3, broken_replies.LOOP_NGRAM])
def test_repeated_shares_are_the_plain_definition(n):
    token_lists = [reply_words.reply_tokens(t) for t in _corpus()] + [["a", "b"] * 9, ["x"] * 30, ["a", "b", "c"]]
    token_lists = [tokens for tokens in token_lists if tokens]
    got = [reply_words.repeated_share(tokens, n) for tokens in token_lists]
    assert got == [_reference_repeated_share(tokens, n) for tokens in token_lists]
    assert sum(share > 0.5 for share in got) > 20


def test_counts_are_the_plain_definition():
    for text in _corpus():
        for foreign in (frozenset(), frozenset({"CYRILLIC"})):
            assert broken_replies._counts(text, foreign) == _reference_counts(text, foreign), text


def test_salad_pairs_are_the_regex_count():
    got = [reply_words.salad_pairs(t) for t in _corpus()]
    assert got == [len(_SALAD_PAIR.findall(t)) for t in _corpus()]
    assert max(got) > 2  # some texts break the rule


def test_a_text_the_prefilter_passes_over_holds_no_template_token():
    missed = [t for t in _corpus() if _TEMPLATE_TOKEN.search(t) and not broken_replies._may_hold_template_token(t)]
    assert missed == []


@pytest.mark.parametrize("words", [1, SETTINGS.reply_min_words, SETTINGS.stop_word_run_words])
def test_plain_run_shares_are_the_plain_definitions(words):
    texts = _corpus()
    assert [text_quality.stop_word_share(t, words) for t in texts] == [_reference_stop_share(t, words) for t in texts]
    assert [text_quality.mixed_alnum_share(t, words) for t in texts] == [_reference_mixed_share(t, words) for t in texts]


def test_runs_found_once_serve_both_rules():
    """The runs of the fewer words hold the runs of the more, whole: the stop-word and
    mixed-alnum shares taken from one pass equal each rule's own pass."""
    low, high = SETTINGS.reply_min_words, SETTINGS.stop_word_run_words
    for text in _corpus():
        runs = text_quality._plain_runs(text, min(low, high))
        assert text_quality._least_stop_share(runs, high) == _reference_stop_share(text, high), text
        assert text_quality._most_mixed(runs, low) == _reference_mixed_share(text, low), text


def test_last_words_are_what_the_pattern_finds():
    texts = _corpus() + ["word", "éword", "1word", "_word", "²word", "Word", "a b c", "end.", "x\n", "über alles"]
    found = [text_model._last_word(text.rstrip()) for text in texts]
    assert found == [(m.group(1) if (m := text_model._LAST_WORD.search(text.rstrip())) else None) for text in texts]
    assert sum(word is not None for word in found) > 100
