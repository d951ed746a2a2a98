"""Rule margins: replies that pass a content rule, but only just.

A content rule with a numeric threshold measures a value per reply and rejects it over
the threshold. A reply measured just under it is borderline: kept, but not as clean as
one that passed with room. Where the value lies over ``quality.near_threshold`` (0.8) of
the threshold and not over it, the record gets a WARNING that names the turn, the value
and the threshold, and so scores ``WARNING_PENALTY`` lower (:mod:`tdm_dagster.gate.scoring`):

- ``content.near_repetition``: the Gopher duplicate-line fraction (``quality.dup_line_frac``)
  or a top n-gram character fraction (``quality.top_ngram_char_fracs``), in any reply;
- ``content.near_mixed_alnum``: the share of words mixing letters and digits in a plain
  run (``quality.max_mixed_alnum_ratio``), in replies no answer verifier judged (the
  text-quality rules leave those alone, and so does their margin).
- ``content.near_broken``: a broken-reply rule with a threshold
  (:mod:`tdm_dagster.gate.broken_replies`: longest token, mean word length, symbol
  ratio, vowelless words, word salad, short loop, prompt echo, foreign script), in any
  reply. A floor (the least mean word length) is passed narrowly under its threshold
  divided by ``quality.near_threshold``.

One WARNING per family per record, for its nearest turn: a record is borderline once
per rule, however many of its turns are.

The content suite measures the repetition margins in the same pass as the rules (its
:class:`~tdm_dagster.gate.quality.results.SuiteResult` carries them as ``warnings``), and
the text-quality rules the mixed-alnum and broken-reply margins (:mod:`tdm_dagster.gate.text_quality`):
nothing is measured twice.

Why 0.8: measured on the full public sets (``bench/bench_gate_margins.py``), values over
0.8 of a threshold are the tail of real data (0.6 % of GSM8K, none of GPTeacher
roleplay, 1 of 175 seed tasks); at 0.5, 2.7 % of GSM8K would warn for answers that only
repeat their units ("4 balloons per minute * 15 minutes").

Other per-record thresholds get no margin: token lengths (``quality.min_tokens``: short
answers are legitimate, so being near the floor says nothing) and the per-record turn
balance (whole turns, no in-between).
"""

from __future__ import annotations

from tdm_dagster.config.quality import QualitySettings
from tdm_dagster.gate.broken_replies import MEASURES as BROKEN_MEASURES
from tdm_dagster.gate.quality.heuristics import Measured
from tdm_dagster.records.issues import RecordIssue

NEAR_REPETITION = "content.near_repetition"
NEAR_MIXED_ALNUM = "content.near_mixed_alnum"
NEAR_BROKEN = "content.near_broken"

_MEASURES = {
    "content.gopher_dup_lines": "duplicate-line fraction",
    "content.mixed_alnum_words": "share of words mixing letters and digits",
}


def _family(code: str) -> str:
    if code in BROKEN_MEASURES:
        return NEAR_BROKEN
    return NEAR_MIXED_ALNUM if code == "content.mixed_alnum_words" else NEAR_REPETITION


def _measure(code: str) -> str:
    if code.startswith("content.gopher_top_"):
        return f"top {code.removeprefix('content.gopher_top_').removesuffix('gram')}-gram character fraction"
    return BROKEN_MEASURES.get(code) or _MEASURES[code]


def keep_nearest(nearest: dict[int, tuple[int, Measured]], record: int, index: int, measured: Measured) -> None:
    """Keep, per record, the turn (message ``index``) whose value lies nearest its threshold."""
    held = nearest.get(record)
    if held is None or measured.closeness > held[1].closeness:
        nearest[record] = (index, measured)


def margin_issue(index: int, measured: Measured, settings: QualitySettings) -> RecordIssue:
    """The WARNING for message ``index``, which passes ``measured.code``'s rule narrowly."""
    where = f"messages[{index}].content"
    side, margin = ("under", measured.threshold / settings.near_threshold) if measured.floor else (
        "over", measured.threshold * settings.near_threshold)
    place = f" (in {measured.detail})" if measured.detail else ""
    message = (
        f"{where}: passes the {_measure(measured.code)} rule narrowly: {measured.value:.3f}{place}, "
        f"rejected {side} {measured.threshold:g} (margin from {margin:.3g})"
    )
    return RecordIssue("content", _family(measured.code), message, where, severity="WARNING")
