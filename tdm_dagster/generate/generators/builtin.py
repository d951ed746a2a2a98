"""What the built-in generators share: argument checks, the seed contract, de-duplication.

A built-in generator only says how to draw one problem from a seeded ``random.Random``
and how to write it as a chat; ``BuiltinGenerator.generate`` turns that into a batch, so
every built-in skill keeps the same promises.

Seed contract. The candidate problems of a batch with seed ``S`` are drawn, in order,
from the seeds ``derive_seed(S, 0) == S``, ``derive_seed(S, 1)``, ``derive_seed(S, 2)``,
...; each candidate uses a fresh ``random.Random(candidate_seed)`` and nothing else.
An accepted example records its candidate seed in ``metadata.seed``. Because the first
candidate of any batch is drawn from the batch seed itself, ::

    generator.generate(level, 1, example["metadata"]["seed"])[0] == example

regenerates any single example exactly, whichever batch it came from.

De-duplication. A candidate whose problem key was already used in the batch is
redrawn, at most ``MAX_DRAWS_PER_EXAMPLE`` times. When an example exhausts its draws,
the problem space is taken to be used up and the rest of the batch accepts repeats, so
a batch larger than its level's problem space still finishes in linear time.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Hashable
from typing import Any, Generic, NamedTuple, TypeVar

from tdm_dagster.generate.generators.base import Example, ProgressCallback

MAX_DRAWS_PER_EXAMPLE = 20
PROGRESS_STEPS = 100
"""``progress`` is called about this many times per batch (every ~1%)."""

_MASK64 = (1 << 64) - 1
_GOLDEN_GAMMA = 0x9E3779B97F4A7C15

Problem = TypeVar("Problem")


class RenderedProblem(NamedTuple):
    user: str
    assistant: str
    details: dict[str, Any]
    """Skill-specific metadata (``answer`` first), placed between ``seed`` and ``source``."""


def derive_seed(batch_seed: int, draw_index: int) -> int:
    """Seed of a batch's ``draw_index``-th candidate: the batch seed itself for index 0,
    else the splitmix64 output for that index, so neighbouring batch seeds give unrelated
    examples. Derived seeds are non-negative and fit a signed 64-bit integer (Parquet,
    pandas)."""
    if draw_index == 0:
        return batch_seed
    z = (batch_seed + draw_index * _GOLDEN_GAMMA) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (z ^ (z >> 31)) >> 1


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_request(level: Any, count: Any, seed: Any, max_level: int) -> None:
    """Raise ``ValueError`` naming the first bad argument and what is allowed."""
    if not _is_int(level) or not 1 <= level <= max_level:
        raise ValueError(f"level must be an integer from 1 to {max_level}, got {level!r}")
    if not _is_int(count) or count < 0:
        raise ValueError(f"count must be an integer >= 0, got {count!r}")
    if not _is_int(seed):
        raise ValueError(f"seed must be an integer (any size, negative allowed), got {seed!r}")


class BuiltinGenerator(ABC, Generic[Problem]):
    """A ``SkillGenerator`` whose subclasses supply ``draw``, ``problem_key``,
    ``example_key``, ``render`` and ``check_answer``."""

    skill: str
    spec: str
    max_level: int

    @abstractmethod
    def draw(self, rng: random.Random, level: int) -> Problem:
        """One problem at ``level``, using only ``rng`` for randomness."""

    @abstractmethod
    def problem_key(self, problem: Problem) -> Hashable:
        """Equal for two problems a learner would see as the same question."""

    @abstractmethod
    def example_key(self, example: Example) -> str | None:
        """The problem key of an example this generator made (read from its messages and
        metadata), as text: equal for two examples of the same problem, so train/eval
        leakage is judged by problem, not by shared wording. None when the example does
        not carry what is needed."""

    @abstractmethod
    def render(self, problem: Problem) -> RenderedProblem:
        """The problem as a user turn, its worked answer as the assistant turn."""

    @abstractmethod
    def check_answer(self, example: Example, response: str) -> bool:
        """True when ``response`` (a model's reply to the user turn) is correct."""

    def generate(
        self, level: int, count: int, seed: int, progress: ProgressCallback | None = None
    ) -> list[Example]:
        """``count`` distinct examples at ``level`` (see the module docstring for how the
        seed is used and when repeats are accepted)."""
        validate_request(level, count, seed, self.max_level)
        examples: list[Example] = []
        seen: set[Hashable] = set()
        avoid_repeats = True
        draw_index = 0
        progress_every = max(1, count // PROGRESS_STEPS)
        for done in range(1, count + 1):
            for _ in range(MAX_DRAWS_PER_EXAMPLE):
                example_seed = derive_seed(seed, draw_index)
                draw_index += 1
                problem = self.draw(random.Random(example_seed), level)
                key = self.problem_key(problem)
                if not avoid_repeats or key not in seen:
                    break
            else:
                avoid_repeats = False
            seen.add(key)
            examples.append(self._example(problem, level, example_seed))
            if progress is not None and (done % progress_every == 0 or done == count):
                progress(done, count)
        return examples

    def _example(self, problem: Problem, level: int, example_seed: int) -> Example:
        user, assistant, details = self.render(problem)
        return {
            "messages": [
                {"role": "user", "content": user},
                {"role": "assistant", "content": assistant},
            ],
            "metadata": {"skill": self.skill, "level": level, "seed": example_seed, **details, "source": "builtin"},
        }
