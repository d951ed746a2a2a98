"""Built-in skill generators, what every one of them guarantees: the registry, determinism,
the example shape, argument validation and uniqueness. Each skill's own puzzles and
answer checks are in test_syllo.py and test_binary.py."""

from __future__ import annotations

import time

import pytest

from tdm_dagster.generate.generators import SKILLS, UnknownSkillError, get_generator, skill_names
from tdm_dagster.generate.generators.binary import BinaryGenerator
from tdm_dagster.generate.generators.builtin import MAX_DRAWS_PER_EXAMPLE
from tdm_dagster.generate.generators.syllo import SylloGenerator
from tests.unit.generate.helpers import user_text

GENERATORS = [pytest.param(generator, id=name) for name, generator in SKILLS.items()]
EVERY_LEVEL = [
    pytest.param(generator, level, id=f"{name}-L{level}")
    for name, generator in SKILLS.items()
    for level in range(1, generator.max_level + 1)
]
SYLLO = SylloGenerator()
BINARY = BinaryGenerator()


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
