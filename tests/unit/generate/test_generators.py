"""Built-in skill generators: determinism, level ranges, answers, uniqueness, validation."""

from __future__ import annotations

import re
import time

import pytest

from tdm_dagster.generate.generators import SKILLS, UnknownSkillError, get_generator, skill_names
from tdm_dagster.generate.generators.binary import (
    OPERAND_RANGES,
    OPERATIONS,
    BinaryGenerator,
    multiplier_level,
)
from tdm_dagster.generate.generators.builtin import MAX_DRAWS_PER_EXAMPLE
from tdm_dagster.generate.generators.syllo import SylloGenerator, load_lexicon, parse_lexicon

GENERATORS = [pytest.param(generator, id=name) for name, generator in SKILLS.items()]
EVERY_LEVEL = [
    pytest.param(generator, level, id=f"{name}-L{level}")
    for name, generator in SKILLS.items()
    for level in range(1, generator.max_level + 1)
]
SYLLO = SylloGenerator()
BINARY = BinaryGenerator()
LEXICON = {entry.word: entry for entry in load_lexicon()}


def user_text(example: dict) -> str:
    return example["messages"][0]["content"]


def assistant_text(example: dict) -> str:
    return example["messages"][1]["content"]


# --- registry --------------------------------------------------------------------------

def test_registry_lists_both_skills():
    assert skill_names() == ["syllo", "binary"]
    assert isinstance(SKILLS["syllo"], SylloGenerator)
    assert isinstance(SKILLS["binary"], BinaryGenerator)
    assert (SKILLS["syllo"].spec, SKILLS["syllo"].max_level) == ("syllo_v1", 5)
    assert (SKILLS["binary"].spec, SKILLS["binary"].max_level) == ("chat_sft_v1", 7)


@pytest.mark.parametrize("name", ["syllo", " SYLLO ", "Syllo\n"])
def test_get_generator_ignores_case_and_spaces(name):
    assert get_generator(name) is SKILLS["syllo"]


@pytest.mark.parametrize("name", ["sylo", "", "binary2", None])
def test_unknown_skill_lists_known_skills(name):
    with pytest.raises(UnknownSkillError) as raised:
        get_generator(name)
    assert isinstance(raised.value, KeyError) and isinstance(raised.value, ValueError)
    assert "syllo" in str(raised.value) and "binary" in str(raised.value)


# --- determinism -----------------------------------------------------------------------

@pytest.mark.parametrize("generator", GENERATORS)
def test_same_seed_gives_identical_examples(generator):
    for level in range(1, generator.max_level + 1):
        assert generator.generate(level, 40, 123) == generator.generate(level, 40, 123)


@pytest.mark.parametrize("generator", GENERATORS)
def test_neighbouring_seeds_give_unrelated_batches(generator):
    """Seeds 1 and 2 must not share examples (as they would if example seeds were
    simply batch seed + index)."""
    level = generator.max_level
    first = [user_text(e) for e in generator.generate(level, 100, 1)]
    second = [user_text(e) for e in generator.generate(level, 100, 2)]
    assert not set(first) & set(second)


@pytest.mark.parametrize("generator", GENERATORS)
def test_any_example_regenerates_from_its_recorded_seed(generator):
    level = generator.max_level
    for example in generator.generate(level, 30, 99):
        assert generator.generate(level, 1, example["metadata"]["seed"]) == [example]


@pytest.mark.parametrize("generator", GENERATORS)
def test_first_example_uses_the_batch_seed(generator):
    assert generator.generate(1, 3, 2024)[0]["metadata"]["seed"] == 2024


# --- shape -----------------------------------------------------------------------------

@pytest.mark.parametrize(("generator", "level"), EVERY_LEVEL)
def test_examples_are_one_user_then_one_assistant_turn(generator, level):
    examples = generator.generate(level, 25, 7)
    assert len(examples) == 25
    for example in examples:
        assert set(example) == {"messages", "metadata"}
        assert [m["role"] for m in example["messages"]] == ["user", "assistant"]
        assert all(isinstance(m["content"], str) and m["content"].strip() for m in example["messages"])
        metadata = example["metadata"]
        assert metadata["skill"] == generator.skill
        assert metadata["level"] == level
        assert metadata["source"] == "builtin"
        assert type(metadata["seed"]) is int and metadata["seed"] >= 0


@pytest.mark.parametrize("generator", GENERATORS)
def test_zero_count_gives_empty_batch(generator):
    assert generator.generate(1, 0, 5) == []


