"""``regime3``: each reply in a symbolic reasoning format, steps then a conclusion.

Every assistant turn (read by :mod:`.reasoning`) becomes one ``⊢`` line per step, then
the conclusion after ``∴``, then ``∎``::

    ⊢ 48/2=24
    ⊢ 48+24=72
    ∴ 72
    ∎

A step that computes something (the equations in its text, ``48/2 = 24``, or GSM8K's
calculator annotations ``<<48/2=24>>``) is written as its computations only, joined by
`` ; ``: the symbolic part of the step; a step without is kept as its text. The conclusion is the reply's final answer, unchanged, so a verifier
of the answer reads it as before. A reply already ending in ``∎`` is left as it is.
"""

from __future__ import annotations

from typing import Any

from tdm_dagster.training.profiles.registry import Example, register_profile, replies_rewritten
from tdm_dagster.training.profiles.reasoning import read_reasoning

STEP, THEREFORE, END = "⊢", "∴", "∎"


@register_profile("regime3")
def regime3(example: Example, **_: Any) -> Example:
    def rewrite(reply: str) -> str:
        if reply.rstrip().endswith(END):
            return reply
        reasoning = read_reasoning(reply)
        steps = [f"{STEP} {' ; '.join(step.computations) if step.computations else step.text}" for step in reasoning.steps]
        return "\n".join([*steps, f"{THEREFORE} {reasoning.answer}", END])

    return replies_rewritten(example, rewrite)
