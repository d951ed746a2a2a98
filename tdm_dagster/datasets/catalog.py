"""The DuckDB catalog: datasets, their versions and each version's manifest.

A manifest is an ordered list of *segments*: (chunk, start row, stop row). A version
that appends to another repeats its parent's segments and adds segments for the new
chunk only, so unchanged data is referenced, never copied.

A connection is opened per operation and closed at once: DuckDB lets one process hold
a file open for writing, and other processes (the Dagster daemon, the CLI) need it too.
Within a process, operations take turns (a lock per catalog file): DuckDB refuses to
attach a file that another connection of the same process has attached ("Unique file
handle conflict"), so the threads of a server (``tdm api``) would otherwise fail each
other's requests. Between processes, DuckDB's own file lock decides, and ``connect``
waits for it. One connection kept open for the process's life (DuckDB's advice for a
threaded server) would hold that file lock for good and shut the CLI and Dagster out.
The file uses 16 KiB blocks instead of DuckDB's 256 KiB: each commit writes a few new
blocks, and at 256 KiB the catalog, not the data, would dominate what a small append adds.

The lookups and deletes at the end work on an open connection, so one operation can run
several of them in one connection (and one transaction).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from tdm_dagster.datasets.errors import DatasetNotFoundError, VersionNotFoundError
from tdm_dagster.datasets.names import check_name, check_version

SCHEMA = """
CREATE TABLE IF NOT EXISTS datasets (
    name VARCHAR PRIMARY KEY,
    description VARCHAR NOT NULL,
    owner VARCHAR NOT NULL,
    tags VARCHAR[] NOT NULL,
    spec VARCHAR,
    created_at VARCHAR NOT NULL,
    current_version VARCHAR
);
CREATE TABLE IF NOT EXISTS versions (
    dataset VARCHAR NOT NULL,
    version VARCHAR NOT NULL,
    major INTEGER NOT NULL,
    minor INTEGER NOT NULL,
    parents VARCHAR[] NOT NULL,
    creator VARCHAR NOT NULL,
    description VARCHAR NOT NULL,
    created_at VARCHAR NOT NULL,
    record_count BIGINT NOT NULL,
    checksum VARCHAR NOT NULL,
    metrics VARCHAR NOT NULL,
    source_batches VARCHAR[] NOT NULL,
    operation VARCHAR NOT NULL,
    PRIMARY KEY (dataset, version)
);
CREATE TABLE IF NOT EXISTS segments (
    dataset VARCHAR NOT NULL,
    version VARCHAR NOT NULL,
    seq INTEGER NOT NULL,
    chunk VARCHAR NOT NULL,
    start_row INTEGER NOT NULL,
    stop_row INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    owner: str
    tags: list[str]
    spec: str | None
    created_at: str
    current_version: str | None


@dataclass(frozen=True)
class VersionInfo:
    dataset: str
    version: str
    parents: list[str]
    creator: str
    description: str
    created_at: str
    record_count: int
    checksum: str
    """sha256 (hex) over the version's record hashes in manifest order."""
    metrics: dict[str, Any]
    source_batches: list[str]
    """Every batch whose records the version holds (a parent's batches are inherited)."""
    operation: dict[str, Any] = field(default_factory=dict)
    """How the version was made: the operation and what each step reported."""


@dataclass(frozen=True)
class Segment:
    chunk: str
    start: int
    stop: int


DATASET_COLUMNS = "name, description, owner, tags, spec, created_at, current_version"
VERSION_COLUMNS = (
    "dataset, version, parents, creator, description, created_at, record_count, checksum, metrics, "
    "source_batches, operation"
)


def dataset_from_row(row: tuple[Any, ...]) -> DatasetInfo:
    return DatasetInfo(*row[:3], list(row[3]), *row[4:])


def version_from_row(row: tuple[Any, ...]) -> VersionInfo:
    dataset, version, parents, creator, description, created_at, count, checksum, metrics, batches, operation = row
    return VersionInfo(
        dataset, version, list(parents), creator, description, created_at, int(count), checksum,
        json.loads(metrics), list(batches), json.loads(operation),
    )


BLOCK_SIZE = 16384
LOCK_WAIT_SECONDS = 30.0
"""Operations hold the catalog for milliseconds; waiting beats failing when two processes meet."""


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")


def _attach(connection: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Attach the catalog, waiting up to ``LOCK_WAIT_SECONDS`` while another process holds its lock."""
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            connection.execute(f"ATTACH '{_quoted(path)}' AS catalog (BLOCK_SIZE {BLOCK_SIZE})")
            return
        except duckdb.IOException as error:
            if "lock" not in str(error).lower() or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


_TURNS: dict[Path, threading.RLock] = {}
_TURNS_GUARD = threading.Lock()


def _turn(path: Path) -> threading.RLock:
    """This process's lock for the catalog at ``path`` (re-entrant: a nested ``connect``
    in one thread then fails loudly in DuckDB instead of waiting for itself)."""
    with _TURNS_GUARD:
        return _TURNS.setdefault(path.resolve(), threading.RLock())


@contextmanager
def connect(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The catalog, open for one operation; the process's other threads wait their turn."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _turn(path):
        connection = duckdb.connect()
        try:
            _attach(connection, path)
            connection.execute("USE catalog")
            connection.execute(SCHEMA)
            yield connection
        finally:
            connection.close()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One catalog transaction: every statement in the block lands, or none does."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def utc_now() -> str:
    """The ``created_at`` of a new dataset or version."""
    return datetime.now(UTC).isoformat(timespec="seconds")


# -- lookups (on an open connection) -------------------------------------------------------


def find_dataset(con: duckdb.DuckDBPyConnection, name: str) -> DatasetInfo:
    check_name(name)
    row = con.execute(f"SELECT {DATASET_COLUMNS} FROM datasets WHERE name = ?", [name]).fetchone()
    if row is None:
        raise DatasetNotFoundError(f"no dataset named {name!r}")
    return dataset_from_row(row)


def find_version(con: duckdb.DuckDBPyConnection, name: str, version: str | None) -> VersionInfo:
    """``version`` of ``name``; None (never an empty string) means the current version."""
    dataset = find_dataset(con, name)
    wanted = dataset.current_version if version is None else check_version(version)
    if wanted is None:
        raise VersionNotFoundError(f"dataset {name!r} has no versions yet")
    row = con.execute(f"SELECT {VERSION_COLUMNS} FROM versions WHERE dataset = ? AND version = ?", [name, wanted]).fetchone()
    if row is None:
        raise VersionNotFoundError(f"dataset {name!r} has no version {wanted}")
    return version_from_row(row)


def version_segments(con: duckdb.DuckDBPyConnection, name: str, version: str) -> list[Segment]:
    """The version's manifest, in order."""
    rows = con.execute(
        "SELECT chunk, start_row, stop_row FROM segments WHERE dataset = ? AND version = ? ORDER BY seq",
        [name, version],
    ).fetchall()
    return [Segment(*row) for row in rows]


def delete_rows(con: duckdb.DuckDBPyConnection, name: str, where: str, params: list[Any]) -> set[str]:
    """Delete the ``versions``/``segments`` rows of ``name`` matching ``where``; returns the chunks they used."""
    candidates = {row[0] for row in con.execute(f"SELECT DISTINCT chunk FROM segments WHERE dataset = ? AND {where}", [name, *params]).fetchall()}
    for table in ("segments", "versions"):
        con.execute(f"DELETE FROM {table} WHERE dataset = ? AND {where}", [name, *params])
    return candidates


def referenced_chunks(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Every chunk some version of some dataset refers to."""
    return {row[0] for row in con.execute("SELECT DISTINCT chunk FROM segments").fetchall()}


def children_of(con: duckdb.DuckDBPyConnection, name: str, version: str) -> list[str]:
    """The versions of ``name`` derived from ``version``, oldest first."""
    sql = "SELECT version FROM versions WHERE dataset = ? AND list_contains(parents, ?) ORDER BY major, minor"
    return [row[0] for row in con.execute(sql, [name, version]).fetchall()]


def latest_version(con: duckdb.DuckDBPyConnection, name: str) -> str | None:
    """The highest version ``name`` has, or None when it has none."""
    row = con.execute("SELECT version FROM versions WHERE dataset = ? ORDER BY major DESC, minor DESC LIMIT 1", [name]).fetchone()
    return row[0] if row else None
