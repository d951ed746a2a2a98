"""``emoji_think``: each reply as emoji-marked thinking, an answer, and a stop signal.

Every assistant turn (read by :mod:`.reasoning`) becomes::

    🤔 Natalia sold 48/2 = 24 clips in May.
    🤔 Natalia sold 48+24 = 72 clips altogether in April and May.
    ✅ 72
    🛑

one ``think`` line per reasoning step (calculator annotations removed), the ``answer``
line, then the ``stop`` line, so the model learns to show its steps, mark its answer and
end. Options: ``think``, ``answer``, ``stop`` (the three markers). A reply that already
ends with the stop signal is left as it is (applying the profile twice changes nothing).
"""

from __future__ import annotations

from typing import Any

from tdm_dagster.training.profiles.registry import Example, register_profile, replies_rewritten
from tdm_dagster.training.profiles.reasoning import read_reasoning

THINK, ANSWER, STOP = "🤔", "✅", "🛑"


@register_profile("emoji_think")
def emoji_think(example: Example, think: str = THINK, answer: str = ANSWER, stop: str = STOP, **_: Any) -> Example:
    def rewrite(reply: str) -> str:
        if reply.rstrip().endswith(stop):
            return reply
        reasoning = read_reasoning(reply)
        lines = [f"{think} {step.text}" for step in reasoning.steps if step.text]
        return "\n".join([*lines, f"{answer} {reasoning.answer}", stop])

    return replies_rewritten(example, rewrite)
