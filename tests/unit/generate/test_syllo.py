"""The SYLLO generator: puzzles that match their answers, the answer check, the lexicon."""

from __future__ import annotations

import re

import pytest

from tdm_dagster.generate.generators.syllo import SylloGenerator, load_lexicon, parse_lexicon
from tests.unit.generate.helpers import assistant_text, user_text

SYLLO = SylloGenerator()
LEXICON = {entry.word: entry for entry in load_lexicon()}


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


def test_a_smaller_lexicon_hides_only_its_own_words_and_must_cover_the_top_level() -> None:
    lexicon = load_lexicon()[:12]
    generator = SylloGenerator(lexicon)
    words = {entry.word for entry in lexicon}
    for level in (1, 5):
        for example in generator.generate(level, 30, 7):
            assert set(example["metadata"]["answer"]) <= words
            assert generator.check_answer(example, assistant_text(example))
    with pytest.raises(ValueError, match="at least 8 words, got 7"):
        SylloGenerator(load_lexicon()[:7])
