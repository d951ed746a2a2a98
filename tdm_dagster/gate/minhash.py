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

Where the time goes (100,000 texts of ~420 characters, CPU seconds on this project's 2-core
box, ``bench/bench_near_dup.py``): normalising 0.16, word hashes 0.33, shingle windows and the
per-record sort that makes ids distinct 0.39, signatures 0.72 (densification most of it),
bands 0.07, candidates and exact verification 0.18. Every step is a few numpy passes over
all bytes, words or bins; rensa (Rust) computes R-MinHash signatures from these same ids in
0.13, so a compiled kernel, not more numpy, is what would close the remaining gap.

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
_CHARS_PER_CHUNK = 1 << 20
"""Characters shingled together (whole texts, so a longer text makes a longer chunk): bounds
the temporary byte-level arrays (about 40 bytes a character) and keeps them in cache."""
_RECORDS_PER_BLOCK = 2048
"""Records sketched together: a block's bins (512 bytes a record) stay in cache while densified."""
_WHOLE_SKETCH_ATTEMPTS = 4
"""Densification attempts made on the whole sketch before probing the remaining empty bins alone."""
_ATTEMPTS_AT_ONCE = 8
"""Probes tried together for each bin still empty after the whole-sketch attempts."""


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
    ends = np.cumsum(np.fromiter(map(len, texts), np.int64, len(texts)))
    cuts = np.arange(_CHARS_PER_CHUNK, int(ends[-1]) if len(texts) else 0, _CHARS_PER_CHUNK)
    bounds = [0, *np.searchsorted(ends, cuts, "right").tolist(), len(texts)]
    parts = [
        _shingle_chunk(texts[start:stop], shingle_size)
        for start, stop in zip(bounds, bounds[1:])
        if stop > start
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


def _normalized_blob(texts: Sequence[str]) -> np.ndarray:
    """The texts' normalized pieces (:func:`_normalized_piece`) as UTF-8 bytes, separated by NUL.

    ASCII texts are lower-cased all at once, in the joined chunk, rather than one by one:
    the same bytes whenever no text holds a NUL of its own and lower-casing leaves the
    (already case-folded) non-ASCII pieces alone, which is checked; otherwise piece by piece.
    """
    pieces = [text if text.isascii() else normalize_text(text) for text in texts]
    joined = "\0".join(pieces)
    if joined.count("\0") == len(texts) - 1 and all(
        piece == piece.lower() for piece, text in zip(pieces, texts) if piece is not text
    ):
        return np.frombuffer(joined.lower().encode("utf-8"), np.uint8)
    return np.frombuffer("\0".join(map(_normalized_piece, texts)).encode("utf-8"), np.uint8)


class _Powers:
    """``base ** i`` mod 2**64 for i < n. A table for a usual chunk is kept between calls;
    a longer one (a chunk of one very long text) is computed for the call alone."""

    def __init__(self, base: int) -> None:
        self._base = base
        self._table = self._computed(_CHARS_PER_CHUNK * 2)

    def _computed(self, count: int) -> np.ndarray:
        table = np.full(count, self._base, np.uint64)
        table[0] = 1
        return np.cumprod(table)

    def __getitem__(self, count: int) -> np.ndarray:
        return self._table[:count] if count <= self._table.size else self._computed(count)


_BYTE_POWERS = _Powers(_BYTE_BASE)
_INVERSE_BYTE_POWERS = _Powers(pow(_BYTE_BASE, -1, 1 << 64))


def _word_hashes(blob: np.ndarray, texts: int) -> tuple[np.ndarray, np.ndarray]:
    """Hash of every word of ``blob`` (``texts`` NUL-separated texts) and each text's word count.

    A polynomial hash of each word's bytes, ``sum(byte[k] * B**(k + 1))`` mod 2**64, from
    one prefix sum over the whole blob: ``prefix[i] = sum(byte[j] * B**j, j < i)``, so a
    word ``[start, end)`` hashes to ``(prefix[end] - prefix[start]) * B**(1 - start)``
    (B is odd, hence invertible mod 2**64). No Python code and no gather runs per word.
    """
    word_byte = _IS_WORD_BYTE[blob]
    if not word_byte.any():
        return np.empty(0, np.uint64), np.zeros(texts, np.int64)
    changes = np.flatnonzero(word_byte[1:] != word_byte[:-1]) + 1
    bounds = np.concatenate(([0] if word_byte[0] else [], changes, [blob.size])).astype(np.int64)
    starts, ends = bounds[0:-1:2], bounds[1::2]
    prefix = np.zeros(blob.size + 1, np.uint64)
    np.cumsum(blob * _BYTE_POWERS[blob.size], out=prefix[1:])
    hashes = (prefix[ends] - prefix[starts]) * _INVERSE_BYTE_POWERS[blob.size][starts] * _U64(_BYTE_BASE)
    words_before_text_end = np.searchsorted(starts, np.flatnonzero(blob == 0))
    word_counts = np.diff(np.concatenate(([0], words_before_text_end, [starts.size])))
    return _mix64(hashes), word_counts


def _fold_words(words: np.ndarray, first: np.ndarray, count: int) -> np.ndarray:
    """Shingle values of the ``count`` words from each of ``first``: ``(w0 * W + w1) * W + w2``..."""
    shingles = words[first].copy()
    for offset in range(1, count):
        shingles = shingles * _WORD_BASE + words[first + offset]
    return shingles


def _shingle_chunk(texts: Sequence[str], shingle_size: int) -> ShingleSets:
    words, word_counts = _word_hashes(_normalized_blob(texts), len(texts))
    text_ends = np.cumsum(word_counts)
    full = np.ones(words.size, bool)  # the first word of a full shingle_size-word window
    for back in range(1, shingle_size):
        full[(text_ends - back)[word_counts >= back]] = False
    windows = max(words.size - shingle_size + 1, 0)
    starts = np.flatnonzero(full[:windows])
    shingles = words[:windows].copy()
    for offset in range(1, shingle_size):
        shingles = shingles * _WORD_BASE + words[offset : windows + offset]
    shingles = shingles[starts]
    text_of_shingle = np.repeat(np.arange(len(texts), dtype=np.uint64), np.maximum(word_counts - shingle_size + 1, 0))
    short = np.flatnonzero((word_counts > 0) & (word_counts < shingle_size))  # one shingle of all their words
    for count in range(1, shingle_size):
        texts_with = short[word_counts[short] == count]
        if texts_with.size:
            shingles = np.concatenate((shingles, _fold_words(words, text_ends[texts_with] - count, count)))
            text_of_shingle = np.concatenate((text_of_shingle, texts_with.astype(np.uint64)))
    ids = _mix64(shingles) >> _U64(32)
    keys = np.sort((text_of_shingle << _U64(32)) | ids)
    distinct = keys[np.concatenate(([True], keys[1:] != keys[:-1]))] if keys.size else keys
    counts = np.bincount((distinct >> _U64(32)).astype(np.int64), minlength=len(texts))
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    return ShingleSets((distinct & _LOW32).astype(np.uint32), offsets)


def signatures(sets: ShingleSets, num_perm: int) -> np.ndarray:
    """One-permutation MinHash with densification: ``(num_perm, records)`` uint32.

    Bins are rows (one row a bin, records side by side) so that densification copies
    whole contiguous rows. Columns of records without shingles stay all ``0xFFFFFFFF``.
    Records are sketched ``_RECORDS_PER_BLOCK`` at a time, so that the densification's
    passes over the block stay in the processor's cache.
    """
    records = sets.offsets.size - 1
    sketch = np.empty((num_perm, records), np.uint32)
    nonempty = sets.sizes > 0
    for start in range(0, records, _RECORDS_PER_BLOCK):
        stop = min(start + _RECORDS_PER_BLOCK, records)
        ids = sets.ids[sets.offsets[start] : sets.offsets[stop]]
        width = stop - start
        bins = ((_mix64(ids.astype(np.uint64)) & _LOW32) * _U64(num_perm)) >> _U64(32)
        record_of_id = np.repeat(np.arange(width), sets.sizes[start:stop])
        block = np.full(num_perm * width, _EMPTY_BIN, np.uint32)
        np.minimum.at(block, bins.astype(np.int64) * width + record_of_id, ids)
        block = block.reshape(num_perm, width)
        _densify(block, nonempty[start:stop])
        sketch[:, start:stop] = block
    return sketch


def _densify(sketch: np.ndarray, nonempty: np.ndarray) -> None:
    """Fill each empty bin from the first non-empty bin on its probe sequence.

    The probe sequence depends only on the bin and the attempt, never on the record, so
    two records fill a bin from the same place whenever they can: that keeps
    P[bin values equal] = Jaccard (optimal densification, Shrivastava 2017). The first
    attempts probe every record at once (whole rows: a bin still empty takes whatever it
    borrows, which is empty again when the probed bin is); the few bins still empty
    after them are probed one by one. Records without shingles stay empty throughout.
    """
    bins = sketch.shape[0]
    original = sketch.copy()
    borrowed = np.empty_like(sketch)
    for attempt in range(_WHOLE_SKETCH_ATTEMPTS):
        np.take(original, _row_probes(attempt, bins), axis=0, out=borrowed)
        np.copyto(sketch, borrowed, where=sketch == _EMPTY_BIN)
    columns, rows = np.nonzero((sketch == _EMPTY_BIN) & nonempty[None, :])
    attempt = _WHOLE_SKETCH_ATTEMPTS
    while rows.size:  # the next _ATTEMPTS_AT_ONCE probes of each bin still empty, the first hit kept
        probes = _probes(columns[:, None], np.arange(attempt, attempt + _ATTEMPTS_AT_ONCE)[None, :], bins)
        borrowed_bins = original[probes, rows[:, None]]
        found = borrowed_bins != _EMPTY_BIN
        first = found.argmax(axis=1)
        take = found[np.arange(rows.size), first]
        sketch[columns[take], rows[take]] = borrowed_bins[take, first[take]]
        rows, columns = rows[~take], columns[~take]
        attempt += _ATTEMPTS_AT_ONCE


@cache
def _row_probes(attempt: int, bins: int) -> np.ndarray:
    """``_probes`` of every bin at once, for the whole-sketch attempts."""
    return _probes(np.arange(bins), np.array(attempt), bins)


def _probes(columns: np.ndarray, attempts: np.ndarray, bins: int) -> np.ndarray:
    """The bin that empty bin ``columns`` borrows from at ``attempts`` (same for every record;
    the two arrays broadcast)."""
    seeds = columns.astype(np.uint64) * _U64(0x10000) + attempts.astype(np.uint64)
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
