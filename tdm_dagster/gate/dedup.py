"""Exact and near-duplicate detection for training records (plain Python + numpy).

The gate's deep level uses this to flag records that repeat, verbatim or lightly
edited, another record of the same batch or data already queued or versioned.

* ``normalize_text`` / ``exact_key``: the reading view (invisible characters removed, NFKC), case folding, punctuation dropped,
  whitespace collapsed; two texts that differ only in those ways share an exact key.
* ``NearDuplicateIndex``: word-shingle sets, a MinHash-style signature per record, LSH
  banding to find candidate pairs, then the *exact* Jaccard of the two shingle sets to
  verify each candidate. Verification is why a reported pair always has Jaccard >=
  ``threshold``: LSH only decides which pairs are worth checking.

The shingling, signatures, banding and Jaccard live in :mod:`tdm_dagster.gate.minhash`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tdm_dagster.files.atomic import atomic_open
from tdm_dagster.gate.minhash import (
    ShingleSets,
    band_hashes,
    jaccard,
    lsh_shape,
    normalize_text,
    shingle_sets,
    signatures,
)

_PROBE_DEPTH = 2
"""Earliest members of an LSH bucket a record is compared with (plus, within a batch, its predecessor)."""
_FORMAT_VERSION = 1


def exact_key(text: str) -> bytes:
    """16-byte digest of the normalized text: equal keys mean equal normalized texts."""
    return hashlib.blake2b(normalize_text(text).encode("utf-8"), digest_size=16).digest()


@dataclass(frozen=True)
class Match:
    """``key_a`` repeats ``key_b`` (the earlier or already indexed record)."""

    key_a: str
    key_b: str
    similarity: float
    """Exact Jaccard similarity of the two records' shingle sets."""


def earliest_verified(later: np.ndarray, earlier: np.ndarray, similarity: np.ndarray, threshold: float) -> np.ndarray:
    """Indices into the pair arrays: for each ``later`` record, its earliest partner at or above ``threshold``."""
    passing = np.flatnonzero(similarity >= threshold)
    order = passing[np.lexsort((earlier[passing], later[passing]))]
    return order[np.concatenate(([True], later[order][1:] != later[order][:-1]))] if order.size else order


