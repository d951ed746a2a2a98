"""A word-pair language model of real replies, shipped in the package (``reply_bigrams.npz``).

For each pair of adjacent words that are both in its vocabulary, the model stores how
much more likely the second word is after the first than on its own (the *gain*, in
nats: ``log(P(b | a) / P(b))``, interpolated so that a pair never seen scores
``log(0.1)``). English written by a person or a working model follows its grammar
pair after pair (the mean gain of real replies is well above 0); word salad, shuffled
words and junk are pairs the language never writes (mean gain near ``log(0.1)``). Words
out of the vocabulary are skipped, not punished, so names, numbers and a domain's terms
cost nothing: only the glue between common words is judged.

It also counts how often each word ended a real reply: a reply whose last word is one
that real replies end on almost never ("the", "of", "each", "make") was cut off.

numpy loads here, on first use, not at code-location import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    import numpy as np

MODEL_PATH = Path(__file__).resolve().parent / "reply_bigrams.npz"
SENTENCE_END = "."
_TOKEN = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*|\d+(?:[.,]\d+)*|[.!?]")


def tokens(text: str) -> list[str]:
    """Lower-case words, one ``"0"`` per number and one ``"."`` per sentence end, in order."""
    out = []
    for token in _TOKEN.findall(text.lower()):
        first = token[0]
        out.append("0" if first.isdigit() else SENTENCE_END if first in ".!?" else token.replace("’", "'"))
    return out


WINDOW = 16
"""Judged pairs per window: fluency is the worst window's mean, so a junk tail after a
good answer is judged on its own."""
MIN_PAIRS = 8
"""A reply with fewer judged pairs is too short to judge ("Paris", "18 apples")."""
COMMON_WORDS = 300
"""Only pairs of the vocabulary's most frequent words are judged: for them 8,119 replies
are evidence enough that a pair never seen is one English does not write (measured:
judging all 9,649 words pulls out-of-domain prose, the README's, to salad's level)."""
MIN_END_COUNT = 100
RARE_END = 0.001
"""A word seen ``MIN_END_COUNT`` times or more that ended under this share of them ends
no finished reply ("the", "of", "each")."""
FRAGMENT_ENDING = 0.02
"""A word out of the vocabulary whose last three letters end under this share of the
words they occur in is a word cut in two ("averag", "questio", "libr")."""
_LAST_WORD = re.compile(r"(?<![^\W\d_])([a-z]+)\Z")
"""A reply ending on a lower-case word, nothing after it (no full stop, digit or bracket)."""


@dataclass(frozen=True)
class ReplyModel:
    vocabulary: dict[str, int]
    """Word -> id, most frequent first."""
    pair_keys: np.ndarray
    pair_gains: np.ndarray
    word_counts: np.ndarray
    end_counts: np.ndarray
    unseen_gain: float
    endings: dict[str, float]


@lru_cache(maxsize=1)
def load_model(path: Path = MODEL_PATH) -> ReplyModel:
    """The shipped model, read once (no network: the file is part of the package)."""
    import numpy as np

    with np.load(path, allow_pickle=False) as arrays:
        scale = float(arrays["gain_scale"])
        return ReplyModel(
            vocabulary={str(word): i for i, word in enumerate(arrays["vocabulary"])},
            pair_keys=arrays["pair_keys"].astype(np.int64),
            pair_gains=arrays["pair_gains"].astype(np.float64) / scale,
            word_counts=arrays["word_counts"].astype(np.int64),
            end_counts=arrays["end_counts"].astype(np.int64),
            unseen_gain=float(arrays["unseen_gain"]),
            endings=dict(zip(map(str, arrays["endings"]), map(float, arrays["ending_rates"]))),
        )


def fluencies(texts: Sequence[str]) -> list[float | None]:
    """Each reply's fluency: the least mean over ``WINDOW`` consecutive judged pairs (all
    of them when fewer) of the pair gain less the gain of a pair never seen, so 0 is
    "no pair English writes" and real replies score about 3 (median); None where a reply
    has under ``MIN_PAIRS`` judged pairs. All replies in one numpy pass."""
    import numpy as np

    model = load_model()
    all_ids = np.array(_batch_ids(texts), dtype=np.int64)
    ends = all_ids == -2
    owner = np.cumsum(ends) - ends  # the reply of each token
    first, second = all_ids[:-1], all_ids[1:]
    judged = (first >= 0) & (second >= 0) & (first < COMMON_WORDS) & (second < COMMON_WORDS)
    keys = first[judged] * len(model.vocabulary) + second[judged]
    slot = np.minimum(np.searchsorted(model.pair_keys, keys), len(model.pair_keys) - 1)
    gains = np.where(model.pair_keys[slot] == keys, model.pair_gains[slot], model.unseen_gain) - model.unseen_gain
    pair_owner = owner[:-1][judged]
    counts = np.bincount(pair_owner, minlength=len(texts))
    worst = np.bincount(pair_owner, weights=gains, minlength=len(texts)) / np.maximum(counts, 1)
    if len(gains) > WINDOW:
        sums = np.cumsum(np.concatenate(([0.0], gains)))
        window_means = (sums[WINDOW:] - sums[:-WINDOW]) / WINDOW  # pairs i..i+WINDOW-1
        whole = pair_owner[: len(window_means)] == pair_owner[WINDOW - 1 :]
        np.minimum.at(worst, pair_owner[: len(window_means)][whole], window_means[whole])
    return [float(value) if count >= MIN_PAIRS else None for value, count in zip(worst, counts)]


_REPLY_END = "\x00"
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_BATCH_TOKEN = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*|\d+(?:[.,]\d+)*|[.!?\x00]")


@lru_cache(maxsize=1)
def _lookup() -> dict[str, int]:
    """The shipped vocabulary as :func:`tokens` maps each raw token: sentence ends and
    the reply separator (-2) added."""
    vocabulary = load_model().vocabulary
    period = vocabulary.get(SENTENCE_END, -1)
    return {**vocabulary, "!": period, "?": period, _REPLY_END: -2}


def _batch_ids(texts: Sequence[str]) -> list[int]:
    """The vocabulary ids of every reply's :func:`tokens`, -1 for a word out of it, -2
    after each reply: one regex pass over all replies joined (what :func:`tokens` gives,
    reply by reply, at a third of the cost)."""
    joined = _REPLY_END.join(text.replace(_REPLY_END, " ") if _REPLY_END in text else text for text in texts) + _REPLY_END
    found = _BATCH_TOKEN.findall(_NUMBER.sub("0", joined).lower().replace("’", "'"))
    return list(map(_lookup().get, found, repeat(-1, len(found))))


def unfinished_ending(text: str) -> str | None:
    """Why ``text`` reads as cut off, or None: it ends on a lower-case word with nothing
    after it, and that word is one real replies do not end on, or no word at all (a
    fragment: an unknown word ending in letters words rarely end in)."""
    match = _LAST_WORD.search(text.rstrip())
    if match is None:
        return None
    model = load_model()
    word = match.group(1)
    index = model.vocabulary.get(word)
    if index is not None:
        seen = model.word_counts[index]
        if seen >= MIN_END_COUNT and model.end_counts[index] < RARE_END * seen:
            return f"ends on '{word}', which ended {model.end_counts[index]} of {seen} uses in real replies"
        return None
    rate = model.endings.get(("<" + word)[-3:], 0.0)
    if rate < FRAGMENT_ENDING:
        return f"ends on '{word}', a word cut off ('{word[-3:]}' ends {rate:.1%} of the words it is in)"
    return None
