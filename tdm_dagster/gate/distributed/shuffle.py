"""Reduce step: the entries of one partition, from every shard, grouped by key.

Sorted by (group, key, row), every key's entries lie together in batch order:

- exact keys (dedup, and the diversity suite's example identity): each entry after the
  first of its key is a copy of that first one: ``(kind, copy row, first row)``;
- responses: the number of distinct response hashes (partitions hold disjoint keys, so
  the batch's count is the sum over partitions);
- LSH buckets (one group per band): candidate pairs by the in-process index's rule,
  :func:`tdm_dagster.gate.dedup.bucket_candidates`, so both engines check the same pairs.

The output is split by the shard of the later record, whose judge verifies and reports it.
"""

from __future__ import annotations

import numpy as np

from tdm_dagster.gate.dedup import bucket_candidates
from tdm_dagster.gate.distributed.sketch import COLUMNS, EXACT, EXAMPLE, FIRST_BAND, RESPONSE, shard_of

EXACT_COPY, EXAMPLE_COPY, NEAR_CANDIDATE = EXACT, EXAMPLE, FIRST_BAND
"""Kinds of output pairs: the entry group they came from (all bands give candidates)."""


def _copies(entries: np.ndarray, new_key: np.ndarray) -> np.ndarray:
    """``(group, copy row, first row)`` for every entry that is not the first of its key."""
    position = np.arange(entries.shape[0])
    first = np.maximum.accumulate(np.where(new_key, position, 0)) if position.size else position
    copy = ~new_key
    return np.stack((entries[copy, 0], entries[copy, 3], entries[first[copy], 3]), axis=1)


def _candidates(entries: np.ndarray, new_key: np.ndarray) -> np.ndarray:
    later, earlier = bucket_candidates(new_key)
    keep = entries[later, 4] > 0  # a record without shingles is never a near duplicate
    later, earlier = later[keep], earlier[keep]
    return np.stack((np.full(later.size, NEAR_CANDIDATE, np.uint64), entries[later, 3], entries[earlier, 3]), axis=1)


def reduce_partition(shards: int, *parts: np.ndarray) -> list:
    """Pairs for each shard (``shards`` arrays of ``(kind, later row, earlier row)``), then
    the number of distinct response hashes in this partition."""
    entries = np.concatenate(parts) if parts else np.empty((0, COLUMNS), np.uint64)
    entries = entries[np.lexsort((entries[:, 3], entries[:, 2], entries[:, 1], entries[:, 0]))]
    changed = np.any(entries[1:, :3] != entries[:-1, :3], axis=1)
    new_key = np.concatenate(([True], changed))[: entries.shape[0]]
    group = entries[:, 0]
    exact = (group == EXACT) | (group == EXAMPLE)
    banded = group >= FIRST_BAND
    pairs = [_copies(entries[exact], new_key[exact])]
    if banded.any():
        pairs.append(_candidates(entries[banded], new_key[banded]))
    found = np.concatenate(pairs)
    distinct_responses = int(np.count_nonzero(new_key & (group == RESPONSE)))
    target = shard_of(found[:, 1])
    return [found[target == shard] for shard in range(shards)] + [distinct_responses]
