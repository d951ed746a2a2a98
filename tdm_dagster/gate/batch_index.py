"""What the gate remembers of a batch's records already judged, so that each record of a
later chunk is compared with every earlier record, exactly as when the batch is judged
whole, without holding the earlier records (:func:`tdm_dagster.gate.run.run_gate` judges
a batch chunk by chunk).

- :class:`FirstSeen`: the first row of each 16-byte digest (an example's identity, a
  text's exact key), as two sorted numpy arrays: 24 bytes per distinct digest, no
  Python object per record.
- :class:`NearDuplicateStream`: the near-duplicate search of
  :meth:`tdm_dagster.gate.dedup.NearDuplicateIndex.find_within`, one chunk at a time.
  Per LSH band and bucket it keeps the first, second and last row (the partners that
  :func:`tdm_dagster.gate.dedup.bucket_candidates` pairs a later record with, so both
  find the same candidates); the shingle sets and keys of every record go to files in a
  temporary folder on disk and are read back only for the candidates' partners.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tdm_dagster.gate.dedup import Match, NearDuplicateIndex, bucket_candidates, earliest_verified
from tdm_dagster.gate.minhash import ShingleSets, jaccard

_NONE = -1
_PAIRS_PER_BLOCK = 50_000
"""Candidate pairs verified at a time: bounds the shingle arrays the exact Jaccard sorts
(a chunk of near-identical records has a dozen candidates each)."""


class FirstSeen:
    """First row of each digest among the rows given so far, rows arriving in batch order."""

    def __init__(self) -> None:
        self._digests = np.empty(0, "S16")
        self._rows = np.empty(0, np.int64)

    def __len__(self) -> int:
        return int(self._digests.size)

    def first_rows(self, digests: Sequence[bytes], rows: np.ndarray) -> np.ndarray:
        """For each ``(digest, row)``, later rows than any given before: the row of the
        digest's first occurrence (its own row when it is the first)."""
        if not len(digests):
            return np.empty(0, np.int64)
        keys = np.frombuffer(b"".join(digests), "S16")
        unique, first_index, inverse = np.unique(keys, return_index=True, return_inverse=True)
        slot = np.searchsorted(self._digests, unique)
        known = slot < self._digests.size
        known[known] = self._digests[slot[known]] == unique[known]
        firsts = rows[first_index].astype(np.int64)
        firsts[known] = self._rows[slot[known]]
        new = ~known
        self._digests = np.insert(self._digests, slot[new], unique[new])
        self._rows = np.insert(self._rows, slot[new], firsts[new])
        return firsts[inverse.reshape(-1)]


class _KeyStore:
    """The key of every row, in a file (read back only for the rows a finding names)."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "w+b")  # noqa: SIM115 (closed by NearDuplicateStream.close)
        self._ends: list[np.ndarray] = []
        self._size = 0

    def append(self, keys: Sequence[str]) -> None:
        encoded = [key.encode("utf-8") for key in keys]
        self._file.seek(0, 2)
        self._file.write(b"".join(encoded))
        lengths = np.fromiter((len(key) for key in encoded), np.int64, len(encoded))
        self._ends.append(self._size + np.cumsum(lengths))
        self._size += int(lengths.sum())

    def get(self, rows: Sequence[int]) -> list[str]:
        ends = np.concatenate(self._ends) if self._ends else np.empty(0, np.int64)
        self._ends = [ends]
        self._file.flush()
        out = []
        for row in rows:
            start = int(ends[row - 1]) if row else 0
            self._file.seek(start)
            out.append(self._file.read(int(ends[row]) - start).decode("utf-8"))
        return out

    def close(self) -> None:
        self._file.close()


class _ShingleStore:
    """Every row's shingle ids in one file of uint32 (CSR: offsets kept in memory)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._file = open(path, "w+b")  # noqa: SIM115 (closed by NearDuplicateStream.close)
        self._offsets = [np.zeros(1, np.int64)]

    def append(self, sets: ShingleSets) -> None:
        self._file.seek(0, 2)
        self._file.write(np.ascontiguousarray(sets.ids, np.uint32).tobytes())
        self._offsets.append(self._offsets[-1][-1] + sets.offsets[1:])

    def sets_of(self, rows: np.ndarray) -> ShingleSets:
        """The shingle sets of ``rows`` (in that order), read from the file."""
        offsets = np.concatenate(self._offsets)
        self._offsets = [offsets]
        sizes = offsets[rows + 1] - offsets[rows]
        total = int(sizes.sum())
        if total == 0:
            return ShingleSets(np.empty(0, np.uint32), np.concatenate(([0], np.cumsum(sizes))).astype(np.int64))
        self._file.flush()
        stored = np.memmap(self._path, np.uint32, mode="r", shape=(int(offsets[-1]),))
        within = np.arange(total) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        ids = np.asarray(stored[np.repeat(offsets[rows], sizes) + within])
        del stored
        return ShingleSets(ids, np.concatenate(([0], np.cumsum(sizes))).astype(np.int64))

    def close(self) -> None:
        self._file.close()


