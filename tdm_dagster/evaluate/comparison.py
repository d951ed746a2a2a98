"""The comparison engine: evaluate checkpoints, rank them, keep the history, feed back.

A checkpoint is evaluated through two callables so this module stays free of torch:
``answer(messages) -> str`` (the model's reply) and, optionally,
``held_out_loss(examples) -> float``. Held-out skill sets are drawn from the built-in
generators with seeds from a range no training batch uses (batch seeds are 32-bit), and
``tdm_dagster.evaluate.isolation`` keeps them out of training by check as well.

What comes out:
- exact-answer accuracy per skill and level (the generator's own ``check_answer``);
- a ranking of checkpoints (accuracy first, then held-out loss);
- ``state/metrics_history.jsonl`` with every evaluation, and trends (improvement % over
  the previous evaluation, per skill);
- curriculum updates (a level advances at >= 0.8 over the last 3 evaluations);
- a corrections batch: each failed *probe* with its correct answer, written to the inbox
  so it goes through the gate like any other batch. Probes are items drawn like the
  held-out ones from another seed range, never the held-out items themselves: a failed
  held-out item sent back to training would turn accuracy into a memory test.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tdm_dagster.files.atomic import atomic_open, atomic_write_jsonl
from tdm_dagster.generate.curriculum import CurriculumState, curriculum_path
from tdm_dagster.generate.generators import get_generator
from tdm_dagster.evaluate.isolation import without_prompts_of
from tdm_dagster.home import TdmHome

HELD_OUT_SEED_BASE = 2**40
"""Held-out items use seeds from here on; batch seeds are below 2**32."""
PROBE_SEED_BASE = 2**41
"""Probes (whose failures become corrections) use seeds from here on."""

Answer = Callable[[list[dict[str, str]]], str]


@dataclass(frozen=True)
class HeldOutSet:
    skill: str
    level: int
    examples: list[dict[str, Any]]


def _drawn_sets(levels: Mapping[str, Sequence[int]], per_level: int, seed_base: int) -> list[HeldOutSet]:
    sets = []
    for skill, skill_levels in levels.items():
        generator = get_generator(skill)
        for level in skill_levels:
            sets.append(HeldOutSet(generator.skill, level, generator.generate(level, per_level, seed_base + level)))
    return sets


def held_out_sets(levels: Mapping[str, Sequence[int]], per_level: int, seed: int = 0) -> list[HeldOutSet]:
    """``per_level`` examples for each skill and level, deterministic by ``seed``."""
    return _drawn_sets(levels, per_level, HELD_OUT_SEED_BASE + seed * 1_000)


def probe_sets(held_out: Sequence[HeldOutSet], per_level: int, seed: int = 0) -> list[HeldOutSet]:
    """Probes for the same skills and levels as ``held_out``, none with a held-out prompt."""
    levels: dict[str, list[int]] = {}
    for held in held_out:
        levels.setdefault(held.skill, []).append(held.level)
    drawn = _drawn_sets(levels, per_level, PROBE_SEED_BASE + seed * 1_000)
    taken = [example for held in held_out for example in held.examples]
    return [HeldOutSet(p.skill, p.level, without_prompts_of(p.examples, taken)) for p in drawn]


@dataclass
class EvaluationResult:
    checkpoint: str
    accuracy: dict[str, dict[int, float]]
    """skill -> level -> exact-answer accuracy."""
    overall_accuracy: float
    held_out_loss: float | None
    failed_cases: list[dict[str, Any]] = field(default_factory=list)
    """Each failed probe with the model's reply, for the corrections batch."""
    evaluated_at: str = ""
    held_out_failures: int = 0
    seen_in_training: int | None = None
    """Held-out items found in queued, claimed or trained data (must be 0); None: not measured."""

    def skill_accuracy(self, skill: str) -> float:
        levels = self.accuracy.get(skill, {})
        return sum(levels.values()) / len(levels) if levels else 0.0


