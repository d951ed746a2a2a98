"""Nearest earlier neighbours by cosine, over compact float16 matrices.

Vectors are unit-length rows of a numpy matrix (float16 on disk and in memory: 512 bytes
a record at 256 dimensions), never a Python object per record. Two searches:

- :func:`nearest_within`: for each row of one matrix, the most similar *earlier* row at
  cosine >= threshold (a batch against itself, in batch order);
- :func:`nearest_in`: for each query row, the most similar row of another matrix at
  cosine >= threshold (a batch against queued data or an evaluation set).

The most similar, not the earliest as the lexical index reports: records of one domain
(GSM8K problems) sit at cosine 0.9 of each other, so the earliest partner above a
threshold is often another problem while the reworded copy's original is the nearest.
Equal cosines: the earliest.

Below :data:`EXACT_PAIRS` pairs the search is exact (blocked matrix products). Above it,
a usearch HNSW index (i8 quantised, cosine) proposes :data:`NEIGHBOURS` candidates per
row and each candidate's cosine is recomputed exactly in float32 before it counts, as the
lexical index verifies LSH candidates by exact Jaccard: a reported pair always has cosine
>= threshold; only a partner beyond the candidates can be missed. usearch is part of
the ``[semantic]`` extra and imported here only for a large search.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tdm_dagster.files.atomic import atomic_open

EXACT_PAIRS = 64_000_000
"""Up to this many (row, partner) pairs the search is a blocked exact product (8,000 x
8,000: about a second on two cores)."""
NEIGHBOURS = 16
_QUANTISATION_MARGIN = 0.03
"""How far under the threshold an int8 distance may put a pair that is over it in float32
(int8 cosines are within 0.01 of exact at these dimensions): candidates further under
are not re-checked."""
_BLOCK = 1024

Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]
"""``(rows, partners, cosines)``: one entry per row that has a partner."""


def _empty() -> Pairs:
    return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)


def _best_passing(similarity: np.ndarray, passing: np.ndarray, rows: np.ndarray) -> Pairs:
    """Per row of ``passing`` (rows x columns): its most similar passing column (the
    first of equals), and that cosine."""
    has = passing.any(axis=1)
    best = np.where(passing, similarity, -np.inf).argmax(axis=1)[has]
    return rows[has], best, similarity[np.flatnonzero(has), best]


@dataclass(frozen=True)
class Embeddings:
    """Unit vectors (float16 rows) and each row's *facts* key: a 64-bit digest of the
    numbers its text states, sorted (0: it states none).

    Two rows are partners only where their facts agree (or one states none). A reworded
    copy keeps its facts (synonyms, another order and a lead-in change no number), while
    two problems of one template differ in them: a static model embeds "Michael sells 5
    large paintings at $100 and 8 small at $80" and "Noah sells eight large paintings at
    $60 and four small at $30" at cosine 0.95, and they are not one problem."""

    vectors: np.ndarray
    facts: np.ndarray

    def __len__(self) -> int:
        return len(self.vectors)

    def rows(self, stop: int) -> Embeddings:
        return Embeddings(self.vectors[:stop], self.facts[:stop])


_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def facts_keys(texts: Sequence[str]) -> np.ndarray:
    """The facts key of each text (see :class:`Embeddings`)."""
    keys = np.zeros(len(texts), np.uint64)
    for row, text in enumerate(texts):
        numbers = sorted(_NUMBER.findall(text))
        if numbers:
            digest = hashlib.blake2b(" ".join(numbers).encode(), digest_size=8).digest()
            keys[row] = int.from_bytes(digest, "little") or 1
    return keys


