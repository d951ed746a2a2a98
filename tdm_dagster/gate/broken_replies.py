"""Replies broken the way generators break them, judged per reply as a careful reader would.

A model that fails rarely writes nothing: it writes the right answer and then does not
stop (consonant junk, word salad, a run of characters), loops on a phrase, echoes the
question, drifts into another script or leaks its chat template.
Each rule below measures one thing a reader sees at a glance, on every assistant reply,
short ones included (Gopher's quality rules, Rae et al. 2021, apply to whole documents;
here each rule states the least text it needs to mean something):

- ``content.long_token``: the longest run of characters without a space (zero-width and
  other format characters, Unicode Cf, count as spaces; a URL, holding ``://``, is not
  counted, nor the letters of scripts written without spaces, such as Chinese or Thai)
  is over ``max_token_chars``: base64 or hex dumps, salad glued together, a model
  emitting one token forever;
- ``content.mean_word_length``: the mean length of the words (tokens with a letter,
  edge punctuation stripped, URLs aside) of a reply with ``reply_min_words`` words or more lies
  outside ``min_mean_word_length``..``max_mean_word_length`` (Gopher: 3 to 10 for web
  pages; replies hold more short words: "I", "a", units);
- ``content.symbol_ratio``: more than ``max_symbol_ratio`` of the visible characters
  are neither letters, digits nor common punctuation (markdown rubble, box drawing);
- ``content.unpronounceable_words``: more than ``max_vowelless_words`` distinct lower-case
  Latin words of three letters or more without a vowel ("xkcdqt", "bfrtz"); real replies
  have a few ("lbs", "hrs", "mph");
- ``content.word_salad``: more than ``max_ungrammatical_pairs`` places where a determiner
  is followed straight by a function word ("the of", "your and") or a function word is
  doubled ("of of"). English never writes those; word salad drawn from common words
  (stop words included, so the stop-word rules pass it) writes one every few dozen words;
- ``content.short_loop``: more than ``max_loop_share`` of a reply's tokens sit in
  repeats of an earlier 8-token sequence (datatrove's duplicate n-gram fraction, over
  tokens; a text said twice scores 0.5): "The
  answer is 5." fifteen times, "the" eighty times. The Gopher repetition rules only look
  at replies of ``ngram_min_words`` (100) words; this one needs ``reply_min_words``;
- ``content.prompt_echo``: more than ``max_prompt_echo`` of the reply's token 3-grams are
  the prompt's, and as much of the prompt's are the reply's: the question given back
  (once or several times) as its own answer. A reply that edits the prompt's input
  copies most of it, but not the instruction; a reply under half the prompt's length
  cannot hold most of its 3-grams and is not measured;
- ``content.foreign_script``: more than ``max_foreign_script_ratio`` of the reply's
  letters are in a script the prompt has no letter of (Cyrillic words answering an
  English question), unless the prompt asks for a translation or names a language of
  that script;
- ``content.chat_template_token``: a chat-template control token the generator's
  template should have consumed (``<|im_end|>``, ``<|endoftext|>``, ``[/INST]``,
  ``</s>`` at the end of a line, an alpaca ``### Instruction:`` line: the next turn
  written out).

The mean and share rules (word length, symbols, script) judge the whole reply and every
tail of it from a sentence end, a line break or a token of symbols on, long enough to
judge (``reply_min_words`` words, four characters a word): the right answer followed by
80 words of junk is 40 % junk as a whole and 100 % junk in its tail. (The floor of the
mean word length judges whole replies only.) Measured on the
full public sets, no real reply breaks a rule and 4 of 7,473 GSM8K pass one narrowly
(docs/concepts/gate.md).

A reply cut off mid-word (``max_tokens``) is not caught: without a vocabulary, "each
part of t" reads like a line that ends there.

Every rule with a threshold reports the measured value and the threshold; a reply that
passes one narrowly (over ``quality.near_threshold`` of a ceiling, or under a floor
divided by it) earns the margin WARNING ``content.near_broken``
(:mod:`tdm_dagster.gate.margins`). Text is read as written except that format
characters separate words; :mod:`tdm_dagster.gate.text_quality` runs these rules.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from functools import lru_cache
from itertools import compress, repeat
from operator import ne, sub
from typing import NamedTuple

from tdm_dagster.config.quality import QualitySettings
from tdm_dagster.gate.quality.heuristics import Measured
from tdm_dagster.gate.reply_words import EDGE_PUNCTUATION, echo_share, repeated_share, reply_tokens, salad_pairs
from tdm_dagster.records.issues import RecordIssue

LONG_TOKEN = "content.long_token"
MEAN_WORD_LENGTH = "content.mean_word_length"
SYMBOL_RATIO = "content.symbol_ratio"
UNPRONOUNCEABLE_WORDS = "content.unpronounceable_words"
WORD_SALAD = "content.word_salad"
SHORT_LOOP = "content.short_loop"
PROMPT_ECHO = "content.prompt_echo"
FOREIGN_SCRIPT = "content.foreign_script"
CHAT_TEMPLATE_TOKEN = "content.chat_template_token"
FEW_STOP_WORDS = "content.few_stop_words"
"""Judged in :mod:`tdm_dagster.gate.text_quality`, which knows a reply's language."""
MODEL_FLUENCY = "content.model_fluency"
"""Judged by the shipped reply model (:mod:`tdm_dagster.gate.text_model`), all replies at once."""
CUT_OFF = "content.cut_off"
"""A reply its generator stopped at its token limit (``metadata.finish_reason: length``,
:mod:`tdm_dagster.gate.record_checks.generation`)."""

