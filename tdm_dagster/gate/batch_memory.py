"""What the gate keeps across the chunks of one batch (:func:`tdm_dagster.gate.run.gate_chunks`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tdm_dagster.config.settings import TdmConfig
    from tdm_dagster.gate.run import ShardFacts
    from tdm_dagster.home import TdmHome


class BatchMemory:
    """What the gate keeps across the chunks of one batch: the evaluation sets and the
    queued index (read once), the first row of each example (the diversity suite's exact
    duplicates) and the duplicate searches, lexical and semantic (level deep), all in
    batch order. A shard of a
    larger batch (``shard``) is told these facts instead."""

    def __init__(
        self, config: TdmConfig, suites: Sequence[str], level: str, paths: Sequence[str], queued_in: TdmHome | None, shard: ShardFacts | None
    ) -> None:
        self.eval_sets: list = []
        if paths:
            from tdm_dagster.gate.deep import load_eval_sets  # numpy loads here

            self.eval_sets = load_eval_sets(paths, config.gate.max_record_bytes)
        self.shard = shard
        self.valid_rows = 0
        """Schema-valid records of the chunks before."""
        self._examples = None
        self.duplicates = None
        if shard is None and "diversity" in suites:
            from tdm_dagster.gate.batch_index import FirstSeen

            self._examples = FirstSeen()
        if shard is None and level == "deep":
            from tdm_dagster.gate.deep import DuplicateSearch, load_queued_index

            threshold = config.gate.near_duplicate_threshold
            self.duplicates = DuplicateSearch(threshold, load_queued_index(queued_in, threshold) if queued_in is not None else None)
        self.semantic = None
        if level == "deep":  # a shard searches within itself only: the sharded run brings the rest
            from tdm_dagster.gate.semantic.chunks import EarlierChunks
            from tdm_dagster.gate.semantic.findings import SemanticCheck

            self.semantic = SemanticCheck.of(config.gate, queued_in, EarlierChunks() if shard is None else None)

    def __enter__(self) -> BatchMemory:
        return self

    def __exit__(self, *_: object) -> None:
        if self.duplicates is not None:
            self.duplicates.close()
        if self.semantic is not None and self.semantic.earlier is not None:
            self.semantic.earlier.close()

    def first_of(self, views: Sequence[Any]) -> Sequence[int] | None:
        """The row (among all schema-valid records of the batch) of each view's first
        identical example, -1 for none (itself, or malformed)."""
        if self.shard is not None:
            return self.shard.first_of
        if self._examples is None:
            return None
        import numpy as np

        from tdm_dagster.gate.quality.features import example_digest

        digests = [example_digest(messages) for messages in views]
        rows = np.arange(self.valid_rows, self.valid_rows + len(views), dtype=np.int64)
        wellformed = np.fromiter((digest is not None for digest in digests), bool, len(digests))
        first = np.full(len(views), -1, np.int64)
        found = self._examples.first_rows([d for d in digests if d is not None], rows[wellformed])
        first[wellformed] = np.where(found == rows[wellformed], -1, found)
        return first
