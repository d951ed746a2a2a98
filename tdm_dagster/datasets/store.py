"""Content-addressed Parquet chunks of records.

A chunk is a Parquet file with two columns, ``hash`` (sha256 of the record's canonical
JSON, 32 bytes) and ``record`` (that canonical JSON). Its object id is the sha256 of
the file's bytes, so the same chunk is stored once, and any flipped byte, in the data
or in the hashes, is caught by re-hashing the file before anything in it is served.
Chunks are never modified, only added (atomically) and garbage-collected when no
version refers to them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tdm_dagster.files.atomic import atomic_open
from tdm_dagster.datasets.errors import CorruptObjectError, MissingObjectError

HASH_TYPE = pa.binary(32)
CHUNK_SCHEMA = pa.schema([("hash", HASH_TYPE), ("record", pa.string())])
CHUNK_ROWS = 100_000
"""Records per chunk: big enough for fast scans, small enough that a chunk fits in memory easily."""


def digest_matrix(hashes: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """``(n, 32)`` uint8 view of a column of 32-byte hashes (no copy for a single chunk)."""
    if isinstance(hashes, pa.ChunkedArray):
        hashes = hashes.combine_chunks() if hashes.num_chunks != 1 else hashes.chunk(0)
    if len(hashes) == 0:
        return np.empty((0, 32), np.uint8)
    data = np.frombuffer(hashes.buffers()[1], np.uint8)
    return data[hashes.offset * 32 : (hashes.offset + len(hashes)) * 32].reshape(-1, 32)


@dataclass(frozen=True)
class ObjectStore:
    """Chunks under ``root/chunks/<2 hex>/<sha256>.parquet``."""

    root: Path

    def path(self, chunk: str) -> Path:
        return self.root / "chunks" / chunk[:2] / f"{chunk}.parquet"

    def write_chunk(self, hashes: Sequence[bytes], records_json: Sequence[str]) -> tuple[str, int]:
        """Store one chunk (idempotent); returns (object id, bytes)."""
        table = pa.table({"hash": pa.array(hashes, HASH_TYPE), "record": pa.array(records_json, pa.string())})
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        data = sink.getvalue().to_pybytes()
        chunk = hashlib.sha256(data).hexdigest()
        target = self.path(chunk)
        if not target.exists():
            with atomic_open(target, "wb") as handle:
                handle.write(data)
        return chunk, len(data)

    def read_chunk(self, chunk: str, columns: Sequence[str], context: str) -> tuple[pa.Table, int]:
        """The chunk's ``columns`` after checking the file's sha256; returns (table, bytes read).

        ``context`` (e.g. "dataset 'x' version 1.2") goes into the error so that the
        reader knows which data is affected.

        The file is read into Arrow's own memory, never a Python ``bytes``: Arrow's worker
        threads may drop the last reference to the buffer after ``read_table`` returns, and
        releasing a Python-owned buffer takes the GIL, so a worker doing that while the
        interpreter exits aborted the process ("terminate called without an active
        exception"). Releasing Arrow memory needs no GIL.
        """
        target = self.path(chunk)
        try:
            with pa.OSFile(str(target)) as handle:
                data = handle.read_buffer()
        except FileNotFoundError:
            raise MissingObjectError(f"{context}: object {chunk} is missing ({target})") from None
        if hashlib.sha256(data).hexdigest() != chunk:
            raise CorruptObjectError(f"{context}: object {chunk} is corrupt: its sha256 does not match ({target})")
        return pq.read_table(pa.BufferReader(data), columns=list(columns)), data.size

    def row_count(self, chunk: str, context: str) -> int:
        """How many records the chunk holds, from its Parquet footer alone (no record is read)."""
        target = self.path(chunk)
        try:
            return pq.read_metadata(str(target)).num_rows
        except FileNotFoundError:
            raise MissingObjectError(f"{context}: object {chunk} is missing ({target})") from None
        except (OSError, pa.ArrowException) as error:
            raise CorruptObjectError(f"{context}: object {chunk} is corrupt: {error} ({target})") from None

    def remove(self, chunk: str) -> None:
        self.path(chunk).unlink(missing_ok=True)
