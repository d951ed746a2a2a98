"""The outcome benchmark's generators: the healthy one, and the ways real ones fail.

Every generator answers SYLLO puzzles drawn by the packaged generator; the reference
answer the generator wrote stays in ``metadata.answer``, which is what the gate's
verifier checks a reply against (the gate sees nothing else of how a reply was made).

Two kinds of failure:

- **A weak teacher** (:class:`WeakTeacher`): a cheaper model that writes replies for
  whole batches and has blind spots. On its blind spots it is wrong every time, in the
  same way, confident and well formed (numbered, one word per line); elsewhere it is
  right. Its blind spots are fixed from the lexicon by rules, the same rules for every
  seed, and the benchmark never looks at how often they fire.
- **Broken batches** (:func:`broken_batch`): a batch-level event (a random weak model,
  a token limit, an undertrained model), as the benchmark had before.
"""

from __future__ import annotations

import difflib
import random
from collections.abc import Sequence
from dataclasses import dataclass

from tdm_dagster.generate.generators.syllo import LexiconEntry, SylloGenerator
from tests.support.gibberish import tiny_model_gibberish

LEVEL = 1
BROKEN_KINDS = ("random_weak_model", "truncated", "gibberish")
RANDOM_WEAK_MODEL_WRONG_SHARE = 0.7
"""A random weak model still gets some puzzles right."""
LONG_WORDS = 2
"""How many of the lexicon's longest words the weak teacher loses track of."""
CONFUSED_CLUES = 2
"""How many of the lexicon's tersest clues the weak teacher answers with a look-alike word."""
LONG_INPUT_QUANTILE = 0.75
"""The weak teacher loses the ordering rule on the longest quarter of prompts."""
_PROMPT_SAMPLE = 400
_PROMPT_SAMPLE_SEED = 2**30


def numbered(words: Sequence[str]) -> str:
    return "\n".join(f"{n}. {word}" for n, word in enumerate(words, start=1))


def reply(example: dict, text: str) -> dict:
    """The example with its assistant turn replaced; the reference answer stays."""
    user = example["messages"][0]
    return {**example, "messages": [user, {"role": "assistant", "content": text}]}


def tiles_of(example: dict) -> list[str]:
    """The syllable tiles as the prompt shows them."""
    line = next(line for line in example["messages"][0]["content"].splitlines() if line.startswith("Tiles: "))
    return line.removeprefix("Tiles: ").split(" | ")


@dataclass(frozen=True)
class WeakTeacher:
    """A teacher with three blind spots, each one a way real models fail:

    - ``long_words``: it loses the position of long words (the ones split into the most
      tokens) and writes each one swapped with its neighbour in the list;
    - ``confusions``: on a terse clue it answers the lexicon word that looks most like
      the right one (retrieval by surface form, not meaning);
    - ``long_prompt_chars``: on long prompts it misapplies the ordering rule and lists the
      words in the order their first syllables appear among the tiles (it follows the
      input's order instead of the clues').
    """

    syllables: dict[str, tuple[str, ...]]
    long_words: frozenset[str]
    confusions: dict[str, str]
    long_prompt_chars: int

    @classmethod
    def for_lexicon(cls, lexicon: Sequence[LexiconEntry], generator: SylloGenerator) -> WeakTeacher:
        words = [entry.word for entry in lexicon]
        longest = sorted(words, key=lambda w: (-len(w), w))[:LONG_WORDS]
        tersest = sorted(lexicon, key=lambda e: (len(e.clue.split()), len(e.clue), e.word))[:CONFUSED_CLUES]
        confusions = {entry.word: look_alike(entry.word, words) for entry in tersest}
        prompts = sorted(len(e["messages"][0]["content"]) for e in generator.generate(LEVEL, _PROMPT_SAMPLE, _PROMPT_SAMPLE_SEED))
        threshold = prompts[int(LONG_INPUT_QUANTILE * len(prompts))]
        return cls({e.word: e.syllables for e in lexicon}, frozenset(longest), confusions, threshold)

    def answer(self, example: dict) -> dict:
        words = list(example["metadata"]["answer"])
        if len(example["messages"][0]["content"]) >= self.long_prompt_chars:
            tiles = tiles_of(example)
            words.sort(key=lambda word: tiles.index(self.syllables[word][0]))
        for word in sorted(self.long_words & set(words)):
            i = words.index(word)
            j = i + 1 if i + 1 < len(words) else i - 1
            words[i], words[j] = words[j], words[i]
        return reply(example, numbered([self.confusions.get(word, word) for word in words]))

    def describe(self) -> dict:
        return {
            "long_words": sorted(self.long_words),
            "confusions": self.confusions,
            "long_prompt_chars": self.long_prompt_chars,
        }


def look_alike(word: str, words: Sequence[str]) -> str:
    """The other word most similar in spelling (ties: the first in alphabetical order)."""
    others = sorted(w for w in words if w != word)
    return max(others, key=lambda other: difflib.SequenceMatcher(None, word, other).ratio())


def random_weak_model_answer(example: dict, rng: random.Random, lexicon_words: Sequence[str]) -> dict:
    """The right words in another order, or one of them swapped for another word."""
    words = list(example["metadata"]["answer"])
    if rng.random() < 0.5:
        while words == example["metadata"]["answer"]:
            rng.shuffle(words)
    else:
        words[rng.randrange(len(words))] = rng.choice([w for w in lexicon_words if w not in words])
    return reply(example, numbered(words))


def truncated(example: dict, rng: random.Random) -> dict:
    """Cut by a token limit: somewhere in the first half of the reply."""
    text = example["messages"][1]["content"]
    return reply(example, text[: rng.randint(3, len(text) // 2)])


def broken_batch(kind: str, clean: list[dict], rng: random.Random, lexicon_words: Sequence[str]) -> list[dict]:
    if kind == "random_weak_model":
        return [random_weak_model_answer(e, rng, lexicon_words) if rng.random() < RANDOM_WEAK_MODEL_WRONG_SHARE else e for e in clean]
    if kind == "truncated":
        return [truncated(e, rng) for e in clean]
    return [reply(e, tiny_model_gibberish(rng)) for e in clean]
