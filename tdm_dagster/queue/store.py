"""The training queue: approved batches as JSONL files in ``queue/{high,normal,low}/``.

The trainer takes files by priority (high, then normal, then low) and oldest first.
Files land with an atomic rename, so a consumer listing ``*.jsonl`` never sees a
partial file. Queue depth is the number of batch files waiting.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tdm_dagster.files.atomic import atomic_write_jsonl
from tdm_dagster.home import PRIORITIES, TdmHome


@dataclass(frozen=True)
class QueuedFile:
    path: Path
    priority: str
    batch_id: str
    modified: float


class TrainingQueue:
    def __init__(self, home: TdmHome):
        self.home = home

    def enqueue(self, batch_id: str, records: Iterable[dict[str, Any]], priority: str) -> tuple[Path, int]:
        """Write the batch atomically into its priority folder; returns (path, examples).

        Re-queueing the same batch replaces its file rather than adding a second one,
        and a batch already queued under another priority is moved, not duplicated.
        """
        target = self.home.queue_dir(priority) / f"{batch_id}.jsonl"
        written = atomic_write_jsonl(target, records)
        for other in PRIORITIES:
            stale = self.home.queue_dir(other) / target.name
            if other != priority and stale.exists():
                stale.unlink()
        return target, written

    def files(self) -> list[QueuedFile]:
        """Waiting files in the order a trainer takes them."""
        found: list[QueuedFile] = []
        for priority in PRIORITIES:
            folder = self.home.queue_dir(priority)
            if not folder.is_dir():
                continue
            entries = [
                QueuedFile(path, priority, path.stem, path.stat().st_mtime)
                for path in folder.glob("*.jsonl")
                if not path.name.startswith(".")
            ]
            found.extend(sorted(entries, key=lambda f: (f.modified, f.path.name)))
        return found

    def depth(self) -> dict[str, int]:
        counts = dict.fromkeys(PRIORITIES, 0)
        for queued in self.files():
            counts[queued.priority] += 1
        return counts

    def total_depth(self) -> int:
        return sum(self.depth().values())


def count_lines(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(1 for line in handle if line.strip())