MEASURES = {
    LONG_TOKEN: "longest run of characters without a space",
    MEAN_WORD_LENGTH: "mean word length",
    SYMBOL_RATIO: "share of characters that are symbols",
    UNPRONOUNCEABLE_WORDS: "distinct words without a vowel",
    WORD_SALAD: "determiner + function word pairs",
    SHORT_LOOP: "share of words in repeated 8-word sequences",
    PROMPT_ECHO: "share of word 3-grams copied from the prompt",
    FOREIGN_SCRIPT: "share of letters in a script the prompt does not use",
    FEW_STOP_WORDS: "share of stop words in a run of plain words",
    MODEL_FLUENCY: "reply model fluency (word pairs English writes)",
}
"""What each rule with a threshold measures, as its messages say it."""
DESCRIPTIONS = {
    LONG_TOKEN: "not text: one run of characters without a space is too long",
    MEAN_WORD_LENGTH: "not text: the words are too long or too short on average",
    SYMBOL_RATIO: "not text: mostly symbols",
    UNPRONOUNCEABLE_WORDS: "not language: many words without a vowel",
    WORD_SALAD: "not language: word salad ('the of', 'your and')",
    SHORT_LOOP: "a loop: the same words over and over",
    PROMPT_ECHO: "the prompt given back as the reply",
    FOREIGN_SCRIPT: "written in a script the prompt does not use",
    FEW_STOP_WORDS: "not language: too few stop words for English prose",
    CHAT_TEMPLATE_TOKEN: "a chat-template token leaked into the reply",
    MODEL_FLUENCY: "not language: its word pairs are ones English does not write (word salad, shuffled words)",
    CUT_OFF: "cut off: the generator stopped at its token limit",
}

