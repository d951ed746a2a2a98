"""Where each record of a version lives, and the version checksum that pins its content.

``Placement`` is a version's records in order as (chunk, row) pairs with their hashes.
It is built from a manifest (segments) by reading only the hash column of each chunk,
turned back into segments by run-length encoding, and concatenated to build new
versions from old ones without touching record data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tdm_dagster.datasets.catalog import Segment
from tdm_dagster.datasets.errors import CorruptObjectError
from tdm_dagster.datasets.store import HASH_TYPE, ObjectStore, digest_matrix


@dataclass(frozen=True)
class Placement:
    chunks: list[str]
    chunk_index: np.ndarray  # int32, position in ``chunks`` of each record's chunk
    rows: np.ndarray  # int32, row inside that chunk
    digests: np.ndarray  # (n, 32) uint8 record hashes

    def __len__(self) -> int:
        return int(self.rows.size)

    @classmethod
    def empty(cls) -> Placement:
        return cls([], np.empty(0, np.int32), np.empty(0, np.int32), np.empty((0, 32), np.uint8))

    @classmethod
    def concatenate(cls, parts: Sequence[Placement]) -> Placement:
        chunks: list[str] = []
        position: dict[str, int] = {}
        remapped = []
        for part in parts:
            mapping = np.array([position.setdefault(chunk, len(position)) for chunk in part.chunks], np.int32)
            remapped.append(mapping[part.chunk_index] if part.chunks else part.chunk_index)
        chunks = list(position)
        return cls(
            chunks,
            np.concatenate([np.empty(0, np.int32), *remapped]).astype(np.int32),
            np.concatenate([np.empty(0, np.int32), *(part.rows for part in parts)]).astype(np.int32),
            np.concatenate([np.empty((0, 32), np.uint8), *(part.digests for part in parts)]),
        )

    def checksum(self) -> str:
        """sha256 over the ordered 32-byte record hashes."""
        return hashlib.sha256(np.ascontiguousarray(self.digests).tobytes()).hexdigest()

    def find(self, digests: np.ndarray) -> np.ndarray:
        """Position in this placement of a record with each of ``digests``, -1 where absent."""
        if len(self) == 0 or digests.shape[0] == 0:
            return np.full(digests.shape[0], -1, np.int64)
        found = pc.index_in(_hash_array(digests), value_set=_hash_array(self.digests))
        return found.fill_null(-1).to_numpy().astype(np.int64)

    def segments(self) -> list[Segment]:
        """Run-length encoding: consecutive rows of one chunk become one segment."""
        if len(self) == 0:
            return []
        breaks = np.flatnonzero((np.diff(self.chunk_index) != 0) | (np.diff(self.rows) != 1)) + 1
        starts = np.concatenate(([0], breaks))
        stops = np.concatenate((breaks, [len(self)]))
        return [
            Segment(self.chunks[self.chunk_index[a]], int(self.rows[a]), int(self.rows[a]) + int(b - a))
            for a, b in zip(starts, stops)
        ]


def _check_ranges(segments: Sequence[Segment], row_counts: dict[str, int], context: str) -> None:
    """``CorruptObjectError`` naming the first segment whose rows lie outside its chunk."""
    for position, segment in enumerate(segments):
        rows = row_counts[segment.chunk]
        if not 0 <= segment.start < segment.stop <= rows:
            raise CorruptObjectError(
                f"{context}: segment {position} names rows [{segment.start}, {segment.stop}) of object {segment.chunk}, "
                f"which holds {rows} records; nothing was read"
            )


def _hash_array(digests: np.ndarray) -> pa.Array:
    data = np.ascontiguousarray(digests, np.uint8)
    return pa.Array.from_buffers(HASH_TYPE, data.shape[0], [None, pa.py_buffer(data.tobytes())])


def load_placement(store: ObjectStore, segments: Sequence[Segment], context: str) -> tuple[Placement, int]:
    """The placement of a manifest, reading (and verifying) each chunk once; returns (placement, bytes read).

    Every segment is checked against its chunk's row count (from the Parquet footer) first:
    a manifest from elsewhere naming rows 0 to 10^9 of a 300-row chunk is refused before
    any record is read or any array of that length allocated."""
    chunks = list(dict.fromkeys(segment.chunk for segment in segments))
    _check_ranges(segments, {chunk: store.row_count(chunk, context) for chunk in chunks}, context)
    position = {chunk: index for index, chunk in enumerate(chunks)}
    hashes: dict[str, np.ndarray] = {}
    total_bytes = 0
    for chunk in chunks:
        table, size = store.read_chunk(chunk, ["hash"], context)
        hashes[chunk] = digest_matrix(table.column("hash"))
        total_bytes += size
    if not segments:
        return Placement.empty(), total_bytes
    lengths = np.array([segment.stop - segment.start for segment in segments], np.int64)
    chunk_index = np.repeat(np.array([position[s.chunk] for s in segments], np.int32), lengths)
    rows = np.concatenate([np.arange(s.start, s.stop, dtype=np.int32) for s in segments])
    digests = np.concatenate([hashes[s.chunk][s.start : s.stop] for s in segments])
    return Placement(chunks, chunk_index, rows, digests), total_bytes
