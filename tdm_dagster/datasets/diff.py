"""What changed between two versions of a dataset.

Records are matched first by content (same hash: unchanged, counted as a multiset, so
a duplicated record is noticed). What is left on each side is paired by identity (the
record's ``id``, else its prompt): a pair is *changed*, the rest are *added* or
*removed*.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tdm_dagster.datasets.records import Record, identity, record_hash


@dataclass(frozen=True)
class VersionDiff:
    dataset: str
    old_version: str
    new_version: str
    added: list[Record]
    removed: list[Record]
    changed: list[tuple[Record, Record]]
    """(old, new) pairs with the same identity and different content."""
    unchanged: int
    metric_deltas: dict[str, float]
    """new - old for each numeric metric both versions have."""

    def summary(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "old_version": self.old_version,
            "new_version": self.new_version,
            "added": len(self.added),
            "removed": len(self.removed),
            "changed": len(self.changed),
            "unchanged": self.unchanged,
            "metric_deltas": self.metric_deltas,
        }


def metric_deltas(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, float]:
    def numeric(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    return {key: new[key] - old[key] for key in sorted(old.keys() & new.keys()) if numeric(old[key]) and numeric(new[key])}


def _left_over(records: Sequence[Record], hashes: list[bytes], matched: Counter[bytes]) -> list[Record]:
    """Records whose hash is not (or no longer) in ``matched``; consumes ``matched``."""
    left = []
    for record, digest in zip(records, hashes):
        if matched[digest] > 0:
            matched[digest] -= 1
        else:
            left.append(record)
    return left


def diff_records(
    dataset: str, old_version: str, new_version: str, old: Sequence[Record], new: Sequence[Record],
    old_metrics: Mapping[str, Any], new_metrics: Mapping[str, Any],
) -> VersionDiff:
    old_hashes = [record_hash(record) for record in old]
    new_hashes = [record_hash(record) for record in new]
    common = Counter(old_hashes) & Counter(new_hashes)
    unchanged = sum(common.values())
    old_left = _left_over(old, old_hashes, Counter(common))
    new_left = _left_over(new, new_hashes, Counter(common))
    old_by_identity: dict[str | None, list[Record]] = defaultdict(list)
    for record in old_left:
        old_by_identity[identity(record)].append(record)
    added, changed = [], []
    for record in new_left:
        key = identity(record)
        candidates = old_by_identity.get(key) if key is not None else None
        if candidates:
            changed.append((candidates.pop(0), record))
        else:
            added.append(record)
    removed = [record for records in old_by_identity.values() for record in records]
    return VersionDiff(dataset, old_version, new_version, added, removed, changed, unchanged, metric_deltas(old_metrics, new_metrics))
