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

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from tdm_dagster.files.atomic import atomic_open

EXACT_PAIRS = 64_000_000
"""Up to this many (row, partner) pairs the search is a blocked exact product (8,000 x
8,000: about a second on two cores)."""
NEIGHBOURS = 16
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


def _exact(queries: np.ndarray, base: np.ndarray, threshold: float, within: bool) -> Pairs:
    found = [_empty()]
    for start in range(0, len(queries), _BLOCK):
        block = np.asarray(queries[start : start + _BLOCK], np.float32)
        stop = start + len(block) if within else len(base)
        similarity = block @ np.asarray(base[:stop], np.float32).T
        passing = similarity >= threshold
        if within:  # only earlier rows
            passing &= np.arange(stop)[None, :] < np.arange(start, start + len(block))[:, None]
        found.append(_best_passing(similarity, passing, np.arange(start, start + len(block))))
    return tuple(np.concatenate(parts) for parts in zip(*found))  # type: ignore[return-value]


def _approximate(queries: np.ndarray, base: np.ndarray, threshold: float, within: bool) -> Pairs:
    from usearch.index import Index

    index = Index(ndim=base.shape[1], metric="cos", dtype="i8", connectivity=16, expansion_add=64, expansion_search=64)
    index.add(np.arange(len(base), dtype=np.uint64), np.asarray(base, np.float32), log=False)
    matches = index.search(np.asarray(queries, np.float32), NEIGHBOURS + within, log=False)
    partners = np.asarray(matches.keys, np.int64).reshape(len(queries), -1)
    valid = np.arange(partners.shape[1])[None, :] < np.asarray(matches.counts).reshape(-1, 1)
    rows = np.broadcast_to(np.arange(len(queries))[:, None], partners.shape)
    if within:
        valid &= partners < rows
    rows, partners = rows[valid], partners[valid]
    cosine = np.einsum("ij,ij->i", np.asarray(queries[rows], np.float32), np.asarray(base[partners], np.float32))
    keep = cosine >= threshold
    rows, partners, cosine = rows[keep], partners[keep], cosine[keep]
    order = np.lexsort((partners, -cosine, rows))
    rows, partners, cosine = rows[order], partners[order], cosine[order]
    first = np.concatenate(([True], rows[1:] != rows[:-1])) if rows.size else np.empty(0, bool)
    return rows[first], partners[first], cosine[first].astype(np.float32)


def nearest_within(vectors: np.ndarray, threshold: float) -> Pairs:
    """Each row's most similar earlier row at cosine >= ``threshold``."""
    if len(vectors) < 2:
        return _empty()
    search = _exact if len(vectors) ** 2 / 2 <= EXACT_PAIRS else _approximate
    return search(vectors, vectors, threshold, True)


def nearest_in(queries: np.ndarray, base: np.ndarray, threshold: float) -> Pairs:
    """Each query row's most similar ``base`` row at cosine >= ``threshold``."""
    if not len(queries) or not len(base):
        return _empty()
    search = _exact if len(queries) * len(base) <= EXACT_PAIRS else _approximate
    return search(queries, base, threshold, False)


class VectorStore:
    """Embeddings of records already seen (queued data), on disk: ``vectors.npy`` (float16,
    memory-mapped when read) and ``keys.json`` (each row's record name), in one folder."""

    def __init__(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        self.keys = list(keys)
        self.vectors = vectors

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def load(cls, folder: Path) -> VectorStore | None:
        """The store in ``folder``; None when there is none."""
        if not (folder / "keys.json").exists():
            return None
        keys = json.loads((folder / "keys.json").read_text(encoding="utf-8"))
        vectors = np.load(folder / "vectors.npy", mmap_mode="r", allow_pickle=False)
        if len(vectors) < len(keys):
            raise ValueError(f"{folder}: {len(keys)} keys for {len(vectors)} vectors")
        return cls(keys, vectors[: len(keys)])  # rows past the keys: a batch being added now

    def appended(self, keys: Sequence[str], vectors: np.ndarray) -> VectorStore:
        return VectorStore([*self.keys, *keys], np.concatenate((self.vectors, vectors.astype(np.float16))))

    def save(self, folder: Path) -> None:
        """Vectors first, then keys (what :meth:`load` looks for), each atomically."""
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_open(folder / "vectors.npy", "wb") as handle:
            np.save(handle, np.ascontiguousarray(self.vectors, np.float16), allow_pickle=False)
        with atomic_open(folder / "keys.json", "w") as handle:
            json.dump(self.keys, handle)


def empty_store(dimensions: int) -> VectorStore:
    return VectorStore([], np.empty((0, dimensions), np.float16))


__all__ = ["EXACT_PAIRS", "VectorStore", "nearest_in", "nearest_within", "empty_store"]


def nearest_across(own: np.ndarray, shard: int, vectors_of: Callable[[int], np.ndarray], threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`nearest_within` for shard ``shard`` of a batch cut in shards: each own row's
    most similar earlier row of shards ``0..shard`` (``vectors_of(s)``, fetched one at a
    time), equal cosines to the earliest. ``(rows, partner shards, partner rows, cosines)``."""
    best_shard = np.full(len(own), -1, np.int64)
    best_row = np.full(len(own), -1, np.int64)
    best = np.full(len(own), -np.inf, np.float32)
    for partner in range(shard + 1):
        rows, partners, cosines = nearest_within(own, threshold) if partner == shard else nearest_in(own, vectors_of(partner), threshold)
        better = cosines > best[rows]
        rows, partners, cosines = rows[better], partners[better], cosines[better]
        best_shard[rows], best_row[rows], best[rows] = partner, partners, cosines
    found = np.flatnonzero(best_shard >= 0)
    return found, best_shard[found], best_row[found], best[found]
