"""Is a reply text at all? Rules that reject gibberish in assistant turns.

A small model's failed replies look like words but are not language ("family sail2
ham2per comisealbilot pra12 famous dapfo"): every check on shape and length passes them.
Two rules adapted per turn from Gopher's quality filters (Rae et al. 2021, as datatrove's
``GopherQualityFilter`` applies them per document) catch them:

- ``content.no_stop_words``: an English reply with a run of ``reply_min_words`` words
  or more one space apart (prose, not a list, a table, code or a calculation) and not one
  stop word in it all. Real English prose uses "the", "is",
  "of"... in every sentence; lists and code need none.
- ``content.few_stop_words``: the same rule scaled to length: in a plain run of
  ``stop_word_run_words`` (20) words or more, stop words are under ``min_stop_word_ratio``
  (0.04) of the words (real English prose runs 25-50 %, GSM8K sums in words 4.8-9.5 %;
  junk after an answer, 0).
- ``content.mixed_alnum_words``: a run of ``reply_min_words`` words or more, one space
  apart with no punctuation between, where more than ``max_mixed_alnum_ratio`` of the
  words mix letters and digits ("sail2", "pra12"). Prose rarely does; units ("200g +
  100g"), code ("l1, l2") and notations ("4P3/5N2") do, but never as a plain run of words.

A reply whose share is over ``quality.near_threshold`` of the ratio but not over it
passed narrowly: a WARNING, ``content.near_mixed_alnum`` (:mod:`tdm_dagster.gate.margins`).

Short replies skip both ("4", "Paris", "yes, at 5pm" are legitimate answers), and so
does any record whose answer a verifier judged, right or wrong: a SYLLO answer is a list
of words with no stop word, and the verifier knows better than a heuristic.

The same pass runs the broken-reply rules (:mod:`tdm_dagster.gate.broken_replies`:
junk tails, loops, prompt echoes, other scripts, template tokens) on every assistant
reply, verified or not (the right answer followed by junk is right and still junk),
against the user turn it answers; their margin WARNING is ``content.near_broken``.

A reply with no English stop word is only judged if it is English: lingua (a language
identifier that ships its models) tells. With ``quality.languages`` set, replies
detected (confidence >= 0.6) in another language are rejected too
(``content.unexpected_language``); lingua then reads every reply, which costs about a
millisecond each.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any

from tdm_dagster.config.quality import QualitySettings
from tdm_dagster.gate.broken_replies import FEW_STOP_WORDS, MODEL_FLUENCY, broken_issue, broken_reply
from tdm_dagster.gate.margins import NEAR_BROKEN, NEAR_MIXED_ALNUM, keep_nearest, margin_issue
from tdm_dagster.gate.quality.heuristics import Measured
from tdm_dagster.records.issues import RecordIssue

NO_STOP_WORDS = "content.no_stop_words"
MIXED_ALNUM_WORDS = "content.mixed_alnum_words"
UNEXPECTED_LANGUAGE = "content.unexpected_language"
UNFINISHED_ENDING = "content.unfinished_ending"
"""A WARNING, not a rejection: the reply model finds the last word unfinished (see
:func:`tdm_dagster.gate.text_model.model.unfinished_ending`); it catches half of the
replies cut off by a token limit, and an ERROR there would cost real data 1 % (measured:
2 of 175 seed tasks end on "me" and "root.next")."""

STOP_WORDS = frozenset(
    "a an the and or but if of to in on at by for with from as is are was were be been being am "
    "it its this that these those there here i you he she we they me him her us them my your our "
    "their his not no do does did have has had will would can could should may might must shall "
    "what which who whom when where why how so than then too very just all any some each".split()
)
"""Gopher's eight (the, be, to, of, and, that, have, with) and the function words around them."""
LANGUAGE_CONFIDENCE = 0.6
"""Measured: gibberish scores about 0.5 for its nearest language, real sentences 0.67 and up."""
_WORD = re.compile(r"\w+")
_HAS_ALPHA = re.compile(r"[^\W\d_]")
_HAS_DIGIT = re.compile(r"\d")

# Languages lingua tells apart when deciding whether a reply is English; loading a
# language's model costs time, so only common ones and those in ``quality.languages``.
_COMMON_LANGUAGES = ("en", "de", "fr", "es", "pt", "it", "nl", "ru", "pl", "tr", "zh", "ja", "ko", "ar", "hi")