def evaluate(
    checkpoint: str,
    sets: Sequence[HeldOutSet],
    answer: Answer,
    held_out_loss: Callable[[list], float] | None = None,
    probes: Sequence[HeldOutSet] = (),
) -> EvaluationResult:
    """Accuracy on ``sets``; the failures among ``probes`` are kept for corrections."""
    accuracy: dict[str, dict[int, float]] = {}
    correct_total = total = 0
    for held_out in sets:
        failures = _failures(held_out, answer)
        correct = len(held_out.examples) - len(failures)
        accuracy.setdefault(held_out.skill, {})[held_out.level] = correct / len(held_out.examples) if held_out.examples else 0.0
        correct_total += correct
        total += len(held_out.examples)
    examples = [e for s in sets for e in s.examples]
    return EvaluationResult(
        checkpoint=checkpoint,
        accuracy=accuracy,
        overall_accuracy=correct_total / total if total else 0.0,
        held_out_loss=held_out_loss(examples) if held_out_loss else None,
        failed_cases=[case for probe in probes for case in _failures(probe, answer)],
        evaluated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        held_out_failures=total - correct_total,
    )


def _failures(items: HeldOutSet, answer: Answer) -> list[dict[str, Any]]:
    generator = get_generator(items.skill)
    failed = []
    for example in items.examples:
        reply = answer([m for m in example["messages"] if m["role"] != "assistant"])
        if not generator.check_answer(example, reply):
            failed.append({"example": example, "reply": reply})
    return failed


def rank(results: Sequence[EvaluationResult]) -> list[EvaluationResult]:
    """Best first: higher accuracy, then lower held-out loss, then the later checkpoint."""
    return sorted(
        results,
        key=lambda r: (-r.overall_accuracy, r.held_out_loss if r.held_out_loss is not None else float("inf"), r.evaluated_at),
    )


def _history_path(home: TdmHome) -> Path:
    return home.state_file("metrics_history")


def load_history(home: TdmHome) -> list[dict[str, Any]]:
    path = _history_path(home)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _trend(now: float, before: float | None) -> float | None:
    if before is None:
        return None
    return round((now - before) / before * 100, 2) if before else (100.0 if now > 0 else 0.0)


def record(home: TdmHome, result: EvaluationResult) -> dict[str, Any]:
    """Append ``result`` to the history with its trends, update the curriculum, and
    write the corrections batch. Returns the history entry."""
    history = load_history(home)
    previous = history[-1] if history else None
    skills = {skill: round(result.skill_accuracy(skill), 4) for skill in result.accuracy}
    entry = {
        "checkpoint": result.checkpoint,
        "evaluated_at": result.evaluated_at,
        "overall_accuracy": round(result.overall_accuracy, 4),
        "held_out_loss": result.held_out_loss,
        "accuracy": {skill: {str(level): acc for level, acc in levels.items()} for skill, levels in result.accuracy.items()},
        "skills": skills,
        "trend": {
            "overall_pct": _trend(result.overall_accuracy, previous["overall_accuracy"] if previous else None),
            **{
                f"{skill}_pct": _trend(acc, (previous or {}).get("skills", {}).get(skill))
                for skill, acc in skills.items()
            },
        },
        "failed_cases": len(result.failed_cases),
        "held_out_failures": result.held_out_failures,
        "seen_in_training": result.seen_in_training,
    }
    with atomic_open(_history_path(home)) as handle:  # rewrite whole: readers never see half a line
        for line in [*history, entry]:
            handle.write(json.dumps(line) + "\n")
    state = CurriculumState.load(curriculum_path(home))
    entry["advanced"] = {}
    for skill in result.accuracy:
        level = state.level_of(skill)
        if level in result.accuracy[skill]:
            entry["advanced"][skill] = state.record_evaluation(skill, result.accuracy[skill][level], level=level, note=result.checkpoint)
    state.save(curriculum_path(home))
    entry["corrections_file"] = str(write_corrections(home, result)) if result.failed_cases else None
    return entry


def corrections(result: EvaluationResult) -> list[dict[str, Any]]:
    """Each failed case as a chat example with the correct answer, marked as a correction."""
    return [
        {
            "messages": case["example"]["messages"],
            "metadata": {
                **case["example"]["metadata"],
                "source": "correction",
                "checkpoint": result.checkpoint,
                "model_reply": case["reply"][:2000],
            },
        }
        for case in result.failed_cases
    ]


def write_corrections(home: TdmHome, result: EvaluationResult) -> Path:
    """Into the inbox, so the corrections go through the gate like any other batch."""
    name = f"corrections_{Path(result.checkpoint).name}_{datetime.now(timezone.utc).strftime('%Y%m%d_%H%M%S')}.jsonl"
    target = home.inbox_dir / name
    atomic_write_jsonl(target, corrections(result))
    return target


def summary(result: EvaluationResult) -> dict[str, Any]:
    data = asdict(result)
    data.pop("failed_cases")
    data["failed_cases"] = len(result.failed_cases)
    return data
