"""The semantic duplicate search of a batch judged in chunks (:func:`tdm_dagster.gate.run.gate_chunks`).

Each chunk's rows are searched among themselves and against every earlier chunk's (one
earlier chunk at a time: :func:`.index.nearest_across`), so a row finds the partner the
whole batch's search would: its most similar earlier row, equal cosines to the earliest.
What the earlier chunks leave is on disk, in a temporary folder: their whole-conversation
vectors (float16, memory-mapped) and facts keys, and each row's key and text (the
finding's partner and its Jaccard), read back only for the rows found. The last chunk
waits in memory until the next one comes, so a batch of one chunk writes nothing.
"""

from __future__ import annotations

import json
import tempfile
from array import array
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tdm_dagster.gate.semantic.index import Embeddings, nearest_across


class EarlierChunks:
    """The rows of the chunks judged before, on disk; :meth:`close` removes them."""

    def __init__(self) -> None:
        self._folder: tempfile.TemporaryDirectory | None = None
        self._pending: tuple[Embeddings, Sequence[str], Sequence[str]] | None = None
        self._starts = [0]
        """The first row of each chunk (and the end of the last)."""
        self._offsets = array("q")
        """Where each row's ``[key, text]`` line starts in ``rows.jsonl``."""
        self._dimensions = 0

    def close(self) -> None:
        if self._folder is not None:
            self._folder.cleanup()

    @property
    def _root(self) -> Path:
        if self._folder is None:
            self._folder = tempfile.TemporaryDirectory(prefix="tdm-semantic-chunks-")
        return Path(self._folder.name)

    def _chunk(self, chunk: int) -> Embeddings:
        start, stop = self._starts[chunk], self._starts[chunk + 1]
        if start == stop:  # no schema-valid row (a file can be empty)
            return Embeddings(np.empty((0, max(self._dimensions, 1)), np.float16), np.empty(0, np.uint64))
        vectors = np.memmap(self._root / "vectors.f16", np.float16, "r", start * self._dimensions * 2, (stop - start, self._dimensions))
        facts = np.memmap(self._root / "facts.u64", np.uint64, "r", start * 8, (stop - start,))
        return Embeddings(vectors, facts)

    def _rows(self, rows: Sequence[int]) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        if not rows:
            return found
        with open(self._root / "rows.jsonl", "rb") as handle:
            for row in rows:
                handle.seek(self._offsets[row])
                key, text = json.loads(handle.readline())
                found.append((key, text))
        return found

    def nearest(
        self, own: Embeddings, keys: Sequence[str], texts: Sequence[str], threshold: float
    ) -> tuple[np.ndarray, list[str], list[str], np.ndarray]:
        """Each own row's most similar earlier row of the batch (this chunk's or an earlier
        chunk's) within ``threshold`` cosine: ``(rows, partner keys, partner texts, cosines)``."""
        if self._pending is not None:
            self._write(*self._pending)
            self._pending = None
        chunk = len(self._starts) - 1
        rows, chunks, partners, cosines = nearest_across(own, chunk, self._chunk, threshold)
        earlier = [self._starts[c] + p for c, p in zip(chunks.tolist(), partners.tolist()) if c < chunk]
        read = iter(self._rows(earlier))
        found = [next(read) if c < chunk else (keys[p], texts[p]) for c, p in zip(chunks.tolist(), partners.tolist())]
        return rows, [key for key, _ in found], [text for _, text in found], cosines

    def add(self, own: Embeddings, keys: Sequence[str], texts: Sequence[str]) -> None:
        """Keep this chunk's rows for the chunks after it."""
        self._pending = (own, keys, texts)

    def _write(self, own: Embeddings, keys: Sequence[str], texts: Sequence[str]) -> None:
        self._dimensions = own.vectors.shape[1] if len(own) else self._dimensions
        with open(self._root / "vectors.f16", "ab") as handle:
            handle.write(np.ascontiguousarray(own.vectors, np.float16).tobytes())
        with open(self._root / "facts.u64", "ab") as handle:
            handle.write(np.ascontiguousarray(own.facts, np.uint64).tobytes())
        with open(self._root / "rows.jsonl", "ab") as handle:
            for key, text in zip(keys, texts, strict=True):
                self._offsets.append(handle.tell())
                handle.write(json.dumps([key, text]).encode() + b"\n")
        self._starts.append(self._starts[-1] + len(own))