LOOP_NGRAM = 8
"""Tokens per sequence the loop rule compares: a loop or a repeated paragraph repeats
every 8-token sequence; formulaic real answers ("the number of pills Janet takes") repeat
shorter ones (measured on the full public sets: 4 tokens put 4 of 7,473 GSM8K answers
over 0.49, 8 tokens none, at most 0.412)."""
_VOWELLESS_WORD = re.compile(r"\b[bcdfghjklmnpqrstvwxz]{3,}\b")
"""A lower-case Latin word of three letters or more without a vowel (y counts as one)."""
_LETTER = re.compile(r"[^\W\d_]")
_UNSPACED_SCRIPTS = re.compile("[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f]")
"""Thai, Lao, Myanmar, Khmer, kana, CJK ideographs, halfwidth kana: scripts written without spaces between words."""
_LETTERED_TOKEN = re.compile(r"(?<!\S)\S*?[^\W\d_]\S*")
"""A whitespace-delimited token holding a letter: a word."""
_SYMBOL = re.compile(r"[^\w\s.,;:!?'\"()\-–—“”‘’%$/+=…]|_")
"""Neither a letter, a digit nor punctuation prose and arithmetic use: what the symbol ratio counts."""
_SEGMENT = re.compile(r"[^\n]*?(?:[.!?。！？][\"')\]”’]*(?=\s)|\n|(?=\s+[^\sA-Za-z0-9]+(?:\s|$))|$)")
"""A sentence, a line, or what comes before a token without an ASCII letter or digit
(emoji, symbols, another script): the places where a reply's junk tail can start (see
:func:`_ratios`)."""
_TEMPLATE_TOKEN = re.compile(
    r"<\|(?:im_start|im_end|endoftext|end_of_text|eot_id|begin_of_text|start_header_id|end_header_id"
    r"|assistant|user|system|end|eos|pad)\|>|\[/?INST\]|<</?SYS>>|^#{2,3} ?(?:Instruction|Response|Input|Human|Assistant|User):|</s>(?=\s*(?:</s>|<s>|\n|$))|<s>(?=\s*(?:</s>|<s>))",
    re.M,
)
_TRANSLATION = re.compile(r"translat", re.I)
_ASCII_LETTER = re.compile(r"[A-Za-z]")
_SCRIPT_LANGUAGES = {
    "CYRILLIC": "russian ukrainian bulgarian serbian belarusian kazakh kyrgyz mongolian macedonian tajik cyrillic",
    "GREEK": "greek",
    "CJK": "chinese mandarin cantonese japanese kanji hanzi",
    "HIRAGANA": "japanese hiragana",
    "KATAKANA": "japanese katakana",
    "HANGUL": "korean hangul",
    "ARABIC": "arabic persian farsi urdu pashto",
    "HEBREW": "hebrew yiddish",
    "DEVANAGARI": "hindi sanskrit marathi nepali devanagari",
    "THAI": "thai",
    "LATIN": "english french spanish german italian portuguese dutch latin polish turkish vietnamese",
}
"""Scripts by the first word of their letters' Unicode names, and the languages that name them."""


def broken_reply(reply: str, prompt: str, settings: QualitySettings) -> tuple[Measured | None, Measured | None]:
    """The first rule ``reply`` (answering ``prompt``) breaks, and else the rule it passes
    most narrowly (None where it passes every rule with room)."""
    near = None
    for measured in _measurements(reply, prompt, settings):
        if measured.breaks:
            return measured, None
        if measured.closeness > settings.near_threshold and (near is None or measured.closeness > near.closeness):
            near = measured
    return None, near


def broken_issue(index: int, broken: Measured, reply: str) -> RecordIssue:
    """The ERROR for message ``index``, which breaks ``broken.code``'s rule: the measured
    value and the threshold (or, for a template token, the token), and where."""
    where = f"messages[{index}].content"
    if broken.code == CHAT_TEMPLATE_TOKEN:
        found = f"{broken.detail!r}"
    else:
        side = "under" if broken.floor else "over"
        place = f" (in {broken.detail})" if broken.detail else ""
        value = f"{broken.value:.0f}" if broken.value.is_integer() else f"{broken.value:.3f}"
        found = f"{MEASURES[broken.code]} {value}{place}, rejected {side} {broken.threshold:g}"
    message = f"{where}: {DESCRIPTIONS[broken.code]}: {found}: '{reply[:80]}'"
    return RecordIssue("content", broken.code, message, where, severity="ERROR")


def _measurements(reply: str, prompt: str, settings: QualitySettings) -> Iterator[Measured]:
    """Each rule's measured value in ``reply``, in rule order. A rule without a threshold
    (a template token) is only yielded when broken, as value 1 over 0."""
    token = _TEMPLATE_TOKEN.search(reply) if _may_hold_template_token(reply) else None
    if token:
        yield Measured(CHAT_TEMPLATE_TOKEN, 1.0, 0.0, detail=token.group())
        return
    text = _spaced(reply)
    words = _unspaced_blanked(text).split()
    counted = words if "://" not in text else [t for t in words if "://" not in t]
    longest = max(map(len, counted), default=0)
    yield Measured(LONG_TOKEN, float(longest), settings.max_token_chars)
    yield from _ratios(text, counted, longest, _foreign_scripts(text, prompt), settings)
    vowelless = _VOWELLESS_WORD.findall(text)
    if vowelless:  # counts of zero are far from any threshold: not measured further
        yield Measured(UNPRONOUNCEABLE_WORDS, float(len(set(vowelless))), settings.max_vowelless_words)
    pairs = salad_pairs(text)
    if pairs:
        yield Measured(WORD_SALAD, float(pairs), settings.max_ungrammatical_pairs)
    tokens = reply_tokens(text)
    if len(tokens) >= settings.reply_min_words:
        if _could_loop(tokens, settings):
            yield Measured(SHORT_LOOP, repeated_share(tokens, LOOP_NGRAM), settings.max_loop_share)
        if 2 * len(reply) >= len(prompt):  # shorter, it cannot hold most of the prompt's 3-grams
            asked = _spaced(prompt)
            if _may_echo(tokens, asked, settings):
                yield Measured(PROMPT_ECHO, echo_share(tokens, asked, 3), settings.max_prompt_echo)


