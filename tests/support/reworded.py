"""Generated problems in other words: the same problem as an example, with another prompt text."""

from __future__ import annotations

import random
from typing import Any

from tdm_dagster.generate.generators import get_generator
from tdm_dagster.generate.generators.syllo import SylloPuzzle, load_lexicon


def syllo_in_other_clue_order(example: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """The same hidden words as ``example`` (a built-in SYLLO puzzle), clues reversed and
    tiles reshuffled: the same problem, a different prompt and answer text."""
    by_word = {entry.word: entry for entry in load_lexicon()}
    entries = tuple(by_word[word] for word in reversed(example["metadata"]["answer"]))
    tiles = [syllable for entry in entries for syllable in entry.syllables]
    random.Random(seed).shuffle(tiles)
    user, assistant, details = get_generator("syllo").render(SylloPuzzle(entries, tuple(tiles)))
    assert user != example["messages"][0]["content"]
    return {
        "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}],
        "metadata": {**example["metadata"], **details},
    }
