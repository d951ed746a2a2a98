"""The dataset registry: named datasets with immutable ``major.minor`` versions.

Catalog in DuckDB (``$TDM_HOME/datasets/catalog.duckdb``), records in content-addressed
Parquet chunks (``$TDM_HOME/datasets/objects/``). A version is a manifest of chunk
segments plus a checksum over its ordered record hashes, so a new version stores only
records no earlier chunk holds, and any read re-checks every object it touches and the
version checksum before serving a single record.

Versions are never changed once written and never deleted implicitly: ``rollback``
only moves the dataset's ``current`` pointer.

Concurrency: every change to a dataset (new version, rollback, delete) holds that
dataset's lock (``datasets/locks/<name>.lock``) while it reads the version it builds on
and commits, so two writers never build on the same parent and lose one another's
records. The heavy part of a new version (hashing, writing chunks) runs before the
lock; if the parent moved meanwhile the version is rebuilt on the new parent under the
lock. Removing chunks holds the object store's lock exclusively, and a commit holds it
shared from checking that every chunk it refers to exists until the catalog commit, so
no version is ever committed with a chunk missing.
"""

from __future__ import annotations

import gc
import getpass
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from tdm_dagster.files.atomic import read_jsonl
from tdm_dagster.datasets.catalog import (
    DATASET_COLUMNS,
    VERSION_COLUMNS,
    DatasetInfo,
    Segment,
    VersionInfo,
    connect,
    dataset_from_row,
    version_from_row,
)
from tdm_dagster.datasets.diff import VersionDiff, diff_records
from tdm_dagster.datasets.errors import (
    CorruptObjectError,
    DatasetExistsError,
    DatasetNotFoundError,
    DeletionRefusedError,
    IntegrityError,
    VersionExistsError,
    VersionNotFoundError,
)
from tdm_dagster.datasets.locks import file_lock
from tdm_dagster.datasets.manifest import Placement, load_placement
from tdm_dagster.datasets.names import check_name, check_version, parse_version
from tdm_dagster.datasets.records import Record, canonical_json, sha256_digest
from tdm_dagster.datasets.splits import DEFAULT_RATIOS, SplitResult, assign_splits
from tdm_dagster.datasets.steps import Step
from tdm_dagster.datasets.store import CHUNK_ROWS, ObjectStore, digest_matrix
from tdm_dagster.home import TdmHome


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    versions: int
    objects: int
    records: int
    bytes: int
    problems: list[str] = field(default_factory=list)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic GC while decoding: JSON yields no cycles, and collections triggered by the
    hundreds of thousands of new containers would rescan every live record (about 40% of checkout time)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _immutable(name: str, version: str) -> VersionExistsError:
    return VersionExistsError(f"dataset {name!r} version {version} already exists; versions are immutable")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _context(name: str, version: str) -> str:
    return f"dataset {name!r} version {version}"


