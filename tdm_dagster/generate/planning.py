"""Planning and producing one batch, from any of the three sources.

- ``builtin``: the curriculum's skill generators, in this process;
- ``skill_api``: the same generators behind their HTTP servers (8080 SYLLO, 8090 Binary);
- ``inference``: the curriculum's prompts, answered by the inference server (the 3090).

Whatever the source, a failure raises ``GenerationError`` saying why, and nothing of a
failed batch is queued.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

from tdm_dagster.files.atomic import atomic_write_json, read_json
from tdm_dagster.records.batches import BatchPlan, parse_batch_id, seed_for
from tdm_dagster.config.sections import AutoGenerateConfig
from tdm_dagster.generate.curriculum import CurriculumState, curriculum_path
from tdm_dagster.generate.generators import get_generator
from tdm_dagster.home import TdmHome

Progress = Callable[[int, int], None]


MAX_DRAWS = 4
"""Each draw asks for twice as many examples as the last: up to 8x the count."""


class GenerationError(RuntimeError):
    """A batch could not be generated; the message says why and where."""


class SkillSource(Protocol):
    def generate(self, skill: str, level: int, count: int, seed: int) -> list[dict[str, Any]]: ...


class InferenceSource(Protocol):
    def generate_batch(self, requests: list[Any], payload: dict | None = None, progress: Progress | None = None) -> Any: ...


def plan_batch(
    home: TdmHome, settings: AutoGenerateConfig, batch_id: str, *, count: int | None = None, skill: str | None = None
) -> BatchPlan:
    """What to generate for ``batch_id``. Explicit arguments (run config) win; then what
    the id names (tdm-made ids carry skill and count); then config; then the curriculum."""
    named = parse_batch_id(batch_id)
    curriculum = CurriculumState.load(curriculum_path(home))
    skill = skill or named.get("skill") or settings.skill or curriculum.active_skill
    generator = get_generator(skill)
    spec = "chat_sft_v1" if settings.source == "inference" else generator.spec
    return BatchPlan(
        batch_id=batch_id,
        skill=generator.skill,
        level=curriculum.level_of(generator.skill),
        count=count or named.get("count") or settings.count,
        seed=settings.seed if settings.seed is not None else seed_for(batch_id),
        source=settings.source,
        priority=settings.priority,
        spec=spec,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def produce_records(
    plan: BatchPlan,
    *,
    skill_source: SkillSource | None = None,
    inference: InferenceSource | None = None,
    payload: dict[str, Any] | None = None,
    progress: Progress | None = None,
    avoid: Callable[[dict[str, Any]], bool] | None = None,
) -> list[dict[str, Any]]:
    """The plan's records from its source. ``avoid`` marks examples the built-in
    generators must not draw (held-out evaluation items): they draw others instead."""
    generator = get_generator(plan.skill)
    if plan.source == "builtin":
        return _draw(generator, plan, avoid, progress)
    if plan.source == "skill_api":
        if skill_source is None:
            raise GenerationError("source is skill_api but no skill API client is configured")
        try:
            return skill_source.generate(plan.skill, plan.level, plan.count, plan.seed)
        except Exception as exc:  # the client's errors already say which URL and why
            raise GenerationError(f"skill API generation failed: {exc}") from exc
    if plan.source == "inference":
        if inference is None:
            raise GenerationError("source is inference but no inference client is configured")
        return _answer_with_inference(generator, plan, inference, payload or {}, progress, avoid)
    raise GenerationError(f"unknown generation source {plan.source!r}")


def _draw(generator: Any, plan: BatchPlan, avoid: Callable[[dict[str, Any]], bool] | None, progress: Progress | None = None) -> list[dict[str, Any]]:
    """``plan.count`` examples, none that ``avoid`` marks, deterministic by the plan's seed.

    A level with a small problem space (binary addition of 1-bit numbers) repeats the
    held-out items often: up to 16 in 100. Left in, the gate would reject them and the
    batch's validity with them; drawn around, the batch is whole."""
    if avoid is None:
        return generator.generate(plan.level, plan.count, plan.seed, progress=progress)
    for draw in range(MAX_DRAWS):
        asked = plan.count * 2**draw
        kept = [example for example in generator.generate(plan.level, asked, plan.seed) if not avoid(example)]
        if len(kept) >= plan.count:
            if progress:
                progress(plan.count, plan.count)
            return kept[: plan.count]
    raise GenerationError(
        f"{plan.skill} level {plan.level}: {len(kept)} of {asked} drawn examples are not held-out "
        f"evaluation items, fewer than the {plan.count} asked for; ask for fewer or move to the next level"
    )


