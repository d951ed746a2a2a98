"""Building a new version and committing it to the catalog.

A new version is built in two parts. :func:`place` stores the records no earlier chunk
holds in new content-addressed chunks and references the rest where they already are:
the heavy part, done before the registry takes the dataset's lock. :func:`commit_version`
then numbers the version and inserts it, its manifest and the dataset's new current
pointer in one catalog transaction, under the lock. When the parent moved in between,
the registry runs the build again on the new parent, reusing the :class:`StagedRecords`
(canonical JSON and hashes are computed once).
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from tdm_dagster.datasets.catalog import VERSION_COLUMNS, Segment, VersionInfo, connect, find_version, transaction, utc_now
from tdm_dagster.datasets.errors import VersionExistsError
from tdm_dagster.datasets.manifest import Placement
from tdm_dagster.datasets.names import parse_version
from tdm_dagster.datasets.records import Record, canonical_json, sha256_digest
from tdm_dagster.datasets.store import CHUNK_ROWS, ObjectStore


@dataclass(frozen=True)
class StagedRecords:
    """Records as canonical JSON and their hashes: computed once, reused if a commit is rebuilt."""

    texts: list[str]
    digests: np.ndarray  # (n, 32) uint8

    @classmethod
    def of(cls, records: list[Record]) -> StagedRecords:
        texts = [canonical_json(record) for record in records]
        return cls(texts, np.frombuffer(b"".join(sha256_digest(text) for text in texts), np.uint8).reshape(-1, 32))

    @classmethod
    def concatenate(cls, parts: Sequence[StagedRecords]) -> StagedRecords:
        return cls(
            [text for part in parts for text in part.texts],
            np.concatenate([np.empty((0, 32), np.uint8), *(part.digests for part in parts)]),
        )


class NothingNew(Exception):
    """Raised by a build that finds every batch already in its parent: no version to write."""


@dataclass(frozen=True)
class BuiltVersion:
    """A new version ready to commit."""

    placement: Placement
    source_batches: Sequence[str]
    operation: dict[str, Any]


def immutable(name: str, version: str) -> VersionExistsError:
    return VersionExistsError(f"dataset {name!r} version {version} already exists; versions are immutable")


def place(store: ObjectStore, staged: StagedRecords, known: Placement) -> Placement:
    """Place records: content ``known`` already holds is referenced, the rest goes into new chunks."""
    texts, digests = staged.texts, staged.digests
    found = known.find(digests)
    new_row: dict[bytes, int] = {}
    new_texts: list[str] = []
    new_position = np.full(len(texts), -1, np.int64)
    for position in np.flatnonzero(found < 0):
        digest = digests[position].tobytes()
        if digest not in new_row:
            new_row[digest] = len(new_texts)
            new_texts.append(texts[position])
        new_position[position] = new_row[digest]
    chunks = []
    for start in range(0, len(new_texts), CHUNK_ROWS):
        part = new_texts[start : start + CHUNK_ROWS]
        chunks.append(store.write_chunk([sha256_digest(text) for text in part], part)[0])
    is_new, known_position = found < 0, found[found >= 0]
    chunk_index = np.empty(len(texts), np.int32)
    rows = np.empty(len(texts), np.int32)
    chunk_index[~is_new], rows[~is_new] = known.chunk_index[known_position], known.rows[known_position]
    chunk_index[is_new] = len(known.chunks) + new_position[is_new] // CHUNK_ROWS
    rows[is_new] = new_position[is_new] % CHUNK_ROWS
    return Placement([*known.chunks, *chunks], chunk_index, rows, digests)


def commit_version(
    catalog_path: Path, name: str, built: BuiltVersion, base: VersionInfo | None, version: str | None, major: bool,
    *, creator: str | None, description: str, metrics: Mapping[str, Any] | None,
) -> VersionInfo:
    """Insert the version, its manifest and the new current pointer in one catalog transaction."""
    placement = built.placement
    with connect(catalog_path) as con:
        existing = [tuple(row) for row in con.execute("SELECT major, minor FROM versions WHERE dataset = ?", [name]).fetchall()]
        number = version or next_version(existing, base.version if base else None, major)
        major_number, minor_number = parse_version(number)
        if (major_number, minor_number) in existing:
            raise immutable(name, number)
        info = VersionInfo(
            name, number, [base.version] if base else [], creator or getpass.getuser(), description, utc_now(),
            len(placement), placement.checksum(), dict(metrics or {}), list(dict.fromkeys(built.source_batches)), built.operation,
        )  # fmt: skip
        try:
            with transaction(con):
                insert_version(con, info, placement.segments())
                con.execute("UPDATE datasets SET current_version = ? WHERE name = ?", [number, name])
        except duckdb.ConstraintException:
            raise immutable(name, number) from None
        return find_version(con, name, number)


def insert_version(con: duckdb.DuckDBPyConnection, info: VersionInfo, segments: Sequence[Segment]) -> None:
    """Insert a version's row and its manifest (in the caller's transaction)."""
    major_number, minor_number = parse_version(info.version)
    con.execute(
        f"INSERT INTO versions (major, minor, {VERSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            major_number, minor_number, info.dataset, info.version, list(info.parents), info.creator, info.description,
            info.created_at, info.record_count, info.checksum, json.dumps(info.metrics), list(info.source_batches),
            json.dumps(info.operation),
        ],
    )  # fmt: skip
    if segments:
        con.executemany(
            "INSERT INTO segments VALUES (?, ?, ?, ?, ?, ?)",
            [[info.dataset, info.version, seq, s.chunk, s.start, s.stop] for seq, s in enumerate(segments)],
        )


def next_version(existing: list[tuple[int, int]], base: str | None, major: bool) -> str:
    """First version 1.0; a major bump goes past every major; a minor bump past every minor of the base's major."""
    if not existing:
        return "1.0"
    if major or base is None:
        return f"{max(m for m, _ in existing) + 1}.0"
    base_major = parse_version(base)[0]
    return f"{base_major}.{max(n for m, n in existing if m == base_major) + 1}"