class DatasetRegistry:
    def __init__(self, home: TdmHome | None = None) -> None:
        self.root = (home or TdmHome.from_env()).root / "datasets"
        self.catalog_path = self.root / "catalog.duckdb"
        self.store = ObjectStore(self.root / "objects")

    # -- datasets ---------------------------------------------------------------------------

    def create(
        self, name: str, *, description: str = "", owner: str | None = None, tags: Sequence[str] = (), spec: str | None = None,
        exist_ok: bool = False,
    ) -> DatasetInfo:
        """A new, empty dataset; with ``exist_ok`` an existing one is returned as it is (two
        processes that both create it on first use both go on, neither fails)."""
        check_name(name)
        with connect(self.catalog_path) as con:
            try:
                con.execute(
                    f"INSERT INTO datasets ({DATASET_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, NULL)",
                    [name, description, owner or getpass.getuser(), list(tags), spec, _now()],
                )
            except duckdb.ConstraintException:
                if not exist_ok:
                    raise DatasetExistsError(f"dataset {name!r} already exists") from None
            return self._dataset(con, name)

    def list_datasets(self) -> list[DatasetInfo]:
        with connect(self.catalog_path) as con:
            rows = con.execute(f"SELECT {DATASET_COLUMNS} FROM datasets ORDER BY name").fetchall()
        return [dataset_from_row(row) for row in rows]

    def describe(self, name: str) -> DatasetInfo:
        with connect(self.catalog_path) as con:
            return self._dataset(con, name)

    def versions(self, name: str) -> list[VersionInfo]:
        with connect(self.catalog_path) as con:
            self._dataset(con, name)
            rows = con.execute(
                f"SELECT {VERSION_COLUMNS} FROM versions WHERE dataset = ? ORDER BY major, minor", [name]
            ).fetchall()
        return [version_from_row(row) for row in rows]

    def version_info(self, name: str, version: str | None = None) -> VersionInfo:
        """``version`` of ``name``; None means the current version."""
        with connect(self.catalog_path) as con:
            return self._version(con, name, version)

    # -- writing versions -------------------------------------------------------------------

    def append(
        self,
        name: str,
        records: Iterable[Record],
        *,
        source_batches: Sequence[str] = (),
        description: str = "",
        creator: str | None = None,
        metrics: Mapping[str, Any] | None = None,
        major: bool = False,
        version: str | None = None,
        parent: str | None = None,
    ) -> VersionInfo:
        """New version = ``parent`` (default: current) + ``records``; only unseen content is stored.

        The new version's ``source_batches`` are its parent's plus ``source_batches``.
        """
        check_name(name)
        staged = _StagedRecords.of(list(records))

        def build(base_info: VersionInfo | None) -> _Build:
            return self._appended(name, base_info, staged, source_batches)

        return self._write_version(name, parent, version, major, build, creator=creator, description=description, metrics=metrics)

    def append_new_batches(
        self,
        name: str,
        batches: Mapping[str, Sequence[Record]],
        *,
        description: str = "",
        creator: str | None = None,
        metrics: Mapping[str, Any] | None = None,
    ) -> VersionInfo | None:
        """One new version with each batch (id: records) the current version does not hold yet.

        Which batches are new is decided again under the dataset's lock, so two
        processes appending the same approved batches (say, two runs of the dataset
        asset) add each batch once. None when the current version holds them all.
        """
        check_name(name)
        staged = {batch: _StagedRecords.of(list(records)) for batch, records in batches.items()}

        def build(base_info: VersionInfo | None) -> _Build:
            held = set(base_info.source_batches if base_info else ())
            new = [batch for batch in staged if batch not in held]
            if not new:
                raise _NothingNew
            return self._appended(name, base_info, _StagedRecords.concatenate([staged[batch] for batch in new]), new)

        try:
            return self._write_version(name, None, None, False, build, creator=creator, description=description, metrics=metrics)
        except _NothingNew:
            return None

    def _appended(self, name: str, base_info: VersionInfo | None, staged: _StagedRecords, new_batches: Sequence[str]) -> _Build:
        """``base_info`` (None: nothing) followed by the staged records."""
        base = self._placement(name, base_info) if base_info else Placement.empty()
        added = self._place(staged, base)
        return _Build(
            Placement.concatenate([base, added]),
            [*(base_info.source_batches if base_info else ()), *new_batches],
            {"op": "append", "records": len(added), "new_batches": list(new_batches)},
        )

    def append_batch_files(self, name: str, paths: Sequence[str | Path], **options: Any) -> VersionInfo:
        """Append approved batch files (JSONL of chat records, e.g. from the queue); batch id = file stem."""
        records = [record for path in paths for record in read_jsonl(path)]
        batches = [*options.pop("source_batches", ()), *(Path(path).stem for path in paths)]
        return self.append(name, records, source_batches=batches, **options)

    def derive(
        self,
        name: str,
        steps: Sequence[Step],
        *,
        parent: str | None = None,
        description: str = "",
        creator: str | None = None,
        metrics: Mapping[str, Any] | None = None,
        major: bool = False,
        version: str | None = None,
    ) -> VersionInfo:
        """New version = ``steps`` applied in order to ``parent`` (default: current); reports kept."""

        def build(base_info: VersionInfo | None) -> _Build:
            if base_info is None:
                raise VersionNotFoundError(f"dataset {name!r} has no version to derive from")
            records = list(self.records(name, base_info.version))
            reports = []
            for step in steps:
                records, report = step.apply(records)
                reports.append(report)
            placement = self._place(_StagedRecords.of(records), self._placement(name, base_info))
            return _Build(placement, base_info.source_batches, {"op": "derive", "steps": reports})

        return self._write_version(name, parent, version, major, build, creator=creator, description=description, metrics=metrics)

    def _write_version(
        self, name: str, parent: str | None, version: str | None, major: bool,
        build: Callable[[VersionInfo | None], _Build], **details: Any,
    ) -> VersionInfo:
        """Build the new version outside the dataset's lock, commit it under the lock.

        Committed only if, under the lock, the version it was built on is still the one
        to build on and every chunk it refers to exists (a concurrent delete may have
        collected one); otherwise it is rebuilt and committed with the locks held
        throughout, so it lands on the new parent and nothing is lost.
        """
        base = self._base(name, parent, version)
        try:
            built: _Build | None = build(base)
        except (IntegrityError, VersionNotFoundError):
            built = None  # its parent was deleted while being read; under the lock that cannot happen
        with self._dataset_lock(name), self._objects_lock(shared=True):
            if built is not None and self._base(name, parent, version) == base and self._all_stored(built.placement):
                return self._commit(name, built, base, version, major, **details)
            base = self._base(name, parent, version)
            return self._commit(name, build(base), base, version, major, **details)

    def _base(self, name: str, parent: str | None, new_version: str | None) -> VersionInfo | None:
        """The version to build on (None for a first version); refuses an existing ``new_version`` early."""
        with connect(self.catalog_path) as con:
            dataset = self._dataset(con, name)
            if new_version is not None:
                check_version(new_version)
                if con.execute("SELECT 1 FROM versions WHERE dataset = ? AND version = ?", [name, new_version]).fetchone():
                    raise _immutable(name, new_version)
            if parent is None and dataset.current_version is None:
                return None
            return self._version(con, name, parent)

    def _place(self, staged: _StagedRecords, known: Placement) -> Placement:
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
            chunks.append(self.store.write_chunk([sha256_digest(text) for text in part], part)[0])
        is_new, known_position = found < 0, found[found >= 0]
        chunk_index = np.empty(len(texts), np.int32)
        rows = np.empty(len(texts), np.int32)
        chunk_index[~is_new], rows[~is_new] = known.chunk_index[known_position], known.rows[known_position]
        chunk_index[is_new] = len(known.chunks) + new_position[is_new] // CHUNK_ROWS
        rows[is_new] = new_position[is_new] % CHUNK_ROWS
        return Placement([*known.chunks, *chunks], chunk_index, rows, digests)

    def _all_stored(self, placement: Placement) -> bool:
        return all(self.store.path(chunk).exists() for chunk in placement.chunks)

    def _commit(
        self, name: str, built: _Build, base: VersionInfo | None, version: str | None, major: bool,
        *, creator: str | None, description: str, metrics: Mapping[str, Any] | None,
    ) -> VersionInfo:
        """Insert the version, its manifest and the new current pointer in one catalog transaction."""
        placement = built.placement
        with connect(self.catalog_path) as con:
            existing = [tuple(row) for row in con.execute("SELECT major, minor FROM versions WHERE dataset = ?", [name]).fetchall()]
            number = version or _next_version(existing, base.version if base else None, major)
            major_number, minor_number = parse_version(number)
            if (major_number, minor_number) in existing:
                raise _immutable(name, number)
            segments = placement.segments()
            try:
                with _transaction(con):
                    con.execute(
                    f"INSERT INTO versions (major, minor, {VERSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [
                            major_number, minor_number, name, number, [base.version] if base else [],
                            creator or getpass.getuser(), description, _now(), len(placement), placement.checksum(),
                            json.dumps(dict(metrics or {})), list(dict.fromkeys(built.source_batches)), json.dumps(built.operation),
                        ],
                    )
                    if segments:
                        con.executemany(
                            "INSERT INTO segments VALUES (?, ?, ?, ?, ?, ?)",
                            [[name, number, seq, s.chunk, s.start, s.stop] for seq, s in enumerate(segments)],
                        )
                    con.execute("UPDATE datasets SET current_version = ? WHERE name = ?", [number, name])
            except duckdb.ConstraintException:
                raise _immutable(name, number) from None
            return self._version(con, name, number)

    def _dataset_lock(self, name: str) -> AbstractContextManager[None]:
        """Serializes every change to ``name``'s versions and current pointer across processes."""
        return file_lock(self.root / "locks" / f"{check_name(name)}.lock")

    def _objects_lock(self, *, shared: bool) -> AbstractContextManager[None]:
        """Exclusive while chunks are removed; shared from a commit's chunk check to its catalog commit."""
        return file_lock(self.store.root / ".gc.lock", shared=shared)

    # -- reading ----------------------------------------------------------------------------

    def records(self, name: str, version: str | None = None) -> Iterator[Record]:
        """The version's records in manifest order (None: current version).

        Every object is checked and the version checksum recomputed *before* the first
        record is yielded; an object changed after that check is caught again on load.
        """
        info = self.version_info(name, version)
        segments = self._segments(name, info.version)
        self._placement(name, info, segments)
        return self._read_segments(segments, _context(name, info.version))

    def _read_segments(self, segments: list[Segment], context: str) -> Iterator[Record]:
        @lru_cache(maxsize=4)
        def chunk_records(chunk: str) -> list[str]:
            return self.store.read_chunk(chunk, ["record"], context)[0].column("record").to_pylist()

        for segment in segments:
            # one JSON array per segment: a single decoder call instead of one per record
            with _gc_paused():
                decoded = json.loads("[" + ",".join(chunk_records(segment.chunk)[segment.start : segment.stop]) + "]")
            yield from decoded

    def _placement(self, name: str, info: VersionInfo, segments: list[Segment] | None = None) -> Placement:
        """The version's placement, with every object and the version checksum verified."""
        context = _context(name, info.version)
        placement, _ = load_placement(self.store, segments if segments is not None else self._segments(name, info.version), context)
        if len(placement) != info.record_count or placement.checksum() != info.checksum:
            raise CorruptObjectError(f"{context}: manifest does not match the version checksum {info.checksum}")
        return placement

    def _segments(self, name: str, version: str) -> list[Segment]:
        with connect(self.catalog_path) as con:
            rows = con.execute(
                "SELECT chunk, start_row, stop_row FROM segments WHERE dataset = ? AND version = ? ORDER BY seq",
                [name, version],
            ).fetchall()
        return [Segment(*row) for row in rows]

    def diff(self, name: str, old_version: str, new_version: str) -> VersionDiff:
        old, new = self.version_info(name, old_version), self.version_info(name, new_version)
        return diff_records(
            name, old.version, new.version, list(self.records(name, old.version)), list(self.records(name, new.version)),
            old.metrics, new.metrics,
        )

    def split(
        self,
        name: str,
        version: str | None = None,
        *,
        ratios: Mapping[str, float] = DEFAULT_RATIOS,
        stratify_by: str | None = None,
        seed: int = 0,
        near_duplicate_threshold: float = 0.8,
    ) -> SplitResult:
        """Deterministic splits of a version; duplicates and near-duplicates never cross splits."""
        return assign_splits(list(self.records(name, version)), ratios, stratify_by, seed, near_duplicate_threshold)

    def verify(self, name: str | None = None, version: str | None = None) -> VerifyReport:
        """Check every object, every record hash and every version checksum (of one dataset/version, or all).

        Holds the object store's lock shared, so no delete runs meanwhile: a version
        deleted half way through the check is never reported as corrupt.
        """
        if version is not None:
            check_version(version)
        with self._objects_lock(shared=True):
            return self._verify(name, version)

    def _verify(self, name: str | None, version: str | None) -> VerifyReport:
        with connect(self.catalog_path) as con:
            query = f"SELECT {VERSION_COLUMNS} FROM versions WHERE (? IS NULL OR dataset = ?) AND (? IS NULL OR version = ?)"
            if name is not None:
                self._dataset(con, name)
            infos = [version_from_row(row) for row in con.execute(query, [name, name, version, version]).fetchall()]
        if name is not None and version is not None and not infos:
            raise VersionNotFoundError(f"dataset {name!r} has no version {version}")
        problems: list[str] = []
        checked_chunks: set[str] = set()
        records = total_bytes = 0
        for info in infos:
            context = _context(info.dataset, info.version)
            try:
                segments = self._segments(info.dataset, info.version)
                self._placement(info.dataset, info, segments)
                for chunk in dict.fromkeys(s.chunk for s in segments).keys() - checked_chunks:
                    checked_chunks.add(chunk)
                    count, size = self._verify_chunk_records(chunk, context)
                    records, total_bytes = records + count, total_bytes + size
            except IntegrityError as error:
                problems.append(str(error))
        return VerifyReport(not problems, len(infos), len(checked_chunks), records, total_bytes, problems)

    def _verify_chunk_records(self, chunk: str, context: str) -> tuple[int, int]:
        """Re-hash every record of a chunk against its stored hash; returns (records, bytes)."""
        table, size = self.store.read_chunk(chunk, ["hash", "record"], context)
        stored = digest_matrix(table.column("hash")).tobytes()
        computed = b"".join(sha256_digest(text) for text in table.column("record").to_pylist())
        if stored != computed:
            raise CorruptObjectError(f"{context}: object {chunk} holds a record whose content does not match its hash")
        return table.num_rows, size

    # -- history ----------------------------------------------------------------------------

    def rollback(self, name: str, version: str) -> DatasetInfo:
        """Make ``version`` current again; later versions stay and can be rolled forward to."""
        check_version(version)
        with self._dataset_lock(name), connect(self.catalog_path) as con:
            self._version(con, name, version)
            con.execute("UPDATE datasets SET current_version = ? WHERE name = ?", [version, name])
            return self._dataset(con, name)

    def delete_version(self, name: str, version: str, *, force: bool = False) -> None:
        """Delete one version; refused for the current version or a parent of another unless ``force``.

        Forcing the current version away makes the latest remaining version current;
        children keep the deleted version in their ``parents`` (lineage is history) and
        stay readable, since every manifest is complete. Chunks no version refers to
        any more are removed.
        """
        check_version(version)
        with self._dataset_lock(name), self._objects_lock(shared=False):
            with connect(self.catalog_path) as con:
                dataset = self._dataset(con, name)
                self._version(con, name, version)
                children = [row[0] for row in con.execute(
                    "SELECT version FROM versions WHERE dataset = ? AND list_contains(parents, ?) ORDER BY major, minor", [name, version]
                ).fetchall()]
                if not force and (dataset.current_version == version or children):
                    why = "it is the current version" if dataset.current_version == version else f"it is the parent of {', '.join(children)}"
                    raise DeletionRefusedError(f"dataset {name!r} version {version}", why)
                with _transaction(con):
                    candidates = self._drop(con, name, "version = ?", [version])
                    if dataset.current_version == version:
                        latest = con.execute(
                            "SELECT version FROM versions WHERE dataset = ? ORDER BY major DESC, minor DESC LIMIT 1", [name]
                        ).fetchone()
                        con.execute("UPDATE datasets SET current_version = ? WHERE name = ?", [latest[0] if latest else None, name])
                self._collect(con, candidates)

    def delete_dataset(self, name: str, *, force: bool = False) -> None:
        """Delete a dataset and its versions; refused while it has versions unless ``force``."""
        with self._dataset_lock(name), self._objects_lock(shared=False):
            with connect(self.catalog_path) as con:
                self._dataset(con, name)
                count = con.execute("SELECT count(*) FROM versions WHERE dataset = ?", [name]).fetchone()[0]
                if count and not force:
                    raise DeletionRefusedError(f"dataset {name!r}", f"it has {count} versions")
                with _transaction(con):
                    candidates = self._drop(con, name, "TRUE", [])
                    con.execute("DELETE FROM datasets WHERE name = ?", [name])
                self._collect(con, candidates)

    @staticmethod
    def _drop(con: duckdb.DuckDBPyConnection, name: str, where: str, params: list[Any]) -> set[str]:
        """Delete the ``versions``/``segments`` rows of ``name`` matching ``where``; returns the chunks they used."""
        candidates = {row[0] for row in con.execute(f"SELECT DISTINCT chunk FROM segments WHERE dataset = ? AND {where}", [name, *params]).fetchall()}
        for table in ("segments", "versions"):
            con.execute(f"DELETE FROM {table} WHERE dataset = ? AND {where}", [name, *params])
        return candidates

    def _collect(self, con: duckdb.DuckDBPyConnection, candidates: set[str]) -> None:
        """Remove the ``candidates`` no version refers to any more (after the deleting transaction committed).

        Only chunks of the deleted rows are candidates (chunks are shared by content
        across versions and datasets), never every unreferenced file: a chunk another
        process has just written for a version it has not committed yet must survive.
        Should that process have reused one of these chunks, its commit finds it gone
        (under the objects lock) and writes it again before committing.
        """
        referenced = {row[0] for row in con.execute("SELECT DISTINCT chunk FROM segments").fetchall()}
        for chunk in candidates - referenced:
            self.store.remove(chunk)

    # -- catalog lookups --------------------------------------------------------------------

    @staticmethod
    def _dataset(con: duckdb.DuckDBPyConnection, name: str) -> DatasetInfo:
        check_name(name)
        row = con.execute(f"SELECT {DATASET_COLUMNS} FROM datasets WHERE name = ?", [name]).fetchone()
        if row is None:
            raise DatasetNotFoundError(f"no dataset named {name!r}")
        return dataset_from_row(row)

    def _version(self, con: duckdb.DuckDBPyConnection, name: str, version: str | None) -> VersionInfo:
        """``version`` of ``name``; None (never an empty string) means the current version."""
        dataset = self._dataset(con, name)
        wanted = dataset.current_version if version is None else check_version(version)
        if wanted is None:
            raise VersionNotFoundError(f"dataset {name!r} has no versions yet")
        row = con.execute(f"SELECT {VERSION_COLUMNS} FROM versions WHERE dataset = ? AND version = ?", [name, wanted]).fetchone()
        if row is None:
            raise VersionNotFoundError(f"dataset {name!r} has no version {wanted}")
        return version_from_row(row)


