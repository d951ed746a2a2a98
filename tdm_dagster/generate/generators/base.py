"""What every built-in skill generator provides.

A generator turns (level, count, seed) into chat examples, deterministically: the same
arguments always give the same examples, byte for byte. Each example is::

    {"messages": [{"role": "user", "content": ...}, {"role": "assistant", "content": ...}],
     "metadata": {"skill": ..., "level": ..., "seed": ..., "answer": ..., "source": "builtin"}}

``metadata.seed`` is the per-example seed, so any single example can be regenerated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

Example = dict[str, Any]
ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(done, total)`` while a batch is generated."""


class SkillGenerator(Protocol):
    skill: str
    """Short lower-case name: ``syllo``, ``binary``."""
    spec: str
    """Schema spec id its examples conform to (see ``tdm_dagster.gate.schemas``)."""
    max_level: int

    def generate(
        self, level: int, count: int, seed: int, progress: ProgressCallback | None = None
    ) -> list[Example]: ...

    def check_answer(self, example: Example, response: str) -> bool:
        """True when ``response`` (a model's reply to the example's user turn) is correct."""
        ...

    def example_key(self, example: Example) -> str | None:
        """The example's problem key (equal for two examples of the same problem), or None
        when the example does not carry what is needed."""
        ...
