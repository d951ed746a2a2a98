"""Quality score and tier per example, and the batch metrics with their thresholds.

Per example, the score is what was measured about it, not who sent it. Its base says
who or what judged the reply, and so the best tier it can reach:

- **gold** (base 1.0): a reply an answer verifier found right, or a record checked by
  people (``metadata.human_reviewed``, or source ``human``/``manual``; ``curated`` 0.95).
  Example (GSM8K, verified against its reference): "Natalia sold 48/2 = 24 clips in May.
  Natalia sold 48+24 = 72 clips altogether in April and May.";
- **silver** at most (base ``MODEL_JUDGED``, 0.8): no verifier and no person, but the
  shipped reply model (:mod:`tdm_dagster.gate.text_model`) read every reply and found it
  fluent. Example (GPTeacher roleplay, no reference answer): a 60-word in-character
  reply;
- **bronze** at most (base ``UNJUDGED``, 0.6): judged by nothing: no verifier, no
  person, and a reply too short for the model to judge ("Positive", "Paris, France").
  It passed every rule, but a short reply passes rules by having little to break;
- each WARNING found takes ``WARNING_PENALTY`` (0.2) off, one tier: a near duplicate
  (in the batch or in the queue), a *rule margin* (a reply that passes a content rule
  only narrowly, its measured value over ``quality.near_threshold`` (0.8) of the rule's
  threshold: ``content.near_repetition``, ``content.near_mixed_alnum``,
  ``content.near_broken``, see :mod:`tdm_dagster.gate.margins`), an ending the model
  reads as cut off (``content.unfinished_ending``), or any other kept-but-suspect
  finding. A verified reply with a narrow escape is silver, an unverified fluent one
  bronze, an unjudged one raw;
- any ERROR makes it 0 (the record is rejected anyway); INFO notes cost nothing.

Tiers: gold >= 0.9, silver 0.7-0.9, bronze 0.5-0.7, raw < 0.5. Bases sit 0.1 over a
tier floor and the penalty is the 0.2 between floors, so each WARNING costs exactly one
tier (two take a verified reply to bronze);
borderline data never shares a tier with clean data of the same provenance, and data
nothing judged never shares one with data something did. docs/concepts/tiers.md
shows a real record of each tier.

Per batch: completeness, consistency, validity, diversity, balance, complexity and an
overall score. Completeness, consistency, validity and overall have thresholds
(defaults 95%, 90%, 95%, 90%); a batch under any of them is rejected.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tdm_dagster.gate.verify.registry import AnswerVerdict
from tdm_dagster.records.issues import RecordIssue

VERIFIED = 1.0
"""A reply an answer verifier found right."""
HUMAN_CHECKED = {"human_reviewed": 1.0, "human": 1.0, "manual": 1.0, "curated": 0.95}
"""Scores by ``metadata.source`` for data people checked."""
MODEL_JUDGED = 0.8
"""The best an example can score when nothing measured its correctness but the reply model read it all."""
UNJUDGED = 0.6
"""The best an example can score when nothing judged it: no verifier, no person, no model."""
WARNING_PENALTY = 0.2
"""The distance between tier floors: each WARNING costs exactly one tier (bases sit 0.1 over a floor)."""
TIERS = (("gold", 0.9), ("silver", 0.7), ("bronze", 0.5), ("raw", 0.0))
OVERALL_WEIGHTS = {"completeness": 0.2, "consistency": 0.2, "validity": 0.3, "diversity": 0.15, "balance": 0.15}
COMPLEXITY_WORDS = 60
"""A response of this many words counts as fully complex (complexity is reported, not gated)."""


@dataclass(frozen=True)
class MetricThresholds:
    min_completeness: float = 0.95
    min_consistency: float = 0.90
    min_validity: float = 0.95
    min_overall: float = 0.90

    def failures(self, metrics: Mapping[str, float | None]) -> list[str]:
        out = []
        for name in ("completeness", "consistency", "validity", "overall"):
            floor = getattr(self, f"min_{name}")
            value = metrics.get(name)
            if value is not None and value < floor - 1e-12:
                out.append(f"{name} {shown_below(value, floor)} < {floor}")
        return out


def shown_below(value: float, floor: float) -> str:
    """``value`` with three decimals, or as many more as it takes to read below ``floor``
    (0.9495 under 0.95 is "0.9495", never "0.950")."""
    for decimals in range(3, 16):
        shown = f"{value:.{decimals}f}"
        if float(shown) < floor:
            return shown
    return repr(value)


def source_of(record: Any) -> str:
    metadata = record.get("metadata") if isinstance(record, dict) else None
    if isinstance(metadata, dict):
        if metadata.get("human_reviewed") is True:
            return "human_reviewed"
        source = metadata.get("source")
        if isinstance(source, str):
            return source
    return "unknown"


def example_score(
    record: Any, issues: Sequence[RecordIssue], verdict: AnswerVerdict | None = None, model_judged: bool = False
) -> float:
    """The record's score from its measured quality (see the module docstring);
    ``verdict`` is what an answer verifier decided for it, if one did, and
    ``model_judged`` whether the reply model read every reply and found it fluent."""
    if any(issue.rejects for issue in issues):
        return 0.0
    warnings = sum(1 for issue in issues if issue.severity == "WARNING")
    unverified = MODEL_JUDGED if model_judged else UNJUDGED
    base = VERIFIED if verdict is not None and verdict.correct else HUMAN_CHECKED.get(source_of(record), unverified)
    return round(max(0.0, base - WARNING_PENALTY * warnings), 4)


def tier(score: float) -> str:
    return next(name for name, floor in TIERS if score >= floor)


def batch_metrics(
    *,
    total: int,
    complete: int,
    dominant_spec_share: float,
    accepted: int,
    unique_response_ratio: float | None,
    assistant_user_ratio: float | None,
    capped_response_words: int,
    responses: int,
) -> dict[str, float | None]:
    """The batch's metrics, each in [0, 1]; None where the level did not measure it.

    Complexity is the mean of ``min(1, words / COMPLEXITY_WORDS)`` over the ``responses``,
    given as the integer sum of ``min(COMPLEXITY_WORDS, words)`` (see
    :func:`capped_words`), so that shards of a batch add up to exactly the same value."""
    if total == 0:
        return dict.fromkeys([*OVERALL_WEIGHTS, "complexity", "overall"], 0.0)
    metrics: dict[str, float | None] = {
        "completeness": complete / total,
        "consistency": dominant_spec_share,
        "validity": accepted / total,
        "diversity": None if unique_response_ratio is None else min(1.0, unique_response_ratio),
        "balance": None if assistant_user_ratio is None else max(0.0, 1.0 - abs(1.0 - assistant_user_ratio)),
        "complexity": capped_response_words / (COMPLEXITY_WORDS * responses) if responses else 0.0,
    }
    weighted = [(OVERALL_WEIGHTS[name], metrics[name]) for name in OVERALL_WEIGHTS if metrics[name] is not None]
    metrics["overall"] = sum(w * v for w, v in weighted) / sum(w for w, _ in weighted)
    return {name: None if value is None else round(value, 4) for name, value in metrics.items()}


def capped_words(words: int) -> int:
    """A response's word count as far as complexity counts it."""
    return min(COMPLEXITY_WORDS, words)


def tier_counts(scores: Sequence[float]) -> dict[str, int]:
    counts = Counter(tier(score) for score in scores)
    return {name: counts.get(name, 0) for name, _ in TIERS}
