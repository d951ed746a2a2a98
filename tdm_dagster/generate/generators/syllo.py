"""SYLLO word puzzles: rebuild English words from their shuffled syllable tiles.

Level ``L`` hides ``L + 3`` words (level 1: 4 words ... level 5: 8 words). The user turn
shows every word's syllables as one shuffled pool of tiles plus one short clue per word
(with its syllable count); the assistant turn lists the words numbered in clue order,
one per line, which ``check_answer`` can verify without ambiguity.

Words come from ``syllo_lexicon.tsv`` (``word<TAB>syl-la-bles<TAB>clue``, a header row
first), shipped as package data and parsed once per process.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

from tdm_dagster.generate.generators.base import Example
from tdm_dagster.generate.generators.builtin import BuiltinGenerator, RenderedProblem

LEXICON_FILE = "syllo_lexicon.tsv"
_LEXICON_HEADER = "word\tsyllables\tclue"
_WORD = re.compile(r"[a-z]+")
_NUMBERED_LINE = re.compile(r"^\W*(\d+)\s*[.):\-]\s*\W*([A-Za-z]+)")
"""``1. word``, ``2) Word``, ``- 3: **WORD**``: the number and the first word after it."""


@dataclass(frozen=True)
class LexiconEntry:
    word: str
    syllables: tuple[str, ...]
    clue: str


@dataclass(frozen=True)
class SylloPuzzle:
    entries: tuple[LexiconEntry, ...]
    """The hidden words, in clue order."""
    tiles: tuple[str, ...]
    """All their syllables, shuffled."""


def parse_lexicon(text: str, source: str = LEXICON_FILE) -> tuple[LexiconEntry, ...]:
    """Parse and check a lexicon; a bad row raises ``ValueError`` naming its line, since
    a wrong syllable split would silently make puzzles unsolvable."""
    lines = text.splitlines()
    if not lines or lines[0] != _LEXICON_HEADER:
        raise ValueError(f"{source}: first line must be the header {_LEXICON_HEADER!r}")
    entries: list[LexiconEntry] = []
    seen: set[str] = set()
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise ValueError(f"{source}:{number}: expected 3 tab-separated fields, got {len(fields)}")
        word, hyphenated, clue = fields
        syllables = tuple(hyphenated.split("-"))
        if not _WORD.fullmatch(word) or "".join(syllables) != word or not all(syllables):
            raise ValueError(f"{source}:{number}: syllables {hyphenated!r} do not spell the lower-case word {word!r}")
        if not 2 <= len(syllables) <= 4:
            raise ValueError(f"{source}:{number}: {word!r} has {len(syllables)} syllables; 2 to 4 allowed")
        if not clue.strip():
            raise ValueError(f"{source}:{number}: {word!r} has an empty clue")
        if word in seen:
            raise ValueError(f"{source}:{number}: {word!r} appears twice")
        seen.add(word)
        entries.append(LexiconEntry(word, syllables, clue.strip()))
    return tuple(entries)


@functools.cache
def load_lexicon() -> tuple[LexiconEntry, ...]:
    """The packaged lexicon, read once per process."""
    text = resources.files("tdm_dagster.generate.generators").joinpath(LEXICON_FILE).read_text(encoding="utf-8")
    return parse_lexicon(text)


def words_for_level(level: int) -> int:
    return level + 3


def parse_word_list(response: str) -> list[str]:
    """The words a response gives, lower-cased.

    Numbered lines (``1. word``) win, ordered by their numbers, a later line with the
    same number replacing an earlier one (a model may draft, then answer); a response
    without numbered lines is read as its words in order (``word`` per line, or
    ``word, word, ...``).
    """
    numbered: dict[int, str] = {}
    for line in response.splitlines():
        match = _NUMBERED_LINE.match(line)
        if match:
            numbered[int(match.group(1))] = match.group(2).lower()
    if numbered:
        numbers = sorted(numbered)
        if numbers != list(range(1, len(numbers) + 1)):
            return []
        return [numbered[number] for number in numbers]
    return _WORD.findall(response.lower())


class SylloGenerator(BuiltinGenerator[SylloPuzzle]):
    skill = "syllo"
    spec = "syllo_v1"
    max_level = 5

    def __init__(self, lexicon: Sequence[LexiconEntry] | None = None) -> None:
        """``lexicon``: the words to hide (at least ``words_for_level(max_level)``); None:
        the packaged lexicon. A smaller one makes a task a tiny model can learn quickly."""
        if lexicon is not None and len(lexicon) < words_for_level(self.max_level):
            raise ValueError(f"a SYLLO lexicon needs at least {words_for_level(self.max_level)} words, got {len(lexicon)}")
        self._lexicon = tuple(lexicon) if lexicon is not None else None

    def draw(self, rng: random.Random, level: int) -> SylloPuzzle:
        entries = tuple(rng.sample(self._lexicon or load_lexicon(), words_for_level(level)))
        tiles = [syllable for entry in entries for syllable in entry.syllables]
        rng.shuffle(tiles)
        return SylloPuzzle(entries, tuple(tiles))

    def problem_key(self, problem: SylloPuzzle) -> frozenset[str]:
        """The set of hidden words: the same words in another clue order is the same puzzle."""
        return frozenset(entry.word for entry in problem.entries)

    def example_key(self, example: Example) -> str | None:
        """The hidden words (``metadata.answer`` or ``reference_answer``), sorted: clue
        order, tile order and clue wording aside, it is the same puzzle. None without them."""
        metadata = example.get("metadata")
        if not isinstance(metadata, dict):
            return None
        words = metadata.get("reference_answer") or metadata.get("answer")
        if not isinstance(words, list) or not words or not all(isinstance(w, str) and _WORD.fullmatch(w.lower()) for w in words):
            return None
        return " ".join(sorted(word.lower() for word in words))

    def render(self, problem: SylloPuzzle) -> RenderedProblem:
        count = len(problem.entries)
        clues = "\n".join(
            f"{number}. {entry.clue} ({len(entry.syllables)} syllables)"
            for number, entry in enumerate(problem.entries, start=1)
        )
        user = (
            f"Solve this SYLLO puzzle: rebuild {count} English words from the syllable tiles below. "
            "Every tile is used exactly once.\n\n"
            f"Tiles: {' | '.join(problem.tiles)}\n\n"
            f"Clues:\n{clues}\n\n"
            f"Reply with the {count} words, one per line, numbered in clue order."
        )
        answer = [entry.word for entry in problem.entries]
        assistant = "\n".join(f"{number}. {word}" for number, word in enumerate(answer, start=1))
        return RenderedProblem(user, assistant, {"answer": answer})

    def check_answer(self, example: Example, response: str) -> bool:
        """True when the response names exactly the hidden words, in clue order; case,
        spacing, numbering style and markdown emphasis do not matter."""
        expected = [word.lower() for word in example["metadata"]["answer"]]
        return parse_word_list(response) == expected
