"""The verifiers that ship: SYLLO, binary, and the generic normalised match.

SYLLO and binary reuse their generator's own ``check_answer``, so what counts as a right
answer is defined once, where the puzzles are made.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from tdm_dagster.gate.verify.registry import GENERIC, AnswerCheck, UnusableReference, register_verifier
from tdm_dagster.generate.generators import get_generator

_BINARY_DIGITS = re.compile(r"[01]+")
_DECIMAL = re.compile(r"-?\d+")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_FINAL_ANSWER = re.compile(r"(?:answer\s*(?:is|:|=)|####)\s*(.+)", re.IGNORECASE)
_EDGE_PUNCTUATION = " \t.,;:!?\"'`*"


def _last_line(reply: str) -> str:
    return next((line.strip() for line in reversed(reply.splitlines()) if line.strip()), "")


@register_verifier("syllo")
def syllo(reference: Any, reply: str, metadata: Mapping[str, Any]) -> AnswerCheck:
    """The hidden words, in clue order (case, numbering style and emphasis aside)."""
    if not isinstance(reference, list) or not reference or not all(isinstance(word, str) for word in reference):
        raise UnusableReference(f"a SYLLO reference is a non-empty list of words, got {reference!r}")
    correct = get_generator("syllo").check_answer({"metadata": {"answer": reference}}, reply)
    return AnswerCheck(correct, ", ".join(reference), reply.strip())


@register_verifier("binary")
def binary(reference: Any, reply: str, metadata: Mapping[str, Any]) -> AnswerCheck:
    """The value: the reply's final number (its ``Answer:`` line, else its last number)
    equals the reference, in binary or, for ``bin_to_dec``, decimal. Without
    ``metadata.operation`` a reference of 0s and 1s is read as binary, else as decimal."""
    text = str(reference).strip() if isinstance(reference, (str, int)) and not isinstance(reference, bool) else ""
    operation = metadata.get("operation")
    if operation is None:
        operation = "dec_to_bin" if _BINARY_DIGITS.fullmatch(text) else "bin_to_dec"
    pattern = _DECIMAL if operation == "bin_to_dec" else _BINARY_DIGITS
    if not pattern.fullmatch(text):
        raise UnusableReference(f"a binary reference is a {'decimal' if pattern is _DECIMAL else 'binary'} number, got {reference!r}")
    correct = get_generator("binary").check_answer({"metadata": {"answer": text, "operation": operation}}, reply)
    return AnswerCheck(correct, text, _last_line(reply))


def normalise(text: str) -> str:
    """Unicode-normalised, case-folded, whitespace collapsed, edge punctuation dropped."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(folded.split()).strip(_EDGE_PUNCTUATION)


def _as_number(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


@register_verifier(GENERIC)
def generic(reference: Any, reply: str, metadata: Mapping[str, Any]) -> AnswerCheck:
    """Normalised match: the whole reply, its last line, or what follows its last
    ``answer is`` / ``Answer:`` / ``####`` equals the reference once both are normalised
    (a list reference is its items one per line). A numeric reference also matches the
    reply's final number numerically (``1,000`` = ``1000.0``)."""
    if isinstance(reference, list):
        reference = "\n".join(str(item) for item in reference)
    if not isinstance(reference, (str, int, float)) or isinstance(reference, bool) or not str(reference).strip():
        raise UnusableReference(f"the generic verifier compares text or numbers, got {reference!r}")
    expected = normalise(str(reference))
    final = _FINAL_ANSWER.findall(reply)
    candidates = [reply, _last_line(reply), *final[-1:]]
    given = final[-1].strip() if final else _last_line(reply)
    if any(normalise(candidate) == expected for candidate in candidates):
        return AnswerCheck(True, str(reference), given)
    number = _as_number(expected)
    numbers = _NUMBER.findall(given) or _NUMBER.findall(reply)
    correct = number is not None and bool(numbers) and _as_number(numbers[-1]) == number
    return AnswerCheck(correct, str(reference), given)