def text_quality_issues(
    valid_indices: Sequence[int],
    conversations: Sequence[Sequence[Mapping[str, Any]]],
    settings: QualitySettings,
    skip: Iterable[int] = (),
    model_judged: set[int] | None = None,
) -> dict[int, list[RecordIssue]]:
    """ERROR issues for assistant turns that are not text or are broken replies, and the
    mixed-alnum and broken-reply margin WARNINGs (:mod:`tdm_dagster.gate.margins`) for
    records whose nearest reply passes such a rule narrowly, by batch position; ``skip``:
    positions whose answer a verifier judged (the broken-reply rules judge them too).
    ``model_judged``, where given, receives the positions whose every reply the reply
    model judged fluent (long enough to judge, and over its floor): what their tier may
    rest on (:mod:`tdm_dagster.gate.scoring`)."""
    skipped = set(skip)
    turns = list(_assistant_turns(valid_indices, conversations))
    judged = [turn for turn in turns if turn[0] not in skipped]
    codes, shares, stop = _turn_codes([turn[2] for turn in judged], settings)
    found: dict[int, list[RecordIssue]] = {}
    nearest: dict[int, dict[str, tuple[int, Measured]]] = {}
    limit = settings.max_mixed_alnum_ratio
    flagged: set[tuple[int, int]] = set()
    for (position, index, text, _), code, share, stop_share in zip(judged, codes, shares, stop):
        if code == FEW_STOP_WORDS:
            found.setdefault(position, []).append(broken_issue(index, stop_share, text))
            flagged.add((position, index))
        elif code is not None:
            where = f"messages[{index}].content"
            message = f"{where}: {_DESCRIPTIONS[code]}: '{text[:80]}'"
            found.setdefault(position, []).append(RecordIssue("content", code, message, where, severity="ERROR"))
            flagged.add((position, index))
        elif limit * settings.near_threshold < share:
            keep_nearest(nearest.setdefault(NEAR_MIXED_ALNUM, {}), position, index, Measured(MIXED_ALNUM_WORDS, share, limit))
        elif stop_share is not None:
            keep_nearest(nearest.setdefault(NEAR_BROKEN, {}), position, index, stop_share)
    unbroken = []
    for turn in turns:  # broken replies: every reply, verified or not
        position, index, text, prompt = turn
        if (position, index) in flagged:
            continue
        broken, near = broken_reply(text, prompt, settings)
        if broken is not None:
            found.setdefault(position, []).append(broken_issue(index, broken, text))
        else:
            unbroken.append(turn)
            if near is not None:
                keep_nearest(nearest.setdefault(NEAR_BROKEN, {}), position, index, near)
    fluent = _model_judgements(unbroken, settings, found, nearest.setdefault(NEAR_BROKEN, {}), skipped)
    if model_judged is not None:
        model_judged.update(p for p in fluent if not any(issue.rejects for issue in found.get(p, ())))
    for family in nearest.values():
        for position, (index, measured) in family.items():
            if position not in found or all(issue.severity == "WARNING" for issue in found[position]):
                found.setdefault(position, []).append(margin_issue(index, measured, settings))
    return found


def _model_judgements(
    turns: Sequence[tuple[int, int, str, str]],
    settings: QualitySettings,
    found: dict[int, list[RecordIssue]],
    nearest: dict[int, tuple[int, Measured]],
    verified: set[int],
) -> set[int]:
    """The reply model's verdict on ``turns`` (all in one pass): an ERROR for a reply under
    ``quality.min_reply_fluency``, a margin for one just over it, and an unfinished-ending
    WARNING for a reply no verifier judged (one found right reached its answer; one found
    wrong is rejected already); returns the positions whose every turn it judged and found
    fluent."""
    if not turns:
        return set()
    from tdm_dagster.gate.text_model.model import fluencies, unfinished_ending  # numpy and the model load here

    judged_all: dict[int, bool] = {}
    for (position, index, text, _), fluency in zip(turns, fluencies([turn[2] for turn in turns])):
        unfinished = None if position in verified else unfinished_ending(text)
        if unfinished is not None and not any(issue.code == UNFINISHED_ENDING for issue in found.get(position, ())):
            where = f"messages[{index}].content"
            message = f"{where}: reads as cut off: {unfinished}: '...{text[-60:]}'"
            found.setdefault(position, []).append(RecordIssue("content", UNFINISHED_ENDING, message, where, severity="WARNING"))
        if fluency is None:
            judged_all[position] = False
            continue
        measured = Measured(MODEL_FLUENCY, fluency, settings.min_reply_fluency, floor=True)
        if measured.breaks:
            found.setdefault(position, []).append(broken_issue(index, measured, text))
        elif measured.closeness > settings.near_threshold:
            keep_nearest(nearest, position, index, measured)
        judged_all.setdefault(position, True)
    return {position for position, judged in judged_all.items() if judged}


