"""Correct answers to the built-in generators' prompts, worked out from the prompt alone.

The fake inference server answers with these by default, so a batch generated with
``source: inference`` passes the gate's answer verification the way a good model's would,
and a test that wants wrong answers says so with its own ``reply``.
"""

from __future__ import annotations

import re
from typing import Any

from tdm_dagster.generate.generators.binary import ARITHMETIC
from tdm_dagster.generate.generators.syllo import load_lexicon

_CLUE = re.compile(r"^\d+\. (.*) \(\d+ syllables?\)$", re.MULTILINE)
_DEC_TO_BIN = re.compile(r"Convert the decimal number (\d+) to binary\.")
_BIN_TO_DEC = re.compile(r"Convert the binary number ([01]+) to decimal\.")
_ARITHMETIC = re.compile(r"^(.*): ([01]+) (\S) ([01]+)$")


def solve(prompt: str) -> str | None:
    """The answer to a built-in SYLLO or binary prompt, or None for any other prompt."""
    if prompt.startswith("Solve this SYLLO puzzle"):
        by_clue = {entry.clue: entry.word for entry in load_lexicon()}
        return "\n".join(f"{n}. {by_clue[clue]}" for n, clue in enumerate(_CLUE.findall(prompt), start=1))
    if match := _DEC_TO_BIN.fullmatch(prompt):
        return f"Answer: {int(match.group(1)):b}"
    if match := _BIN_TO_DEC.fullmatch(prompt):
        return f"Answer: {int(match.group(1), 2)}"
    if match := _ARITHMETIC.fullmatch(prompt):
        instruction, first, symbol, second = match.groups()
        apply = next(f for s, i, f in ARITHMETIC.values() if (s, i) == (symbol, instruction))
        return f"Answer: {apply(int(first, 2), int(second, 2)):b}"
    return None


def last_user(messages: list[dict[str, Any]]) -> str:
    return next((str(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