def bucket_candidates(new_bucket: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs among entries sorted by (bucket, record): (later, earlier) entry numbers.

    ``new_bucket[i]`` is True where entry ``i`` starts a bucket. Each entry is paired with
    its predecessor in the bucket and the bucket's first ``_PROBE_DEPTH`` entries. One
    rule for the in-process index and the sharded run (:mod:`tdm_dagster.gate.distributed`),
    so both find the same candidates and so the same duplicates."""
    position = np.arange(new_bucket.size)
    bucket_start = np.maximum.accumulate(np.where(new_bucket, position, 0)) if position.size else position
    later, earlier = [], []
    for partner in [position - 1] + [bucket_start + depth for depth in range(_PROBE_DEPTH)]:
        pair = (partner >= bucket_start) & (partner < position)
        later.append(position[pair])
        earlier.append(partner[pair])
    return np.concatenate(later), np.concatenate(earlier)


def _unique_pairs(later: np.ndarray, earlier: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    packed = np.unique((later.astype(np.int64) << 32) | earlier.astype(np.int64))
    return packed >> 32, packed & 0xFFFFFFFF


class NearDuplicateIndex:
    """Records already seen (e.g. everything queued or versioned), searchable for near-duplicates.

    ``add`` appends records; ``query`` finds, for each new text, the earliest indexed
    record whose shingle-set Jaccard is >= ``threshold``; ``find_within`` does the same
    inside one batch without touching the index. Both report at most one ``Match`` per
    record (a record repeating ten others is one finding, pointing at the first).
    """

    def __init__(self, threshold: float = 0.8, num_perm: int = 128, shingle_size: int = 3) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        if num_perm < 2 or shingle_size < 1:
            raise ValueError(f"num_perm must be >= 2 and shingle_size >= 1, got {num_perm}, {shingle_size}")
        self.threshold = threshold
        self.num_perm = num_perm
        self.shingle_size = shingle_size
        self.bands, self.rows = lsh_shape(threshold, num_perm)
        self._keys: list[str] = []
        self._sets = ShingleSets.concatenate([])
        self._bands = np.empty((0, self.bands), np.uint64)
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def keys(self) -> list[str]:
        return list(self._keys)

    def sketch(self, texts: Sequence[str]) -> tuple[ShingleSets, np.ndarray]:
        """Shingle sets of ``texts`` and their ``(records, bands)`` LSH band hashes."""
        sets = shingle_sets(texts, self.shingle_size)
        return sets, band_hashes(signatures(sets, self.num_perm), self.bands, self.rows)

    def _sketch(self, keys: Sequence[str], texts: Sequence[str]) -> tuple[ShingleSets, np.ndarray]:
        if len(keys) != len(texts):
            raise ValueError(f"{len(keys)} keys for {len(texts)} texts")
        return self.sketch(texts)

    def add(self, keys: Sequence[str], texts: Sequence[str]) -> None:
        sets, bands = self._sketch(keys, texts)
        self._keys.extend(keys)
        self._sets = ShingleSets.concatenate([self._sets, sets])
        self._bands = np.concatenate((self._bands, bands))
        self._sorted = None

    def query(self, keys: Sequence[str], texts: Sequence[str]) -> list[Match]:
        """For each text that near-duplicates indexed data: ``Match(its key, earliest indexed key, J)``."""
        sets, bands = self._sketch(keys, texts)
        if not len(self._keys) or not len(keys):
            return []
        order, sorted_hashes = self._sorted_bands()
        queries, partners = [], []
        for band in range(self.bands):
            start = np.searchsorted(sorted_hashes[:, band], bands[:, band])
            for depth in range(_PROBE_DEPTH):
                slot = np.minimum(start + depth, len(self._keys) - 1)
                hit = (start + depth < len(self._keys)) & (sorted_hashes[slot, band] == bands[:, band])
                hit &= sets.sizes > 0
                queries.append(np.flatnonzero(hit))
                partners.append(order[slot[hit], band])
        return self._verified(keys, sets, self._keys, self._sets, np.concatenate(queries), np.concatenate(partners))

    def find_within(self, keys: Sequence[str], texts: Sequence[str]) -> list[Match]:
        """Near-duplicate pairs inside one batch, each once: ``Match(later key, earliest similar key, J)``."""
        sets, bands = self._sketch(keys, texts)
        later, earlier = [], []
        for band in range(self.bands):
            order = np.argsort(bands[:, band], kind="stable")
            hashes = bands[order, band]
            pair_later, pair_earlier = bucket_candidates(np.concatenate(([True], hashes[1:] != hashes[:-1]))[: hashes.size])
            keep = sets.sizes[order[pair_later]] > 0
            later.append(order[pair_later[keep]])
            earlier.append(order[pair_earlier[keep]])
        return self._verified(keys, sets, keys, sets, np.concatenate(later), np.concatenate(earlier))

    def _sorted_bands(self) -> tuple[np.ndarray, np.ndarray]:
        """Per band: record numbers sorted by (band hash, record number), and those hashes."""
        if self._sorted is None:
            order = np.argsort(self._bands, axis=0, kind="stable")
            self._sorted = (order, np.take_along_axis(self._bands, order, axis=0))
        return self._sorted

    def _verified(
        self,
        left_keys: Sequence[str],
        left: ShingleSets,
        right_keys: Sequence[str],
        right: ShingleSets,
        left_rows: np.ndarray,
        right_rows: np.ndarray,
    ) -> list[Match]:
        left_rows, right_rows = _unique_pairs(left_rows, right_rows)
        similarity = jaccard(left, left_rows, right, right_rows)
        chosen = earliest_verified(left_rows, right_rows, similarity, self.threshold)
        return [
            Match(left_keys[int(a)], right_keys[int(b)], float(s))
            for a, b, s in zip(left_rows[chosen], right_rows[chosen], similarity[chosen])
        ]

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index atomically (``.npz``, no pickles)."""
        header = {
            "format": _FORMAT_VERSION,
            "threshold": self.threshold,
            "num_perm": self.num_perm,
            "shingle_size": self.shingle_size,
            "keys": self._keys,
        }
        buffer = io.BytesIO()
        np.savez(
            buffer,
            header=np.frombuffer(json.dumps(header).encode("utf-8"), np.uint8),
            ids=self._sets.ids,
            offsets=self._sets.offsets,
            bands=self._bands,
        )
        with atomic_open(path, "wb") as handle:
            handle.write(buffer.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> NearDuplicateIndex:
        with np.load(path, allow_pickle=False) as stored:
            header: dict[str, Any] = json.loads(stored["header"].tobytes().decode("utf-8"))
            if header.get("format") != _FORMAT_VERSION:
                raise ValueError(f"{path}: unsupported near-duplicate index format {header.get('format')!r}")
            index = cls(header["threshold"], header["num_perm"], header["shingle_size"])
            index._keys = list(header["keys"])
            index._sets = ShingleSets(stored["ids"], stored["offsets"])
            index._bands = stored["bands"]
        return index