class _Counts(NamedTuple):
    """What the mean and share rules count in one segment of a reply; counts add up."""

    words: int = 0
    word_chars: int = 0
    visible: int = 0
    symbols: int = 0
    letters: int = 0
    foreign: int = 0

    def __add__(self, other: tuple) -> _Counts:  # type: ignore[override]
        return _Counts(*(a + b for a, b in zip(self, other)))


def _counts(segment: str, foreign: frozenset[str], symbols: int | None = None) -> _Counts:
    """The counts of ``segment``; ``symbols``: its symbol count, where already counted."""
    tokens = segment.split()
    if segment.isascii():  # a token holds a letter where case changes it: no regex pass
        words = list(compress(tokens, map(ne, map(str.lower, tokens), map(str.upper, tokens))))
    else:
        words = _LETTERED_TOKEN.findall(_unspaced_blanked(segment))
    if "://" in segment:
        words = [token for token in words if "://" not in token]
    letters = _LETTER.findall(segment) if foreign else ()
    return _Counts(
        len(words), sum(map(len, map(str.strip, words, repeat(EDGE_PUNCTUATION)))), sum(map(len, tokens)),
        len(_SYMBOL.findall(segment)) if symbols is None else symbols,
        len(letters), sum(1 for c in letters if _script(c) in foreign),
    )  # fmt: skip


def _ratios(
    text: str, tokens: list[str], longest_token: int, foreign: frozenset[str], settings: QualitySettings
) -> Iterator[Measured]:
    """The mean and share rules, each at its worst over the reply and every tail of it
    (what follows a sentence end, a line break, or comes from a token of symbols on)
    long enough to judge: ``reply_min_words`` words for the mean word length, four
    characters a word for the shares. The floor of the mean word length judges the
    whole reply only: short words ("a", "I", "=") gather in the tails of real replies.

    Tails are only cut where one could come within the margin of a threshold: a tail's
    mean word length is at most the mean length of the reply's ``reply_min_words``
    longest ``tokens`` (its words are some of them, edge punctuation stripped), and its
    symbol share needs symbols in number; most replies are judged whole."""
    min_visible = 4 * settings.reply_min_words
    near = settings.near_threshold
    symbol_count = len(_SYMBOL.findall(text))
    tails_matter = bool(foreign) or _long_words_may_come_near(tokens, longest_token, settings) or (
        symbol_count > near * settings.max_symbol_ratio * min_visible
    )
    if not tails_matter:  # the reply judged whole: the loop below, for one segment
        whole = _counts(text, foreign, symbol_count)
        if whole.words >= settings.reply_min_words:
            mean = whole.word_chars / whole.words
            yield Measured(MEAN_WORD_LENGTH, mean, settings.max_mean_word_length)
            yield Measured(MEAN_WORD_LENGTH, mean, settings.min_mean_word_length, floor=True)
        if whole.visible >= min_visible:
            yield Measured(SYMBOL_RATIO, whole.symbols / whole.visible, settings.max_symbol_ratio)
        return
    segments = _SEGMENT.findall(text)
    longest = shortest = symbols = script = None  # (value, where) at its worst
    tail = _Counts()
    for index in range(len(segments) - 1, -1, -1):
        tail = tail + _counts(segments[index], foreign)
        where = "" if index == 0 else f"its last {tail.visible} characters"
        if tail.words >= settings.reply_min_words:
            mean = tail.word_chars / tail.words
            longest = max(longest or (mean, where), (mean, where), key=_first)
            if index == 0:
                shortest = (mean, where)
        if tail.visible >= min_visible:
            symbols = max(symbols or (0.0, ""), (tail.symbols / tail.visible, where), key=_first)
            if foreign and tail.letters:
                script = max(script or (0.0, ""), (tail.foreign / tail.letters, where), key=_first)
    for worst, code, threshold, floor in (
        (longest, MEAN_WORD_LENGTH, settings.max_mean_word_length, False),
        (shortest, MEAN_WORD_LENGTH, settings.min_mean_word_length, True),
        (symbols, SYMBOL_RATIO, settings.max_symbol_ratio, False),
        (script, FOREIGN_SCRIPT, settings.max_foreign_script_ratio, False),
    ):
        if worst is not None:
            yield Measured(code, worst[0], threshold, floor=floor, detail=worst[1])


