"""Binary arithmetic: add, subtract and multiply binary numbers; convert to and from decimal.

Operand magnitudes grow with the level (``OPERAND_RANGES``). Multiplication takes its
second operand from a lower level (``multiplier_level``) so that products stay a length
a model can reasonably write out. The assistant turn is a short worked answer (via
decimal, then powers of two) ending in ``Answer: <result>``; the result is binary except
for ``bin_to_dec``, whose answer is decimal.
"""

from __future__ import annotations

import operator
import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from tdm_dagster.generate.generators.base import Example
from tdm_dagster.generate.generators.builtin import BuiltinGenerator, RenderedProblem

OPERAND_RANGES: dict[int, tuple[int, int]] = {
    1: (1, 10),
    2: (10, 100),
    3: (100, 500),
    4: (500, 1_000),
    5: (1_000, 5_000),
    6: (5_000, 10_000),
    7: (10_000, 100_000),
}
"""Inclusive operand bounds per level."""

ARITHMETIC: dict[str, tuple[str, str, Callable[[int, int], int]]] = {
    "add": ("+", "Add these binary numbers and give the sum in binary", operator.add),
    "sub": ("-", "Subtract these binary numbers and give the difference in binary", operator.sub),
    "mul": ("*", "Multiply these binary numbers and give the product in binary", operator.mul),
}
"""operation -> (symbol, instruction, function)."""
OPERATIONS = (*ARITHMETIC, "dec_to_bin", "bin_to_dec")

_ANSWER_LINE = re.compile(r"answer\s*[:=]\s*(.*)", re.IGNORECASE)
_BINARY_PREFIX = re.compile(r"\b0b(?=[01])", re.IGNORECASE)
_NUMBER_ON_ANSWER_LINE = re.compile(r"\d(?:[\d_, ]*\d)?")
"""Digits, allowing grouping by spaces, underscores or commas (``1011 0110``, ``12,345``)."""
_OPERAND = re.compile(r"\d+")
_LAST_NUMBER = {
    2: re.compile(r"(?<!\w)(?:0[bB])?([01]+)(?!\w)"),
    10: re.compile(r"(?<!\w)(\d+)(?!\w)"),
}


def multiplier_level(level: int) -> int:
    """Level whose range the second factor of a multiplication is drawn from."""
    return max(1, level // 2)


@dataclass(frozen=True)
class BinaryProblem:
    operation: str
    operands: tuple[int, ...]


def _powers_of_two(value: int) -> str:
    """``32 + 16 + 8`` for 56: the powers of two whose bits are set, largest first."""
    return " + ".join(str(1 << bit) for bit in range(value.bit_length() - 1, -1, -1) if value >> bit & 1)


def _to_binary_step(value: int) -> str:
    """``56 = 32 + 16 + 8, which is 111000 in binary.``: why the bits are what they are."""
    if value == 0:
        return "0 is 0 in binary."
    return f"{value} = {_powers_of_two(value)}, which is {value:b} in binary."


def _final_number(response: str, base: int) -> int | None:
    """The number on the last ``Answer:`` line, else the last base-``base`` number."""
    answer_lines = _ANSWER_LINE.findall(response)
    if answer_lines:
        match = _NUMBER_ON_ANSWER_LINE.search(_BINARY_PREFIX.sub("", answer_lines[-1]))
        digits = re.sub(r"[_, ]", "", match.group()) if match else ""
    else:
        numbers = _LAST_NUMBER[base].findall(response)
        digits = numbers[-1] if numbers else ""
    try:
        return int(digits, base)
    except ValueError:
        return None


class BinaryGenerator(BuiltinGenerator[BinaryProblem]):
    skill = "binary"
    spec = "chat_sft_v1"
    max_level = 7

    def draw(self, rng: random.Random, level: int) -> BinaryProblem:
        operation = rng.choice(OPERATIONS)
        low, high = OPERAND_RANGES[level]
        first = rng.randint(low, high)
        if operation in ("dec_to_bin", "bin_to_dec"):
            return BinaryProblem(operation, (first,))
        if operation == "mul":
            second = rng.randint(*OPERAND_RANGES[multiplier_level(level)])
        else:
            second = rng.randint(low, high)
        if operation == "sub" and second > first:
            first, second = second, first
        return BinaryProblem(operation, (first, second))

    def problem_key(self, problem: BinaryProblem) -> BinaryProblem:
        return problem

    def example_key(self, example: Example) -> str | None:
        """``<operation> <operands in decimal>`` (``add 11 6``), read from the user turn,
        which must be exactly as this generator writes it for ``metadata.operation``;
        None otherwise (a reworded prompt is judged by its text)."""
        metadata = example.get("metadata")
        operation = metadata.get("operation") if isinstance(metadata, dict) else None
        messages = example.get("messages")
        if operation not in OPERATIONS or not isinstance(messages, list):
            return None
        user = next((m.get("content") for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user"), None)
        numbers = _OPERAND.findall(user) if isinstance(user, str) else []
        if len(numbers) != (1 if operation in ("dec_to_bin", "bin_to_dec") else 2):
            return None
        try:
            operands = tuple(int(number, 10 if operation == "dec_to_bin" else 2) for number in numbers)
        except ValueError:
            return None
        problem = BinaryProblem(operation, operands)
        if self.render(problem).user != user.strip():
            return None
        return " ".join([operation, *map(str, operands)])

    def render(self, problem: BinaryProblem) -> RenderedProblem:
        operation = problem.operation
        if operation == "dec_to_bin":
            (value,) = problem.operands
            user = f"Convert the decimal number {value} to binary."
            work, answer = _to_binary_step(value), f"{value:b}"
        elif operation == "bin_to_dec":
            (value,) = problem.operands
            user = f"Convert the binary number {value:b} to decimal."
            work, answer = f"{value:b} is {_powers_of_two(value)} = {value} in decimal.", str(value)
        else:
            first, second = problem.operands
            symbol, instruction, apply = ARITHMETIC[operation]
            result = apply(first, second)
            user = f"{instruction}: {first:b} {symbol} {second:b}"
            work = "\n".join((
                f"In decimal, {first:b} is {first} and {second:b} is {second}.",
                f"{first} {symbol} {second} = {result}.",
                _to_binary_step(result),
            ))
            answer = f"{result:b}"
        return RenderedProblem(user, f"{work}\nAnswer: {answer}", {"answer": answer, "operation": operation})

    def check_answer(self, example: Example, response: str) -> bool:
        """True when the response's final number equals the answer: the number on its
        last ``Answer:`` line, else its last number (binary, or decimal for
        ``bin_to_dec``). Case, spacing, a ``0b`` prefix, leading zeros and digit grouping
        do not matter."""
        metadata = example["metadata"]
        base = 10 if metadata["operation"] == "bin_to_dec" else 2
        return _final_number(response, base) == int(metadata["answer"], base)