def _answer_with_inference(
    generator: Any, plan: BatchPlan, inference: InferenceSource, payload: dict, progress: Progress | None,
    avoid: Callable[[dict[str, Any]], bool] | None,
) -> list[dict[str, Any]]:
    """The curriculum's prompts, answered by the model on the inference server."""
    from tdm_dagster.generate.inference_client import GenerationRequest

    prompts = _draw(generator, plan, avoid)
    requests = [
        GenerationRequest(
            messages=[m for m in example["messages"] if m["role"] != "assistant"],
            metadata={**example["metadata"], "reference_answer": example["metadata"].get("answer")},
        )
        for example in prompts
    ]
    result = inference.generate_batch(requests, payload=payload, progress=progress)
    if not result.ok:
        raise GenerationError(
            f"inference server failed {len(result.failures)} of {len(requests)} requests: {_distinct_failures(result.failures)}; nothing was queued"
        )
    return result.examples


def _distinct_failures(failures: list[tuple[int, str]], shown: int = 3) -> str:
    """The different reasons requests failed, each once with how many it failed (a server
    that is down fails every request for the same reason)."""
    by_reason: dict[str, list[int]] = {}
    for index, reason in failures:
        by_reason.setdefault(reason, []).append(index + 1)
    parts = [
        reason if len(numbers) == len(failures) else f"#{', #'.join(map(str, numbers[:5]))}{' ...' if len(numbers) > 5 else ''}: {reason}"
        for reason, numbers in list(by_reason.items())[:shown]
    ]
    more = f"; {len(by_reason) - shown} other reason(s)" if len(by_reason) > shown else ""
    return "; ".join(parts) + more


# --- when to generate: shared by the sensor and `tdm generate` -------------------------

@dataclass(frozen=True)
class TriggerDecision:
    generate: bool
    reason: str
    cooldown_left_sec: float = 0.0


def decide_trigger(
    settings: AutoGenerateConfig,
    queue_depth: int,
    last_generation_at: float | None,
    now: float,
    in_flight: int = 0,
) -> TriggerDecision:
    """Generate when enabled, the queue is at or below threshold, the cooldown has
    passed and no generation is already running."""
    left = max(0.0, (last_generation_at or 0.0) + settings.cooldown_sec - now) if last_generation_at else 0.0
    if not settings.enabled:
        return TriggerDecision(False, "auto_generate.enabled is false", left)
    if in_flight:
        return TriggerDecision(False, f"a generation run is already in flight ({in_flight})", left)
    if queue_depth > settings.threshold:
        return TriggerDecision(False, f"queue depth {queue_depth} is above threshold {settings.threshold}", left)
    if left > 0:
        return TriggerDecision(False, f"cooldown: {left:.0f}s left of {settings.cooldown_sec}s", left)
    return TriggerDecision(True, f"queue depth {queue_depth} <= threshold {settings.threshold}", 0.0)


def _last_generation_path(home: TdmHome):
    return home.state_file("last_generation")


def record_generation_start(home: TdmHome, batch_id: str, now: float) -> None:
    atomic_write_json(_last_generation_path(home), {"batch_id": batch_id, "started_at": now})


def last_generation(home: TdmHome) -> dict[str, Any] | None:
    return read_json(_last_generation_path(home))