def _agree(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    return (left == 0) | (right == 0) | (left == right)


def _exact(queries: Embeddings, base: Embeddings, threshold: float, within: bool) -> Pairs:
    found = [_empty()]
    for start in range(0, len(queries), _BLOCK):
        block = np.asarray(queries.vectors[start : start + _BLOCK], np.float32)
        facts = queries.facts[start : start + _BLOCK]
        stop = start + len(block) if within else len(base)
        similarity = block @ np.asarray(base.vectors[:stop], np.float32).T
        passing = (similarity >= threshold) & _agree(facts[:, None], base.facts[None, :stop])
        if within:  # only earlier rows
            passing &= np.arange(stop)[None, :] < np.arange(start, start + len(block))[:, None]
        found.append(_best_passing(similarity, passing, np.arange(start, start + len(block))))
    return tuple(np.concatenate(parts) for parts in zip(*found))  # type: ignore[return-value]


def _approximate(queries: Embeddings, base: Embeddings, threshold: float, within: bool) -> Pairs:
    from usearch.index import Index

    index = Index(ndim=base.vectors.shape[1], metric="cos", dtype="i8", connectivity=16, expansion_add=64, expansion_search=64)
    index.add(np.arange(len(base), dtype=np.uint64), np.asarray(base.vectors, np.float32), log=False)
    matches = index.search(np.asarray(queries.vectors, np.float32), NEIGHBOURS + within, log=False)
    partners = np.asarray(matches.keys, np.int64).reshape(len(queries), -1)
    valid = np.arange(partners.shape[1])[None, :] < np.asarray(matches.counts).reshape(-1, 1)
    valid &= 1 - np.asarray(matches.distances).reshape(partners.shape) >= threshold - _QUANTISATION_MARGIN  # only near ones are re-checked
    rows = np.broadcast_to(np.arange(len(queries))[:, None], partners.shape)
    if within:
        valid &= partners < rows
    rows, partners = rows[valid], partners[valid]
    cosine = np.einsum("ij,ij->i", np.asarray(queries.vectors[rows], np.float32), np.asarray(base.vectors[partners], np.float32))
    keep = (cosine >= threshold) & _agree(queries.facts[rows], base.facts[partners])
    rows, partners, cosine = rows[keep], partners[keep], cosine[keep]
    order = np.lexsort((partners, -cosine, rows))
    rows, partners, cosine = rows[order], partners[order], cosine[order]
    first = np.concatenate(([True], rows[1:] != rows[:-1])) if rows.size else np.empty(0, bool)
    return rows[first], partners[first], cosine[first].astype(np.float32)


def _canonical(queries: Embeddings, base: Embeddings, found: Pairs) -> Pairs:
    """The reported cosines recomputed pair by pair in float64: the same value however the
    search blocked its products (in one process or shard by shard)."""
    rows, partners, _ = found
    cosine = np.einsum("ij,ij->i", np.asarray(queries.vectors[rows], np.float64), np.asarray(base.vectors[partners], np.float64))
    return rows, partners, cosine


def nearest_within(embeddings: Embeddings, threshold: float) -> Pairs:
    """Each row's most similar earlier row at cosine >= ``threshold`` (facts agreeing)."""
    if len(embeddings) < 2:
        return _empty()
    search = _exact if len(embeddings) ** 2 / 2 <= EXACT_PAIRS else _approximate
    return _canonical(embeddings, embeddings, search(embeddings, embeddings, threshold, True))


def nearest_in(queries: Embeddings, base: Embeddings, threshold: float) -> Pairs:
    """Each query row's most similar ``base`` row at cosine >= ``threshold`` (facts agreeing)."""
    if not len(queries) or not len(base):
        return _empty()
    search = _exact if len(queries) * len(base) <= EXACT_PAIRS else _approximate
    return _canonical(queries, base, search(queries, base, threshold, False))


class VectorStore:
    """Embeddings of records already seen (queued data), on disk in one folder:
    ``vectors.npy`` (float16, memory-mapped when read), ``facts.npy`` (uint64) and
    ``keys.json`` (each row's record name)."""

    def __init__(self, keys: Sequence[str], embeddings: Embeddings) -> None:
        self.keys = list(keys)
        self.embeddings = embeddings

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def load(cls, folder: Path) -> VectorStore | None:
        """The store in ``folder``; None when there is none."""
        if not (folder / "keys.json").exists():
            return None
        keys = json.loads((folder / "keys.json").read_text(encoding="utf-8"))
        vectors = np.load(folder / "vectors.npy", mmap_mode="r", allow_pickle=False)
        facts = np.load(folder / "facts.npy", allow_pickle=False)
        if min(len(vectors), len(facts)) < len(keys):
            raise ValueError(f"{folder}: {len(keys)} keys for {len(vectors)} vectors and {len(facts)} facts")
        return cls(keys, Embeddings(vectors, facts).rows(len(keys)))  # rows past the keys: a batch being added now

    def appended(self, keys: Sequence[str], embeddings: Embeddings) -> VectorStore:
        vectors = np.concatenate((self.embeddings.vectors, embeddings.vectors.astype(np.float16)))
        return VectorStore([*self.keys, *keys], Embeddings(vectors, np.concatenate((self.embeddings.facts, embeddings.facts))))

    def save(self, folder: Path) -> None:
        """Vectors and facts first, then keys (what :meth:`load` goes by), each atomically."""
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_open(folder / "vectors.npy", "wb") as handle:
            np.save(handle, np.ascontiguousarray(self.embeddings.vectors, np.float16), allow_pickle=False)
        with atomic_open(folder / "facts.npy", "wb") as handle:
            np.save(handle, np.asarray(self.embeddings.facts, np.uint64), allow_pickle=False)
        with atomic_open(folder / "keys.json", "w") as handle:
            json.dump(self.keys, handle)


def empty_store(dimensions: int) -> VectorStore:
    return VectorStore([], Embeddings(np.empty((0, dimensions), np.float16), np.empty(0, np.uint64)))


def nearest_across(own: Embeddings, shard: int, embeddings_of: Callable[[int], Embeddings], threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`nearest_within` for shard ``shard`` of a batch cut in shards: each own row's
    most similar earlier row of shards ``0..shard`` (``vectors_of(s)``, fetched one at a
    time), equal cosines to the earliest. ``(rows, partner shards, partner rows, cosines)``."""
    best_shard = np.full(len(own), -1, np.int64)
    best_row = np.full(len(own), -1, np.int64)
    best = np.full(len(own), -np.inf)
    for partner in range(shard + 1):
        rows, partners, cosines = nearest_within(own, threshold) if partner == shard else nearest_in(own, embeddings_of(partner), threshold)
        better = cosines > best[rows]
        rows, partners, cosines = rows[better], partners[better], cosines[better]
        best_shard[rows], best_row[rows], best[rows] = partner, partners, cosines
    found = np.flatnonzero(best_shard >= 0)
    return found, best_shard[found], best_row[found], best[found]