class _Buckets:
    """One LSH band: each bucket's hash (sorted) and its first, second and last rows."""

    def __init__(self) -> None:
        self.hashes = np.empty(0, np.uint64)
        self.rows = np.empty((0, 3), np.int32)
        """Rows of the batch (fewer than 2**31), -1 for none."""

    def candidates(self, hashes: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(later row, earlier row) candidate pairs of the new ``rows`` (bucket ``hashes``),
        by the rule of :func:`~tdm_dagster.gate.dedup.bucket_candidates` over every row so
        far; then remembers the new rows."""
        slot = np.searchsorted(self.hashes, hashes)
        known = slot < self.hashes.size
        known[known] = self.hashes[slot[known]] == hashes[known]
        held_slots = np.unique(slot[known])
        held = self.rows[held_slots]
        # what bucket_candidates reads of the earlier rows of a bucket: its first two and its last
        last = np.where((held[:, 2] != held[:, 0]) & (held[:, 2] != held[:, 1]), held[:, 2], _NONE)
        earlier_rows = np.concatenate((held[:, 0], held[:, 1], last)).astype(np.int64)
        earlier_hashes = np.tile(self.hashes[held_slots], 3)
        present = earlier_rows != _NONE
        all_hashes = np.concatenate((earlier_hashes[present], hashes))
        all_rows = np.concatenate((earlier_rows[present], rows))
        order = np.lexsort((all_rows, all_hashes))
        all_hashes, all_rows = all_hashes[order], all_rows[order]
        new_bucket = np.concatenate(([True], all_hashes[1:] != all_hashes[:-1]))[: all_hashes.size]
        later, earlier = bucket_candidates(new_bucket)
        fresh = all_rows[later] >= rows[0] if rows.size else np.zeros(0, bool)
        pairs = all_rows[later[fresh]], all_rows[earlier[fresh]]
        self._remember(all_hashes, all_rows, new_bucket)
        return pairs

    def _remember(self, hashes: np.ndarray, rows: np.ndarray, new_bucket: np.ndarray) -> None:
        starts = np.flatnonzero(new_bucket)
        ends = np.concatenate((starts[1:], [hashes.size]))
        summary = np.stack(
            (rows[starts], np.where(ends - starts >= 2, rows[np.minimum(starts + 1, hashes.size - 1)], _NONE), rows[ends - 1]),
            axis=1,
        ).astype(np.int32)
        bucket_hashes = hashes[starts]
        slot = np.searchsorted(self.hashes, bucket_hashes)
        known = slot < self.hashes.size
        known[known] = self.hashes[slot[known]] == bucket_hashes[known]
        self.rows[slot[known]] = summary[known]
        self.hashes = np.insert(self.hashes, slot[~known], bucket_hashes[~known])
        self.rows = np.insert(self.rows, slot[~known], summary[~known], axis=0)


class NearDuplicateStream:
    """Near-duplicates of each record among the records before it in the batch, fed one
    chunk at a time in batch order: the same matches as ``NearDuplicateIndex.find_within``
    over the whole batch. Close it (or use it as a context manager) to delete its files."""

    def __init__(self, threshold: float) -> None:
        self._index = NearDuplicateIndex(threshold=threshold)
        self._folder = tempfile.TemporaryDirectory(prefix="tdm-gate-")
        self._keys = _KeyStore(Path(self._folder.name) / "keys")
        self._shingles = _ShingleStore(Path(self._folder.name) / "shingles.u32")
        self._bands = [_Buckets() for _ in range(self._index.bands)]
        self.rows = 0

    def __enter__(self) -> NearDuplicateStream:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._keys.close()
        self._shingles.close()
        self._folder.cleanup()

    def keys_of(self, rows: Sequence[int]) -> list[str]:
        return self._keys.get(rows)

    def find(self, keys: Sequence[str], texts: Sequence[str]) -> list[Match]:
        """``Match(later key, earliest similar earlier key, J)`` for the records of
        ``texts`` (the next rows of the batch) that near-duplicate an earlier record."""
        if len(keys) != len(texts):
            raise ValueError(f"{len(keys)} keys for {len(texts)} texts")
        sets, bands = self._index.sketch(texts)
        first = self.rows
        rows = np.arange(first, first + len(texts), dtype=np.int64)
        self._keys.append(keys)
        self._shingles.append(sets)
        self.rows += len(texts)
        later, earlier = [], []
        for band, buckets in enumerate(self._bands):
            pair_later, pair_earlier = buckets.candidates(bands[:, band], rows)
            keep = sets.sizes[pair_later - first] > 0
            later.append(pair_later[keep])
            earlier.append(pair_earlier[keep])
        if not later or not sum(part.size for part in later):
            return []
        packed = np.unique((np.concatenate(later) << 32) | np.concatenate(earlier))
        chosen = [self._verified(sets, first, packed[start : start + _PAIRS_PER_BLOCK]) for start in range(0, packed.size, _PAIRS_PER_BLOCK)]
        later_rows, earlier_rows, similarity = (np.concatenate(part) for part in zip(*chosen))
        earliest = np.concatenate(([True], later_rows[1:] != later_rows[:-1]))[: later_rows.size]  # pairs come sorted
        later_rows, earlier_rows, similarity = later_rows[earliest], earlier_rows[earliest], similarity[earliest]
        partner_keys = self.keys_of(earlier_rows.tolist())
        return [Match(keys[int(row) - first], key, float(s)) for row, key, s in zip(later_rows, partner_keys, similarity)]

    def _verified(self, sets: ShingleSets, first: int, packed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Of the candidate pairs ``packed`` (later << 32 | earlier, sorted), each later
        row's earliest partner at or above the threshold, with their exact Jaccard."""
        later_rows, earlier_rows = packed >> 32, packed & 0xFFFFFFFF
        partners, partner_of = np.unique(earlier_rows, return_inverse=True)
        similarity = jaccard(sets, later_rows - first, self._shingles.sets_of(partners), partner_of.reshape(-1))
        chosen = earliest_verified(later_rows, earlier_rows, similarity, self._index.threshold)
        return later_rows[chosen], earlier_rows[chosen], similarity[chosen]
