"""Build the shipped reply model from real replies: ``python -m tdm_dagster.gate.text_model.train --data ../shared/data``.

Reads the public data's full files (``--data``: a folder holding ``gsm8k_train.alpaca.json``
and ``gpteacher_roleplay.alpaca.json``) and trains on the records the tests do NOT hold
(``tests/data/`` keeps the first 1,500 GSM8K and the first 1,000 roleplay records, and
all the seed tasks): the model is measured on replies it never saw, and the seed tasks
are a domain it never saw at all. Writes ``reply_bigrams.npz`` beside this file,
deterministically (same data, same bytes), atomically.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from tdm_dagster.gate.text_model.model import MODEL_PATH, tokens

HELD_OUT = {"gsm8k_train.alpaca.json": 1500, "gpteacher_roleplay.alpaca.json": 1000}
"""Records at the head of each file that the tests keep (``tests/data/``): never trained on."""
MIN_COUNT = 3
"""A word seen fewer times is left out of the vocabulary: its pairs say nothing reliable."""
MAX_VOCABULARY = 16_384
SMOOTHING = 0.9
"""Weight of the bigram estimate against the word's own frequency (interpolation)."""
GAIN_SCALE = 16
ENDING_CHARS = 3
"""Gains are stored as int8 in 1/16 nats."""


def training_replies(folder: Path) -> list[str]:
    """The replies of every public file past the records the tests hold."""
    replies = []
    for name, skip in HELD_OUT.items():
        records = json.loads((folder / name).read_text(encoding="utf-8"))
        replies.extend(str(record["output"]) for record in records[skip:])
    return replies


def build(replies: list[str]) -> dict[str, np.ndarray]:
    """The vocabulary, the stored gain of every seen pair of vocabulary words, and how
    often each word ends a reply (see :mod:`tdm_dagster.gate.text_model.model`)."""
    streams = [tokens(reply) for reply in replies]
    counts = Counter(word for stream in streams for word in stream)
    vocabulary = sorted((w for w, c in counts.items() if c >= MIN_COUNT), key=lambda w: (-counts[w], w))[:MAX_VOCABULARY]
    ids = {word: i for i, word in enumerate(vocabulary)}
    size = len(vocabulary)
    unigram = np.array([counts[w] for w in vocabulary], dtype=np.float64)
    pairs: Counter[int] = Counter()
    ends = np.zeros(size, dtype=np.int64)
    for stream in streams:
        known = [ids.get(word, -1) for word in stream]
        pairs.update(a * size + b for a, b in zip(known, known[1:]) if a >= 0 and b >= 0)
        if known and known[-1] >= 0:
            ends[known[-1]] += 1
    endings = word_endings(counts)
    keys = np.array(sorted(pairs), dtype=np.int64)
    first, second = keys // size, keys % size
    joint = np.array([pairs[k] for k in keys], dtype=np.float64)
    p_second = unigram[second] / unigram.sum()
    gain = np.log(SMOOTHING * joint / unigram[first] / p_second + (1 - SMOOTHING))
    return {
        "vocabulary": np.array(vocabulary),
        "pair_keys": keys.astype(np.uint32),
        "pair_gains": np.clip(np.round(gain * GAIN_SCALE), -127, 127).astype(np.int8),
        "word_counts": np.minimum(unigram, 2**31 - 1).astype(np.int32),
        "end_counts": ends.astype(np.int32),
        "unseen_gain": np.array(np.log(1 - SMOOTHING)),
        "endings": np.array(sorted(endings)),
        "ending_rates": np.array([endings[e] for e in sorted(endings)], dtype=np.float32),
        "gain_scale": np.array(GAIN_SCALE),
    }


def word_endings(counts: Counter[str]) -> dict[str, float]:
    """For each run of ``ENDING_CHARS`` letters seen in words, the share of its
    occurrences that ended the word: a word cut off mid-way ends on a run that words
    rarely end on ("averag", "questio", "libr"); ``"<"`` marks a word's start, so a short
    word is its own run."""
    inside: Counter[str] = Counter()
    ending: Counter[str] = Counter()
    for word, count in counts.items():
        if not word.isalpha():
            continue
        marked = "<" + word
        for end in range(ENDING_CHARS, len(marked) + 1):
            inside[marked[end - ENDING_CHARS : end]] += count
        if len(marked) >= ENDING_CHARS:
            ending[marked[-ENDING_CHARS:]] += count
        else:
            ending[marked] += count
            inside[marked] += count
    return {run: ending[run] / total for run, total in inside.items() if total >= MIN_COUNT}


def write(arrays: dict[str, np.ndarray], path: Path) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".reply_bigrams.")
    with os.fdopen(fd, "wb") as out:
        out.write(buffer.getvalue())
        out.flush()
        os.fsync(out.fileno())
    os.replace(temp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder with the public data's full files")
    parser.add_argument("--out", type=Path, default=MODEL_PATH)
    args = parser.parse_args()
    replies = training_replies(args.data)
    arrays = build(replies)
    write(arrays, args.out)
    print(
        f"{len(replies)} replies -> {len(arrays['vocabulary'])} words, {len(arrays['pair_keys'])} pairs: "
        f"{args.out} ({args.out.stat().st_size:,} bytes)"
    )


if __name__ == "__main__":
    main()
