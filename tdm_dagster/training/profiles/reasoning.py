"""A reply read as reasoning steps and a final answer, what both built-in profiles rewrite.

Each non-empty line is a step: its text (calculator annotations such as GSM8K's
``<<48/2=24>>`` removed) and its computations: the annotations' expressions, else the
equations written in the text (``48/2 = 24`` as ``48/2=24``). The answer:

- after ``####`` on the last line (GSM8K's final-answer line, then not a step);
- else, when the last line computes something, the result of its last computation
  (``... 48+24 = 72 clips ...`` answers ``72``; the line stays a step);
- else the last line itself (then not a step): a one-line reply is an answer with no steps.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_FINAL_ANSWER = re.compile(r"^####\s*(.+?)$")
_CALCULATION = re.compile(r"<<([^<>]*)>>")
_NUMBER = r"\$?\d[\d,]*(?:\.\d+)?%?"
_EQUATION = re.compile(rf"(?<![\w.]){_NUMBER}(?:\s*[-+*/×÷x]\s*{_NUMBER})+\s*=\s*{_NUMBER}")


class Step(NamedTuple):
    text: str
    computations: tuple[str, ...]


class Reasoning(NamedTuple):
    steps: list[Step]
    answer: str


def _step(line: str) -> Step:
    annotated = tuple(_CALCULATION.findall(line))
    text = _CALCULATION.sub("", line).strip()
    computations = annotated or tuple(re.sub(r"\s+", "", found) for found in _EQUATION.findall(text))
    return Step(text, computations)


def read_reasoning(reply: str) -> Reasoning:
    lines = [line.strip() for line in reply.splitlines() if line.strip()]
    if not lines:
        return Reasoning([], "")
    final = _FINAL_ANSWER.match(lines[-1])
    if final:
        return Reasoning([_step(line) for line in lines[:-1]], final.group(1))
    steps = [_step(line) for line in lines]
    if steps[-1].computations:
        return Reasoning(steps, steps[-1].computations[-1].rsplit("=", 1)[1])
    return Reasoning(steps[:-1], steps[-1].text)
