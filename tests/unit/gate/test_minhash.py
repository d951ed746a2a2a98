"""The vectorised shingling, signatures and bands against a plain-Python statement of the
same definitions, on real public texts (tests/data) and awkward ones.

The numpy code is rewritten for speed from time to time; the ids, signatures and band
hashes it produces are stored in near-duplicate indexes and decide which pairs are
found, so a faster version must give exactly the same numbers.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.bench_near_dup import real_texts
from tdm_dagster.gate import minhash
from tdm_dagster.gate.minhash import band_hashes, lsh_shape, normalize_text, shingle_sets, signatures
from tests.support.fixture_data import FIXTURES

MASK = (1 << 64) - 1
BYTE_BASE = 0x100000001B3
WORD_BASE = 0x9E3779B97F4A7C15
EMPTY = 0xFFFFFFFF
AWKWARD = [
    "",
    "   ",
    "!!! ???",
    "one",
    "one two",
    "one two three",
    "Ünïcode wörds, Straße and ﬁnal ΣΟΦΟΣ",
    "a NUL\0inside an ASCII text",
    "Cherokee ꭰꭱ Ꭰ casefolds to upper case",
    "tabs\tand\nnew lines, under_scores and digits 123 456",
    "ＦＵＬＬ ｗｉｄｔｈ letters",
    "\u200binvisible\u200d joiners",
]


def mix64(value: int) -> int:
    value ^= value >> 30
    value = value * 0xBF58476D1CE4E5B9 & MASK
    value ^= value >> 27
    value = value * 0x94D049BB133111EB & MASK
    return value ^ value >> 31


def word_hash(word: str) -> int:
    return mix64(sum(byte * pow(BYTE_BASE, k + 1, 1 << 64) for k, byte in enumerate(word.encode("utf-8"))) & MASK)


def shingle_ids(text: str, size: int) -> list[int]:
    """Sorted distinct ids of the word ``size``-grams (all the words when fewer)."""
    words = [word_hash(word) for word in normalize_text(text).split()]
    windows = [words[i : i + size] for i in range(len(words) - size + 1)] or ([words] if words else [])
    ids = set()
    for window in windows:
        value = 0
        for word in window:
            value = (value * WORD_BASE + word) & MASK
        ids.add(mix64(value) >> 32)
    return sorted(ids)


def probe(column: int, attempt: int, bins: int) -> int:
    return ((mix64(column * 0x10000 + attempt) & 0xFFFFFFFF) * bins) >> 32


def signature(ids: list[int], bins: int) -> list[int]:
    """One-permutation MinHash, each empty bin filled from the first non-empty bin of its probe sequence."""
    sketch = [EMPTY] * bins
    for shingle in ids:
        slot = ((mix64(shingle) & 0xFFFFFFFF) * bins) >> 32
        sketch[slot] = min(sketch[slot], shingle)
    if not ids:
        return sketch
    filled = list(sketch)
    for column in range(bins):
        attempt = 0
        while filled[column] == EMPTY:
            filled[column] = sketch[probe(column, attempt, bins)]
            attempt += 1
    return filled


def band_hash(values: list[int]) -> int:
    value = 0
    for row_value in values:
        value = mix64((value * WORD_BASE + row_value) & MASK)
    return value


@pytest.fixture(scope="module")
def texts() -> list[str]:
    real = real_texts(FIXTURES)
    return real[:600] + AWKWARD + [" ".join(real[600:640])]  # and one long text


@pytest.mark.parametrize("size", [1, 3, 5])
def test_shingle_ids_are_the_plain_python_definition(texts: list[str], size: int, monkeypatch) -> None:
    monkeypatch.setattr(minhash, "_CHARS_PER_CHUNK", 5000)  # many chunks, one text longer than a chunk
    sets = shingle_sets(texts, size)
    assert sets.offsets.size == len(texts) + 1
    for record, text in enumerate(texts):
        assert sets.ids[sets.offsets[record] : sets.offsets[record + 1]].tolist() == shingle_ids(text, size), text[:60]


def test_word_hashes_past_the_kept_power_table(texts: list[str], monkeypatch) -> None:
    """A chunk longer than the kept table of powers (one very long text) hashes the same."""
    monkeypatch.setattr(minhash, "_CHARS_PER_CHUNK", 500)
    monkeypatch.setattr(minhash, "_BYTE_POWERS", minhash._Powers(minhash._BYTE_BASE))
    monkeypatch.setattr(minhash, "_INVERSE_BYTE_POWERS", minhash._Powers(pow(minhash._BYTE_BASE, -1, 1 << 64)))
    long_text = texts[-1]
    assert len(long_text.encode()) > 2 * 500
    assert shingle_sets([long_text, "short one here"], 3).ids.tolist() == sorted(
        set(shingle_ids(long_text, 3))
    ) + shingle_ids("short one here", 3)


@pytest.mark.parametrize("num_perm", [16, 128])
def test_signatures_and_bands_are_the_plain_python_definition(texts: list[str], num_perm: int, monkeypatch) -> None:
    monkeypatch.setattr(minhash, "_RECORDS_PER_BLOCK", 100)  # several blocks, the last one partial
    sets = shingle_sets(texts, 3)
    sketch = signatures(sets, num_perm)
    bands, rows = lsh_shape(0.8, num_perm)
    hashes = band_hashes(sketch, bands, rows)
    assert sketch.shape == (num_perm, len(texts))
    for record in range(len(texts)):
        expected = signature(sets.ids[sets.offsets[record] : sets.offsets[record + 1]].tolist(), num_perm)
        assert sketch[:, record].tolist() == expected
        assert hashes[record].tolist() == [band_hash(expected[band::bands][:rows]) for band in range(bands)]
    assert np.all(sketch[:, sets.sizes == 0] == EMPTY)
