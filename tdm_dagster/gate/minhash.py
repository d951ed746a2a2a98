"""Word shingles, one-permutation MinHash signatures, LSH bands and exact Jaccard (numpy).

The machinery behind :class:`tdm_dagster.gate.dedup.NearDuplicateIndex`, and the
shingles that :mod:`tdm_dagster.gate.leakage` compares with evaluation items. Nothing
here runs Python code per word: texts are hashed as one byte array.

Why one-permutation hashing instead of ``num_perm`` independent hash functions: classic
MinHash evaluates every shingle under every permutation (128 hashes a shingle), which is
what makes it slow. One-permutation hashing (Li, Owen & Zhang 2012) hashes each shingle
once, splits the hash range into ``num_perm`` bins and keeps the minimum per bin; empty
bins are filled by optimal densification (Shrivastava 2017), which borrows the value of
another bin chosen by a probe sequence shared by all records. Each signature position
then collides between two records with probability equal to their Jaccard similarity,
as with classic MinHash, at 1/num_perm of the hashing work.

Shingles are hashed to 32-bit ids. Two different shingles of two compared records share
an id with probability about |A|*|B| / 2**32 (2e-6 for 100-shingle records), so the
verified Jaccard is exact for practical purposes.

Texts with no word at all have no shingles and are never near-duplicates (their exact
key still catches repeats). Texts with fewer words than ``shingle_size`` get a single
shingle made of all their words, so they match only texts that normalize identically.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from tdm_dagster.gate.reading_view import reading_view

_WORD = re.compile(r"\w+")
_U64 = np.uint64
_LOW32 = _U64(0xFFFFFFFF)
_EMPTY_BIN = np.uint32(0xFFFFFFFF)
_BYTE_BASE = 0x100000001B3
_WORD_BASE = _U64(0x9E3779B97F4A7C15)
_TEXTS_PER_CHUNK = 2000
"""Texts shingled together: bounds the temporary byte-level arrays (about 40 bytes a character)."""
_WHOLE_SKETCH_ATTEMPTS = 4
"""Densification attempts made on the whole sketch before probing the remaining empty bins alone."""


def normalize_text(text: str) -> str:
    """The reading view (:func:`tdm_dagster.gate.reading_view.reading_view`: invisible
    characters removed, NFKC), case-folded, punctuation dropped, words joined by single spaces."""
    return " ".join(_WORD.findall(reading_view(text).casefold()))


def _mix64(values: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer: spreads every input bit over all output bits."""
    mixed = values ^ (values >> _U64(30))
    mixed *= _U64(0xBF58476D1CE4E5B9)
    mixed ^= mixed >> _U64(27)
    mixed *= _U64(0x94D049BB133111EB)
    mixed ^= mixed >> _U64(31)
    return mixed


@dataclass(frozen=True)
class ShingleSets:
    """Sorted, distinct 32-bit shingle ids of each record, concatenated (CSR layout)."""

    ids: np.ndarray  # uint32
    offsets: np.ndarray  # int64, one more than there are records

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(self.offsets)

    @classmethod
    def concatenate(cls, parts: Sequence[ShingleSets]) -> ShingleSets:
        ids = np.concatenate([part.ids for part in parts]) if parts else np.empty(0, np.uint32)
        sizes = np.concatenate([part.sizes for part in parts]) if parts else np.empty(0, np.int64)
        return cls(ids, np.concatenate(([0], np.cumsum(sizes))).astype(np.int64))


def shingle_sets(texts: Sequence[str], shingle_size: int) -> ShingleSets:
    """Word ``shingle_size``-gram ids of each text, hashed without a Python loop per word."""
    parts = [
        _shingle_chunk(texts[start : start + _TEXTS_PER_CHUNK], shingle_size)
        for start in range(0, len(texts), _TEXTS_PER_CHUNK)
    ]
    return ShingleSets.concatenate(parts)


def _word_bytes() -> np.ndarray:
    table = np.zeros(256, bool)
    for char in b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_":
        table[char] = True
    table[0x80:] = True  # UTF-8 bytes of non-ASCII characters, which _normalized_piece keeps only in words
    return table


_IS_WORD_BYTE = _word_bytes()


