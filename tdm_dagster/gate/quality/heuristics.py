"""Per-turn content heuristics: one stable issue code per turn, or None.

Speed matters (a batch has ~10^5 turns), so the pattern rules run as one regex pass over
all turns joined together, and the Gopher repetition rules (Rae et al. 2021, applied per
turn as datatrove's ``GopherRepetitionFilter`` applies them per document) only do their
costly n-gram counting when a cheap certain bound says a turn could fail, or come within
the margin under the threshold that earns a clean turn a WARNING (:mod:`tdm_dagster.gate.margins`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import NamedTuple

import numpy as np

from tdm_dagster.config.quality import QualitySettings

BLANK_TURN = "content.blank_turn"
REPLACEMENT_CHAR = "content.replacement_char"
CONTROL_CHAR = "content.control_char"
REFUSAL_BOILERPLATE = "content.refusal_boilerplate"
TEMPLATE_PLACEHOLDER = "content.template_placeholder"
LOREM_IPSUM = "content.lorem_ipsum"
GOPHER_DUP_LINES = "content.gopher_dup_lines"


def gopher_top_ngram(n: int) -> str:
    return f"content.gopher_top_{n}gram"


# Issue code -> pattern over the ASCII-lower-cased UTF-8 bytes, in priority order (the
# first rule a turn breaks names it). Each starts with a literal, which ``re`` searches
# for fast; control characters are found with a byte lookup table instead.
_PATTERNS: dict[str, re.Pattern[bytes]] = {
    REPLACEMENT_CHAR: re.compile("\ufffd".encode()),
    REFUSAL_BOILERPLATE: re.compile(
        rb"as a(?:n ai(?: language)? model| large language model)"
        rb"|i'm sorry, but i (?:cannot|can't) (?:help|assist|fulfill|comply|provide)"
        rb"|i cannot (?:fulfill|comply with) (?:this|that|your) request"
    ),
    TEMPLATE_PLACEHOLDER: re.compile(
        rb"\{\{[^{}\n]{0,100}\}\}|<(?:placeholder|insert [^<>\n]{1,40}|your [^<>\n]{1,30})>"
        rb"|\[(?:insert|placeholder)\b"
    ),
    LOREM_IPSUM: re.compile(rb"lorem ipsum"),
}
_CONTROL_BYTES = np.zeros(256, dtype=bool)
_CONTROL_BYTES[[*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F]] = True
"""C0 controls except tab/LF/CR, and DEL; UTF-8 never uses these bytes inside a multi-byte character."""
_LINE_BREAKS = re.compile(r"\n+")


def turn_issues(texts: Sequence[str], settings: QualitySettings) -> tuple[list[str | None], list[Measured | None]]:
    """The issue code of each turn (None: clean), in ``texts`` order, and beside it the
    repetition rule each clean turn passes only narrowly (None: passes with room; see
    :func:`repetition_check`)."""
    issues: list[str | None] = [BLANK_TURN if not text or text.isspace() else None for text in texts]
    near: list[Measured | None] = [None] * len(texts)
    for index, code in _pattern_hits(texts).items():
        if issues[index] is None:
            issues[index] = code
    for index, text in enumerate(texts):
        if issues[index] is None:
            issues[index], near[index] = repetition_check(text, settings)
    return issues, near


def _pattern_hits(texts: Sequence[str]) -> dict[int, str]:
    """Turn index -> first pattern code it breaks, from one pass per rule over all turns."""
    if not texts:
        return {}
    haystack = "\n".join(texts).encode().lower()  # bytes.lower: ASCII only, offsets stay put
    byte_lengths = np.fromiter(
        (len(t) + 1 if t.isascii() else len(t.encode()) + 1 for t in texts), np.int64, len(texts)
    )
    starts = np.concatenate(([0], np.cumsum(byte_lengths)[:-1]))
    found: list[tuple[str, np.ndarray]] = [
        (CONTROL_CHAR, np.flatnonzero(_CONTROL_BYTES[np.frombuffer(haystack, dtype=np.uint8)]))
    ]
    for code, pattern in _PATTERNS.items():
        found.append((code, np.fromiter((m.start() for m in pattern.finditer(haystack)), np.int64)))
    hits: dict[int, str] = {}
    for code, positions in sorted(found, key=lambda item: _PRIORITY[item[0]]):
        for turn in np.unique(np.searchsorted(starts, positions, side="right") - 1).tolist():
            hits.setdefault(turn, code)
    return hits


_PRIORITY = {
    code: rank
    for rank, code in enumerate(
        (REPLACEMENT_CHAR, CONTROL_CHAR, REFUSAL_BOILERPLATE, TEMPLATE_PLACEHOLDER, LOREM_IPSUM)
    )
}


class Measured(NamedTuple):
    """A rule's measured value in a turn, beside the threshold over which it rejects
    (under which, for a ``floor``); ``detail`` says where or what, for the message."""

    code: str
    value: float
    threshold: float
    floor: bool = False
    detail: str = ""

    @property
    def breaks(self) -> bool:
        return self.value < self.threshold if self.floor else self.value > self.threshold

    @property
    def closeness(self) -> float:
        """How near the value lies to breaking the rule: 1 at the threshold, over 1 past it."""
        if self.floor:
            return self.threshold / self.value if self.value > 0 else float("inf")
        if self.threshold > 0:
            return self.value / self.threshold
        return float("inf") if self.value > 0 else 0.0


def repetition_check(text: str, settings: QualitySettings) -> tuple[str | None, Measured | None]:
    """Gopher duplicate-line and top n-gram rules for one turn: the code of the first rule
    it breaks, else the first it passes narrowly (its value over ``quality.near_threshold``
    of the threshold; :mod:`tdm_dagster.gate.margins`), else ``(None, None)``.

    Short turns skip a rule (fewer than ``dup_line_min_lines`` lines, fewer than
    ``ngram_min_words`` words): there a single line or n-gram is a large share of the text
    by construction. Only n-grams that occur at least twice count as repetition.
    """
    near = None
    for found, breaks in _repetition_over(text, settings, settings.near_threshold):
        if breaks:
            return found.code, None
        near = near or found
    return None, near


def _repetition_over(text: str, settings: QualitySettings, scale: float) -> Iterator[tuple[Measured, bool]]:
    """Each repetition rule whose value in ``text`` exceeds ``scale`` times its threshold,
    in rule order, and whether it exceeds the threshold itself (the turn breaks the rule)."""
    if text.count("\n") + 1 >= settings.dup_line_min_lines:
        lines = [line for line in _LINE_BREAKS.split(text) if line]
        if len(lines) >= settings.dup_line_min_lines:
            share = (len(lines) - len(set(lines))) / len(lines)
            if share > settings.dup_line_frac * scale:
                yield Measured(GOPHER_DUP_LINES, share, settings.dup_line_frac), share > settings.dup_line_frac
    # Whitespace runs + 1 bounds the word count from above: most turns stop here.
    if text.count(" ") + text.count("\n") + text.count("\t") + 1 < settings.ngram_min_words:
        return
    words = text.split()
    if len(words) >= settings.ngram_min_words:
        yield from _top_ngram_over(text, words, settings.top_ngram_char_fracs, scale)


def _top_ngram_over(
    text: str, words: list[str], fracs: Mapping[int, float], scale: float
) -> Iterator[tuple[Measured, bool]]:
    """datatrove's top n-gram rule: count(top n-gram) * len(top n-gram) / len(text) > frac
    (here ``frac * scale``).

    Certain shortcut: each word of an n-gram occurring c >= 2 times occurs at least c
    times itself, so c * len(n-gram) <= c * (n * L(c) + n - 1), where L(c) is the longest
    word occurring at least c times. The n-grams are only counted when the largest such
    bound over c exceeds the limit: at the rejection threshold (``scale`` 1) or at the
    margin below it, so a margin costs counting only for turns that could come near.
    """
    repeated = sorted(((count, len(word)) for word, count in Counter(words).items() if count > 1), reverse=True)
    if not repeated:
        return
    longest = 0
    bounds: list[tuple[int, int]] = []  # (c, L(c)) for each count present, highest c first
    for count, length in repeated:
        longest = max(longest, length)
        bounds.append((count, longest))
    for n, frac in fracs.items():
        limit = frac * len(text)
        if max(count * (n * length + n - 1) for count, length in bounds) <= limit * scale:
            continue
        ngram, count = Counter(zip(*(words[i:] for i in range(n)))).most_common(1)[0]
        covered = count * (sum(map(len, ngram)) + n - 1)
        if count > 1 and covered > limit * scale:
            yield Measured(gopher_top_ngram(n), covered / len(text), frac), covered > limit


ISSUE_DESCRIPTIONS: dict[str, str] = {
    BLANK_TURN: "turn is empty or whitespace only",
    REPLACEMENT_CHAR: "contains U+FFFD replacement characters (broken encoding)",
    CONTROL_CHAR: "contains control characters other than tab/newline/carriage return",
    REFUSAL_BOILERPLATE: "contains model-refusal boilerplate ('as an AI language model', ...)",
    TEMPLATE_PLACEHOLDER: "contains an unfilled template placeholder ({{...}}, <placeholder>, [INSERT ...)",
    LOREM_IPSUM: "contains lorem ipsum filler text",
    GOPHER_DUP_LINES: "too many duplicate lines (Gopher duplicate-line fraction)",
}


def describe_issue(code: str) -> str:
    """Human-readable reason for an issue code."""
    if code.startswith("content.gopher_top_"):
        n = code.removeprefix("content.gopher_top_").removesuffix("gram")
        return f"one repeated {n}-gram covers too much of the text (Gopher top {n}-gram fraction)"
    return ISSUE_DESCRIPTIONS[code]
