"""Train/val/test splits that never put a duplicate on both sides of a split.

Records are first grouped: records with the same ``dedup.exact_key`` of their
conversation text, and records linked by near-duplicate matches, by words or by meaning
(:mod:`tdm_dagster.gate.semantic`, with the ``[semantic]`` extra), transitively, form
one group, and a whole group goes to one split. Otherwise a model would be evaluated
on lightly edited or reworded copies of its training data. Within each stratum (the value of the
``stratify_by`` field of a group's first record) groups are shuffled with the seed and
each goes to the split furthest below its target share, so ratios hold per stratum.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tdm_dagster.datasets.records import Record, conversation_text, get_field
from tdm_dagster.datasets.steps import near_duplicate_matches
from tdm_dagster.gate.dedup import exact_key
from tdm_dagster.gate.semantic import DUPLICATE_THRESHOLD

DEFAULT_RATIOS = {"train": 0.8, "val": 0.1, "test": 0.1}


@dataclass(frozen=True)
class SplitResult:
    splits: dict[str, list[Record]]
    assignment: list[str]
    """Split name of each input record, in input order."""
    groups: int
    """Duplicate groups (each assigned whole to one split)."""
    grouped_records: int
    """Records that share their group with at least one other record."""


class _UnionFind:
    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, item: int) -> int:
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, a: int, b: int) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self.parent[max(root_a, root_b)] = min(root_a, root_b)


def duplicate_groups(records: Sequence[Record], threshold: float, semantic_threshold: float | None = DUPLICATE_THRESHOLD) -> list[list[int]]:
    """Record positions grouped by exact key and near-duplicate links (lexical, and semantic
    unless ``semantic_threshold`` is None), in first-seen order."""
    groups = _UnionFind(len(records))
    first_with_key: dict[bytes, int] = {}
    for position, record in enumerate(records):
        groups.union(position, first_with_key.setdefault(exact_key(conversation_text(record)), position))
    for later, earlier in near_duplicate_matches(records, threshold):
        groups.union(later, earlier)
    if semantic_threshold is not None:
        from tdm_dagster.gate.semantic.findings import semantic_matches

        for later, earlier in semantic_matches([conversation_text(r) for r in records], semantic_threshold, required=False):
            groups.union(later, earlier)
    members: dict[int, list[int]] = defaultdict(list)
    for position in range(len(records)):
        members[groups.find(position)].append(position)
    return list(members.values())


def assign_splits(
    records: Sequence[Record],
    ratios: Mapping[str, float] = DEFAULT_RATIOS,
    stratify_by: str | None = None,
    seed: int = 0,
    near_duplicate_threshold: float = 0.8,
    semantic_threshold: float | None = DUPLICATE_THRESHOLD,
) -> SplitResult:
    if not ratios or any(share < 0 for share in ratios.values()) or sum(ratios.values()) <= 0:
        raise ValueError(f"split ratios {dict(ratios)} must be non-negative with a positive sum")
    total = sum(ratios.values())
    shares = {name: share / total for name, share in ratios.items()}
    groups = duplicate_groups(records, near_duplicate_threshold, semantic_threshold)
    strata: dict[str, list[list[int]]] = defaultdict(list)
    for group in groups:
        strata[repr(get_field(records[group[0]], stratify_by)) if stratify_by else ""].append(group)
    assignment = [""] * len(records)
    rng = random.Random(seed)
    for stratum in sorted(strata):
        stratum_groups = strata[stratum]
        rng.shuffle(stratum_groups)
        size = sum(len(group) for group in stratum_groups)
        filled = dict.fromkeys(shares, 0)
        for group in stratum_groups:
            target = max(shares, key=lambda name: (shares[name] * size - filled[name], shares[name]))
            filled[target] += len(group)
            for position in group:
                assignment[position] = target
    splits: dict[str, list[Record]] = {name: [] for name in shares}
    for record, name in zip(records, assignment):
        splits[name].append(record)
    grouped = sum(len(group) for group in groups if len(group) > 1)
    return SplitResult(splits, assignment, len(groups), grouped)