def _assistant_turns(
    valid_indices: Sequence[int], conversations: Sequence[Sequence[Mapping[str, Any]]]
) -> Iterator[tuple[int, int, str, str]]:
    """(batch position, message index, reply, the user turn it answers) of each assistant turn."""
    for position, messages in zip(valid_indices, conversations):
        prompt = ""
        for index, message in enumerate(messages):
            content = str(message.get("content", ""))
            if message.get("role") == "user":
                prompt = content
            elif message.get("role") == "assistant":
                yield position, index, content, prompt


def _turn_codes(
    texts: Sequence[str], settings: QualitySettings
) -> tuple[list[str | None], list[float], list[Measured | None]]:
    """Each turn's issue code (None: text), its mixed letter+digit share, and its stop-word
    share where that rule measured it near or past its floor (English turns only)."""
    codes: list[str | None] = [None] * len(texts)
    shares = [mixed_alnum_share(text, settings.reply_min_words) for text in texts]
    stop: list[Measured | None] = [None] * len(texts)
    no_stop: list[int] = []
    few_stop: list[int] = []
    plain_run = _plain_run(settings.reply_min_words)
    margin = settings.min_stop_word_ratio / settings.near_threshold
    for turn, text in enumerate(texts):
        if shares[turn] > settings.max_mixed_alnum_ratio:
            codes[turn] = MIXED_ALNUM_WORDS
        elif plain_run.search(text) and not STOP_WORDS.intersection(w.lower() for w in _WORD.findall(text)):
            no_stop.append(turn)
        else:
            share = stop_word_share(text, settings.stop_word_run_words)
            if share is not None and share < margin:
                few_stop.append(turn)
                stop[turn] = Measured(FEW_STOP_WORDS, share, settings.min_stop_word_ratio, floor=True)
    wanted = set(settings.languages)
    judged = range(len(texts)) if wanted else no_stop + few_stop
    languages = _languages([texts[turn] for turn in judged], wanted) if judged else []
    language_of = dict(zip(judged, languages))
    for turn in no_stop:
        if language_of[turn] in (None, "en"):  # English, or not clearly any language
            codes[turn] = NO_STOP_WORDS
    for turn in few_stop:
        if language_of[turn] not in (None, "en"):
            stop[turn] = None
        elif stop[turn].breaks:
            codes[turn] = FEW_STOP_WORDS
    if wanted:
        for turn, language in language_of.items():
            if codes[turn] is None and language is not None and language not in wanted:
                codes[turn] = UNEXPECTED_LANGUAGE
    return codes, shares, stop


def stop_word_share(text: str, run_words: int) -> float | None:
    """The least share of stop words in a plain run of ``run_words`` words or more in
    ``text`` (None where it has no such run): prose, however long, keeps using them."""
    least = None
    for run in _plain_run(run_words).finditer(text):
        words = run.group().lower().split(" ")
        share = sum(1 for word in words if word in STOP_WORDS) / len(words)
        least = share if least is None else min(least, share)
    return least


def mixed_alnum_share(text: str, min_words: int) -> float:
    """The largest share of words mixing letters and digits in any plain run of
    ``min_words`` words or more in ``text``; 0 where it has no such run."""
    return max((_mixed_share(run.group()) for run in _plain_run(min_words).finditer(text)), default=0.0)


def _mixed_share(run: str) -> float:
    words = run.split(" ")
    return sum(1 for w in words if _HAS_ALPHA.search(w) and _HAS_DIGIT.search(w)) / len(words)


@lru_cache(maxsize=4)
def _plain_run(words: int) -> re.Pattern[str]:
    """``words`` or more words (letters and digits) one space apart, nothing between.

    A run only starts at a word's first character: tried inside a word too, a megabyte
    without a space would cost a square of its length."""
    return re.compile(rf"(?<![^\W_])[^\W_]+(?: [^\W_]+){{{words - 1},}}")


def _languages(texts: Sequence[str], wanted: set[str]) -> list[str | None]:
    """ISO 639-1 code of each text's language, or None where lingua is not confident."""
    detector = _detector(tuple(sorted(wanted | set(_COMMON_LANGUAGES))))
    results = detector.compute_language_confidence_values_in_parallel(list(texts))
    return [
        values[0].language.iso_code_639_1.name.lower() if values and values[0].value >= LANGUAGE_CONFIDENCE else None
        for values in results
    ]


@lru_cache(maxsize=4)
def _detector(codes: tuple[str, ...]) -> Any:
    from lingua import IsoCode639_1, LanguageDetectorBuilder  # its models load here, on first use

    return LanguageDetectorBuilder.from_iso_codes_639_1(*(getattr(IsoCode639_1, code.upper()) for code in codes)).build()


_DESCRIPTIONS = {
    NO_STOP_WORDS: "not language: an English reply with no stop word ('the', 'is', 'of', ...)",
    MIXED_ALNUM_WORDS: "not language: too many words mix letters and digits",
    UNEXPECTED_LANGUAGE: "written in a language not in quality.languages",
}