def _long_words_may_come_near(tokens: list[str], longest_token: int, settings: QualitySettings) -> bool:
    """Whether some tail of ``reply_min_words`` words or more could have a mean word
    length within the margin of ``max_mean_word_length``: its bound, the mean of the
    longest tokens, comes near (judged as :class:`Measured` judges, so no rounding
    differs). The longest token bounds it first, at no cost."""
    threshold, near, least = settings.max_mean_word_length, settings.near_threshold, settings.reply_min_words
    if longest_token <= near * threshold or len(tokens) < least:  # no tail holds that many words
        return False
    bound = sum(sorted(map(len, tokens), reverse=True)[:least]) / least
    return bound > threshold or Measured(MEAN_WORD_LENGTH, bound, threshold).closeness > near


def _first(pair: tuple[float, str]) -> float:
    return pair[0]


def _unspaced_blanked(text: str) -> str:
    """``text`` with the letters of scripts written without spaces (Chinese, Japanese,
    Thai, Lao, Khmer, Myanmar) as spaces: a sentence of them is not one long word."""
    return text if text.isascii() else _UNSPACED_SCRIPTS.sub(" ", text)


def _spaced(text: str) -> str:
    """``text`` with format characters (Cf: zero-width spaces, joiners, soft hyphens) as spaces."""
    return text if text.isascii() else _format_chars().sub(" ", text)


@lru_cache(maxsize=1)
def _format_chars() -> re.Pattern[str]:
    """Every Unicode format character (163 in Python 3.12), found once: 0.1 s."""
    chars = "".join(chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Cf")
    return re.compile(f"[{re.escape(chars)}]")


@lru_cache(maxsize=4096)
def _script(char: str) -> str:
    """The first word of a letter's Unicode name: LATIN, CYRILLIC, CJK, HANGUL..."""
    return unicodedata.name(char, "UNKNOWN").split(" ", 1)[0]


def _foreign_scripts(reply: str, prompt: str) -> frozenset[str]:
    """Scripts of the reply's letters that the prompt neither uses nor names (none for an
    ASCII reply, a prompt without letters, or a prompt asking for a translation)."""
    if reply.isascii() or _TRANSLATION.search(prompt):
        return frozenset()
    asked = ({"LATIN"} if _ASCII_LETTER.search(prompt) else set()) if prompt.isascii() else {_script(c) for c in prompt if c.isalpha()}
    if not asked:
        return frozenset()
    named = set(re.findall(r"[a-z]+", prompt.lower()))
    used = {_script(c) for c in reply if c.isalpha()}
    return frozenset(s for s in used - asked if not named & set(_SCRIPT_LANGUAGES.get(s, "").split()))


def _may_hold_template_token(reply: str) -> bool:
    """Whether ``reply`` holds a character every template token starts with (``<``, ``[``,
    ``#``): most replies hold none, and three substring tests cost less than the regex."""
    return "<" in reply or "[" in reply or "#" in reply


def _could_loop(tokens: list[str], settings: QualitySettings) -> bool:
    """Whether the loop rule could come near its threshold: every token of a repeated
    sequence occurs twice or more, so the tokens that do bound the share from above."""
    margin = settings.near_threshold * settings.max_loop_share * len(tokens)
    if 2 * (len(tokens) - len(set(tokens))) <= margin:  # repeated tokens number at most twice the extra copies
        return False
    repeated = len(tokens) - [*Counter(tokens).values()].count(1)  # the tokens that occur twice or more
    return repeated > margin


def _may_echo(tokens: list[str], prompt: str, settings: QualitySettings) -> bool:
    """Whether the echo rule could come near its threshold: a 3-gram copied from the
    prompt starts with a token the prompt holds, so the share of the reply's 3-grams whose
    first token is found in the lower-cased prompt (substring tests, in C) bounds the
    copied share from above; judged as :class:`Measured` judges, so no rounding differs."""
    grams = len(tokens) - 2
    if grams <= 0:  # no 3-gram: the share is 0
        return False
    bound = sum(map(prompt.lower().__contains__, tokens[:grams])) / grams
    return bound > settings.max_prompt_echo or Measured(PROMPT_ECHO, bound, settings.max_prompt_echo).closeness > settings.near_threshold