@pytest.mark.parametrize("generator", GENERATORS)
def test_progress_is_reported_about_every_percent(generator):
    calls = []
    generator.generate(1, 1000, 3, progress=lambda done, total: calls.append((done, total)))
    assert 95 <= len(calls) <= 105
    assert calls[-1] == (1000, 1000)
    assert all(total == 1000 for _, total in calls)
    assert [done for done, _ in calls] == sorted({done for done, _ in calls})


# --- argument validation ---------------------------------------------------------------

@pytest.mark.parametrize("generator", GENERATORS)
@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"level": 0}, "level"),
        ({"level": 99}, "level"),
        ({"level": "1"}, "level"),
        ({"level": 1.0}, "level"),
        ({"level": True}, "level"),
        ({"count": -1}, "count"),
        ({"count": 2.5}, "count"),
        ({"count": "3"}, "count"),
        ({"seed": 1.5}, "seed"),
        ({"seed": "7"}, "seed"),
        ({"seed": None}, "seed"),
        ({"seed": True}, "seed"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(generator, arguments, named):
    call = {"level": 1, "count": 3, "seed": 0, **arguments}
    with pytest.raises(ValueError, match=rf"^{named} must be"):
        generator.generate(call["level"], call["count"], call["seed"])


@pytest.mark.parametrize("generator", GENERATORS)
def test_level_error_states_the_allowed_range(generator):
    with pytest.raises(ValueError, match=rf"from 1 to {generator.max_level}, got {generator.max_level + 1}"):
        generator.generate(generator.max_level + 1, 1, 0)


def test_negative_and_huge_seeds_are_accepted():
    for seed in (-5, 2**80):
        assert SYLLO.generate(1, 2, seed) == SYLLO.generate(1, 2, seed)


# --- uniqueness ------------------------------------------------------------------------

@pytest.mark.parametrize(("generator", "level"), EVERY_LEVEL)
def test_no_problem_repeats_within_a_batch(generator, level):
    # 150 stays well inside the smallest problem space (binary level 1: 275 problems).
    prompts = [user_text(e) for e in generator.generate(level, 150, 11)]
    assert len(set(prompts)) == len(prompts)


def test_syllo_never_repeats_a_word_set_in_a_batch():
    word_sets = [frozenset(e["metadata"]["answer"]) for e in SYLLO.generate(1, 2000, 4)]
    assert len(set(word_sets)) == len(word_sets)


def test_batch_larger_than_problem_space_finishes_with_repeats():
    examples = BINARY.generate(1, 3000, 8)
    assert len(examples) == 3000
    assert len({user_text(e) for e in examples}) <= 275  # add 100 + sub 55 + mul 100 + conversions 20


def test_exhausted_problem_space_stops_redrawing(monkeypatch):
    """Once one example used up its redraws, the rest of the batch takes one draw each."""
    generator = BinaryGenerator()
    draws = 0
    original_draw = generator.draw

    def counting_draw(rng, level):
        nonlocal draws
        draws += 1
        return original_draw(rng, level)

    monkeypatch.setattr(generator, "draw", counting_draw)
    generator.generate(1, 10_000, 8)
    assert draws <= 10_000 + 275 * MAX_DRAWS_PER_EXAMPLE


@pytest.mark.parametrize("generator", GENERATORS)
def test_large_batches_stay_fast(generator):
    """A guard against accidental quadratic work (the full 100,000 takes a few seconds)."""
    for level in (1, generator.max_level):
        started = time.perf_counter()
        generator.generate(level, 20_000, 1)
        assert time.perf_counter() - started < 10


# --- SYLLO -----------------------------------------------------------------------------

def syllo_tiles(example: dict) -> list[str]:
    match = re.search(r"^Tiles: (.+)$", user_text(example), re.MULTILINE)
    assert match, user_text(example)
    return match.group(1).split(" | ")


def syllo_clues(example: dict) -> list[str]:
    return re.findall(r"^\d+\. (.+) \(\d syllables\)$", user_text(example), re.MULTILINE)


@pytest.mark.parametrize("level", range(1, 6))
def test_syllo_puzzle_matches_its_answer(level):
    for example in SYLLO.generate(level, 60, level):
        words = example["metadata"]["answer"]
        assert len(words) == level + 3
        assert len(set(words)) == len(words)
        entries = [LEXICON[word] for word in words]
        expected_tiles = [syllable for entry in entries for syllable in entry.syllables]
        assert sorted(syllo_tiles(example)) == sorted(expected_tiles)
        assert syllo_clues(example) == [entry.clue for entry in entries]


def test_syllo_tiles_are_shuffled():
    example = SYLLO.generate(5, 1, 3)[0]
    in_word_order = [s for word in example["metadata"]["answer"] for s in LEXICON[word].syllables]
    assert syllo_tiles(example) != in_word_order


def test_syllo_assistant_lists_words_numbered_in_clue_order():
    example = SYLLO.generate(2, 1, 17)[0]
    expected = [f"{n}. {word}" for n, word in enumerate(example["metadata"]["answer"], start=1)]
    assert assistant_text(example).splitlines() == expected


def test_syllo_check_answer_accepts_generated_answers():
    for level in range(1, 6):
        for example in SYLLO.generate(level, 30, 21):
            assert SYLLO.check_answer(example, assistant_text(example))


@pytest.fixture
def syllo_example():
    return SYLLO.generate(1, 1, 31)[0]


def reformat(words: list[str], line: str) -> str:
    return "\n".join(line.format(n=n, w=w) for n, w in enumerate(words, start=1))


@pytest.mark.parametrize(
    "style",
    ["{n}. {w}", "{n}) {w}", "  {n}.   {W}  ", "- {n}: **{w}**", "{n} - {C}", "{w}", "{C}."],
)
def test_syllo_check_answer_tolerates_case_space_and_numbering(syllo_example, style):
    words = syllo_example["metadata"]["answer"]
    response = "\n".join(
        style.format(n=n, w=w, W=w.upper(), C=w.capitalize()) for n, w in enumerate(words, start=1)
    )
    assert SYLLO.check_answer(syllo_example, response)


def test_syllo_check_answer_accepts_one_line_lists_and_a_final_draft(syllo_example):
    words = syllo_example["metadata"]["answer"]
    assert SYLLO.check_answer(syllo_example, ", ".join(words))
    draft = reformat(["wrong"] * len(words), "{n}. {w}")
    assert SYLLO.check_answer(syllo_example, f"Draft:\n{draft}\nFinal:\n{reformat(words, '{n}. {w}')}")


def test_syllo_check_answer_rejects_wrong_answers(syllo_example):
    words = syllo_example["metadata"]["answer"]
    other = next(word for word in LEXICON if word not in words)
    wrong = [
        words[::-1],
        words[:-1],
        [*words, other],
        [other, *words[1:]],
    ]
    for answer in wrong:
        assert not SYLLO.check_answer(syllo_example, reformat(answer, "{n}. {w}")), answer
    assert not SYLLO.check_answer(syllo_example, "")
    gap = "\n".join(f"{n}. {w}" for n, w in zip((1, 2, 3, 5), words))
    assert not SYLLO.check_answer(syllo_example, gap)


def test_lexicon_is_large_and_consistent():
    entries = load_lexicon()
    assert len(entries) >= 300
    assert len({entry.word for entry in entries}) == len(entries)
    for entry in entries:
        assert 2 <= len(entry.syllables) <= 4, entry
        assert "".join(entry.syllables) == entry.word
        clue_words = set(re.findall(r"[a-z]+", entry.clue.lower()))
        assert entry.word not in entry.clue.lower(), f"clue gives away {entry.word!r}"
        leaked = [s for s in entry.syllables if len(s) >= 3 and s in clue_words]
        assert not leaked, f"clue for {entry.word!r} contains its tile(s) {leaked}"


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("table\tta-bel\tFurniture", "do not spell"),
        ("table\ttable\tFurniture", "1 syllables"),
        ("table\tta-ble", "3 tab-separated"),
        ("table\tta-ble\t ", "empty clue"),
        ("Table\tTa-ble\tFurniture", "lower-case"),
    ],
)
def test_lexicon_parser_rejects_bad_rows_with_line_numbers(row, problem):
    with pytest.raises(ValueError, match=rf"lex\.tsv:2: .*{problem}"):
        parse_lexicon(f"word\tsyllables\tclue\n{row}\n", source="lex.tsv")


def test_lexicon_parser_rejects_duplicates_and_missing_header():
    with pytest.raises(ValueError, match="lex.tsv:3: 'table' appears twice"):
        parse_lexicon("word\tsyllables\tclue\ntable\tta-ble\tA\ntable\tta-ble\tB\n", source="lex.tsv")
    with pytest.raises(ValueError, match="header"):
        parse_lexicon("table\tta-ble\tA\n", source="lex.tsv")


# --- binary ----------------------------------------------------------------------------

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