def _normalized_piece(text: str) -> str:
    """``normalize_text`` up to where the words are split, on the fast path when it can.

    An ASCII text needs no NFKC and its words are runs of [0-9A-Za-z_], which
    ``_IS_WORD_BYTE`` finds without a regex; only non-ASCII texts pay for the regex.
    """
    if text.isascii():
        return text.lower().replace("\0", " ")
    return normalize_text(text)


def _word_hashes(blob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hash of every word of ``blob`` (NUL-separated texts) and the text each word belongs to.

    A polynomial hash of each word's bytes (arithmetic mod 2**64) on the word bytes
    alone, summed per word by one ``add.reduceat``: no Python code runs per word.
    """
    word_byte = _IS_WORD_BYTE[blob]
    if not word_byte.any():
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    changes = np.flatnonzero(word_byte[1:] != word_byte[:-1]) + 1
    bounds = np.concatenate(([0] if word_byte[0] else [], changes, [blob.size])).astype(np.int64)
    starts, ends = bounds[0:-1:2], bounds[1::2]
    lengths = ends - starts
    first_letter = np.cumsum(lengths) - lengths
    letters = blob[word_byte]
    offset_in_word = np.arange(letters.size, dtype=np.int32) - np.repeat(first_letter.astype(np.int32), lengths)
    powers = np.cumprod(np.full(int(lengths.max()), _BYTE_BASE, np.uint64))
    hashes = np.add.reduceat(letters * powers[offset_in_word], first_letter)
    text_of_word = np.searchsorted(np.flatnonzero(blob == 0), starts)
    return _mix64(hashes), text_of_word


def _shingle_chunk(texts: Sequence[str], shingle_size: int) -> ShingleSets:
    blob = np.frombuffer("\0".join(_normalized_piece(text) for text in texts).encode("utf-8"), np.uint8)
    words, text_of_word = _word_hashes(blob)
    word_counts = np.bincount(text_of_word, minlength=len(texts))
    first_word = np.concatenate(([0], np.cumsum(word_counts)[:-1]))
    position = np.arange(words.size) - first_word[text_of_word]
    remaining = word_counts[text_of_word] - position
    starts = np.flatnonzero((remaining >= shingle_size) | ((position == 0) & (remaining < shingle_size)))
    lengths = np.minimum(remaining[starts], shingle_size)
    shingles = np.zeros(starts.size, np.uint64)
    for offset in range(shingle_size):
        inside = offset < lengths
        shingles[inside] = shingles[inside] * _WORD_BASE + words[starts[inside] + offset]
    ids = _mix64(shingles) >> _U64(32)
    keys = np.sort((text_of_word[starts].astype(np.uint64) << _U64(32)) | ids)
    distinct = keys[np.concatenate(([True], keys[1:] != keys[:-1]))] if keys.size else keys
    counts = np.bincount((distinct >> _U64(32)).astype(np.int64), minlength=len(texts))
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    return ShingleSets((distinct & _LOW32).astype(np.uint32), offsets)


def signatures(sets: ShingleSets, num_perm: int) -> np.ndarray:
    """One-permutation MinHash with densification: ``(num_perm, records)`` uint32.

    Bins are rows (one row a bin, records side by side) so that densification copies
    whole contiguous rows. Columns of records without shingles stay all ``0xFFFFFFFF``.
    """
    records = sets.offsets.size - 1
    bins = ((_mix64(sets.ids.astype(np.uint64)) & _LOW32) * _U64(num_perm)) >> _U64(32)
    record_of_id = np.repeat(np.arange(records), sets.sizes)
    sketch = np.full(num_perm * records, _EMPTY_BIN, np.uint32)
    np.minimum.at(sketch, bins.astype(np.int64) * records + record_of_id, sets.ids)
    sketch = sketch.reshape(num_perm, records)
    _densify(sketch, nonempty=sets.sizes > 0)
    return sketch


def _densify(sketch: np.ndarray, nonempty: np.ndarray) -> None:
    """Fill each empty bin from the first non-empty bin on its probe sequence.

    The probe sequence depends only on the bin and the attempt, never on the record, so
    two records fill a bin from the same place whenever they can: that keeps
    P[bin values equal] = Jaccard (optimal densification, Shrivastava 2017). The first
    attempts probe every record at once (whole rows); the few bins still empty after
    them are probed one by one.
    """
    bins = sketch.shape[0]
    original = sketch.copy()
    empty = (original == _EMPTY_BIN) & nonempty[None, :]
    every_bin = np.arange(bins)
    for attempt in range(_WHOLE_SKETCH_ATTEMPTS):
        borrowed = original[_probes(every_bin, attempt, bins)]
        take = empty & (borrowed != _EMPTY_BIN)
        np.copyto(sketch, borrowed, where=take)
        empty &= ~take
    columns, rows = np.nonzero(empty)
    attempt = _WHOLE_SKETCH_ATTEMPTS
    while rows.size:
        borrowed = original[_probes(columns, attempt, bins), rows]
        take = borrowed != _EMPTY_BIN
        sketch[columns[take], rows[take]] = borrowed[take]
        rows, columns = rows[~take], columns[~take]
        attempt += 1


def _probes(columns: np.ndarray, attempt: int, bins: int) -> np.ndarray:
    """The bin that empty bin ``columns`` borrows from at ``attempt`` (same for every record)."""
    seeds = columns.astype(np.uint64) * _U64(0x10000) + _U64(attempt)
    return ((_mix64(seeds) & _LOW32) * _U64(bins) >> _U64(32)).astype(np.int64)


@cache
def lsh_shape(threshold: float, num_perm: int, false_negative_weight: float = 0.8) -> tuple[int, int]:
    """(bands, rows) minimising weighted false-positive and false-negative areas.

    The same criterion as datasketch's MinHashLSH, but weighted towards recall (0.8)
    because every candidate is verified exactly: a false candidate costs a little time,
    a missed pair costs a missed duplicate.
    """
    grid = np.linspace(0.0, 1.0, 1001)
    below, above = grid <= threshold, grid >= threshold
    best: tuple[float, int, int] | None = None
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            collide = 1.0 - (1.0 - grid**rows) ** bands
            false_positive = np.trapezoid(collide[below], grid[below])
            false_negative = np.trapezoid(1.0 - collide[above], grid[above])
            error = (1 - false_negative_weight) * false_positive + false_negative_weight * false_negative
            if best is None or error < best[0]:
                best = (error, bands, rows)
    assert best is not None
    return best[1], best[2]


def band_hashes(sketch: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """``(records, bands)`` uint64: one hash of each band's ``rows`` signature values.

    Band b takes the signature columns b, b + bands, b + 2 * bands... (any fixed
    assignment works; this one is a contiguous slice per row).
    """
    hashes = np.zeros((bands, sketch.shape[1]), np.uint64)
    for row in range(rows):
        hashes = _mix64(hashes * _WORD_BASE + sketch[row * bands : (row + 1) * bands].astype(np.uint64))
    return np.ascontiguousarray(hashes.T)


def jaccard(left: ShingleSets, left_rows: np.ndarray, right: ShingleSets, right_rows: np.ndarray) -> np.ndarray:
    """Exact Jaccard of each pair (left record, right record), all pairs in one sort."""
    pairs = left_rows.size
    if pairs == 0:
        return np.empty(0, np.float64)
    tagged = np.concatenate((_tagged_ids(left, left_rows), _tagged_ids(right, right_rows)))
    tagged.sort()
    shared = tagged[1:][tagged[1:] == tagged[:-1]]
    intersection = np.bincount((shared >> _U64(32)).astype(np.int64), minlength=pairs)
    union = left.sizes[left_rows] + right.sizes[right_rows] - intersection
    return intersection / np.maximum(union, 1)


def _tagged_ids(sets: ShingleSets, rows: np.ndarray) -> np.ndarray:
    """Shingle ids of ``rows`` (repeats allowed), each tagged with its pair number in the high bits."""
    sizes = sets.sizes[rows]
    pair = np.repeat(np.arange(rows.size, dtype=np.uint64), sizes)
    within = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    ids = sets.ids[np.repeat(sets.offsets[rows], sizes) + within]
    return (pair << _U64(32)) | ids.astype(np.uint64)
