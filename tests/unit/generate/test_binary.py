"""The binary arithmetic generator: operands within each level's bounds, correct answers,
and an answer check that tolerates formatting but not a wrong number."""

from __future__ import annotations

import re

import pytest

from tdm_dagster.generate.generators.binary import (
    OPERAND_RANGES,
    OPERATIONS,
    BinaryGenerator,
    multiplier_level,
)
from tests.unit.generate.helpers import assistant_text, user_text

BINARY = BinaryGenerator()


def solve_binary_prompt(example: dict) -> tuple[str, tuple[int, ...], int]:
    """Read the operation and operands back out of the user turn, and compute the result."""
    text = user_text(example)
    if match := re.search(r": ([01]+) ([-+*]) ([01]+)$", text):
        first, second = int(match.group(1), 2), int(match.group(3), 2)
        operation, result = {
            "+": ("add", first + second),
            "-": ("sub", first - second),
            "*": ("mul", first * second),
        }[match.group(2)]
        return operation, (first, second), result
    if match := re.fullmatch(r"Convert the decimal number (\d+) to binary\.", text):
        return "dec_to_bin", (int(match.group(1)),), int(match.group(1))
    match = re.fullmatch(r"Convert the binary number ([01]+) to decimal\.", text)
    assert match, text
    return "bin_to_dec", (int(match.group(1), 2),), int(match.group(1), 2)


@pytest.mark.parametrize("level", range(1, 8))
def test_binary_operands_stay_in_level_bounds_and_answers_are_correct(level):
    low, high = OPERAND_RANGES[level]
    seen_operations = set()
    for example in BINARY.generate(level, 300, level):
        operation, operands, result = solve_binary_prompt(example)
        metadata = example["metadata"]
        assert metadata["operation"] == operation
        seen_operations.add(operation)
        assert low <= operands[0] <= high
        if operation == "mul":
            assert OPERAND_RANGES[multiplier_level(level)][0] <= operands[1] <= OPERAND_RANGES[multiplier_level(level)][1]
        elif operation in ("add", "sub"):
            assert low <= operands[1] <= high
        if operation == "sub":
            assert result >= 0
        expected = str(result) if operation == "bin_to_dec" else format(result, "b")
        assert metadata["answer"] == expected
        assert assistant_text(example).splitlines()[-1] == f"Answer: {expected}"
    assert seen_operations == set(OPERATIONS)


def test_multiplier_comes_from_a_lower_level_above_level_one():
    assert multiplier_level(1) == 1
    assert all(multiplier_level(level) < level for level in range(2, 8))


def test_binary_check_answer_accepts_generated_answers():
    for level in range(1, 8):
        for example in BINARY.generate(level, 40, 5):
            assert BINARY.check_answer(example, assistant_text(example))


def binary_example(operation: str) -> dict:
    return next(e for e in BINARY.generate(4, 200, 12) if e["metadata"]["operation"] == operation)


@pytest.mark.parametrize("operation", ["add", "sub", "mul", "dec_to_bin"])
def test_binary_check_answer_tolerates_formats(operation):
    example = binary_example(operation)
    answer = example["metadata"]["answer"]
    grouped = " ".join(answer[i : i + 4] for i in range(0, len(answer), 4))
    for response in (
        f"Answer: {answer}",
        f"answer:{answer}.",
        f"**Answer:** `0b{answer}`",
        f"ANSWER = 0{answer}",
        f"Answer: {grouped}",
        f"The result is {answer}.",
        f"Answer: {answer}\nDouble-checked against 11.",
    ):
        assert BINARY.check_answer(example, response), response


@pytest.mark.parametrize("operation", ["add", "sub", "mul", "dec_to_bin"])
def test_binary_check_answer_rejects_wrong_answers(operation):
    example = binary_example(operation)
    answer = int(example["metadata"]["answer"], 2)
    for response in (
        f"Answer: {answer + 1:b}",
        f"Answer: {answer:b}1",
        f"Answer: {answer}" if answer > 1 else "Answer: 2",  # decimal where binary is asked
        f"{answer:b}\nAnswer: {answer + 2:b}",
        "I am not sure.",
        "",
    ):
        assert not BINARY.check_answer(example, response), response


def test_binary_to_decimal_answers_are_decimal():
    example = binary_example("bin_to_dec")
    value = int(example["metadata"]["answer"])
    assert BINARY.check_answer(example, f"Answer: {value}")
    assert BINARY.check_answer(example, f"That is {value}.")
    assert not BINARY.check_answer(example, f"Answer: {value:b}")
    assert not BINARY.check_answer(example, f"Answer: {value + 1}")