@dataclass(frozen=True)
class _StagedRecords:
    """Records as canonical JSON and their hashes: computed once, reused if a commit is rebuilt."""

    texts: list[str]
    digests: np.ndarray  # (n, 32) uint8

    @classmethod
    def of(cls, records: list[Record]) -> _StagedRecords:
        texts = [canonical_json(record) for record in records]
        return cls(texts, np.frombuffer(b"".join(sha256_digest(text) for text in texts), np.uint8).reshape(-1, 32))

    @classmethod
    def concatenate(cls, parts: Sequence[_StagedRecords]) -> _StagedRecords:
        return cls(
            [text for part in parts for text in part.texts],
            np.concatenate([np.empty((0, 32), np.uint8), *(part.digests for part in parts)]),
        )


class _NothingNew(Exception):
    """Raised by a build that finds every batch already in its parent: no version to write."""


@dataclass(frozen=True)
class _Build:
    """A new version ready to commit."""

    placement: Placement
    source_batches: Sequence[str]
    operation: dict[str, Any]


@contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One catalog transaction: every statement in the block lands, or none does."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _next_version(existing: list[tuple[int, int]], base: str | None, major: bool) -> str:
    """First version 1.0; a major bump goes past every major; a minor bump past every minor of the base's major."""
    if not existing:
        return "1.0"
    if major or base is None:
        return f"{max(m for m, _ in existing) + 1}.0"
    base_major = parse_version(base)[0]
    return f"{base_major}.{max(n for m, n in existing if m == base_major) + 1}"
