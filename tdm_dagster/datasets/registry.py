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

The parts: catalog queries in :mod:`~tdm_dagster.datasets.catalog`, building and committing
a version in :mod:`~tdm_dagster.datasets.commit`, verified reads in :mod:`~tdm_dagster.datasets.verify`.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import duckdb

from tdm_dagster.datasets.catalog import (
    DATASET_COLUMNS,
    VERSION_COLUMNS,
    DatasetInfo,
    Segment,
    VersionInfo,
    children_of,
    connect,
    dataset_from_row,
    delete_rows,
    find_dataset,
    find_version,
    latest_version,
    referenced_chunks,
    transaction,
    utc_now,
    version_from_row,
    version_segments,
)
from tdm_dagster.datasets.commit import BuiltVersion, NothingNew, StagedRecords, commit_version, immutable, place
from tdm_dagster.datasets.diff import VersionDiff, diff_records
from tdm_dagster.datasets.errors import DatasetExistsError, DeletionRefusedError, EmptyDeriveError, IntegrityError, NothingChangedError, VersionNotFoundError  # fmt: skip
from tdm_dagster.datasets.additions import only_new
from tdm_dagster.datasets.locks import file_lock
from tdm_dagster.datasets.manifest import Placement
from tdm_dagster.datasets.names import check_name, check_version
from tdm_dagster.datasets.records import Record
from tdm_dagster.datasets.splits import DEFAULT_RATIOS, SplitResult, assign_splits
from tdm_dagster.datasets.steps import Step, apply_steps
from tdm_dagster.datasets.store import ObjectStore
from tdm_dagster.datasets.verify import VerifyReport, read_segments, verified_placement, verify_versions, version_context
from tdm_dagster.datasets.auto_push import push_if_configured
from tdm_dagster.files.atomic import read_jsonl
from tdm_dagster.home import TdmHome


class DatasetRegistry:
    def __init__(self, home: TdmHome | None = None) -> None:
        self.home = home or TdmHome.from_env()
        self.root = self.home.datasets_dir
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
                    [name, description, owner or getpass.getuser(), list(tags), spec, utc_now()],
                )
            except duckdb.ConstraintException:
                if not exist_ok:
                    raise DatasetExistsError(f"dataset {name!r} already exists") from None
            return find_dataset(con, name)

    def list_datasets(self) -> list[DatasetInfo]:
        with connect(self.catalog_path) as con:
            rows = con.execute(f"SELECT {DATASET_COLUMNS} FROM datasets ORDER BY name").fetchall()
        return [dataset_from_row(row) for row in rows]

    def describe(self, name: str) -> DatasetInfo:
        with connect(self.catalog_path) as con:
            return find_dataset(con, name)

    def versions(self, name: str) -> list[VersionInfo]:
        with connect(self.catalog_path) as con:
            find_dataset(con, name)
            rows = con.execute(
                f"SELECT {VERSION_COLUMNS} FROM versions WHERE dataset = ? ORDER BY major, minor", [name]
            ).fetchall()
        return [version_from_row(row) for row in rows]

    def version_info(self, name: str, version: str | None = None) -> VersionInfo:
        """``version`` of ``name``; None means the current version."""
        with connect(self.catalog_path) as con:
            return find_version(con, name, version)

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
        files: Sequence[Mapping[str, Any]] | None = None,
    ) -> VersionInfo:
        """New version = ``parent`` (default: current) + ``records``; only unseen content is stored.

        ``source_batches`` adds to the parent's. With ``files`` (``additions.file_entry`` of
        each file read), nothing already added is appended again (``additions.only_new``)."""
        check_name(name)
        staged = StagedRecords.of(list(records))

        def build(base_info: VersionInfo | None) -> BuiltVersion:
            return self._appended(name, base_info, staged, source_batches, files)

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
        staged = {batch: StagedRecords.of(list(records)) for batch, records in batches.items()}

        def build(base_info: VersionInfo | None) -> BuiltVersion:
            held = set(base_info.source_batches if base_info else ())
            new = [batch for batch in staged if batch not in held]
            if not new:
                raise NothingNew
            return self._appended(name, base_info, StagedRecords.concatenate([staged[batch] for batch in new]), new)

        try:
            return self._write_version(name, None, None, False, build, creator=creator, description=description, metrics=metrics)
        except NothingNew:
            return None

    def _appended(self, name: str, base_info: VersionInfo | None, staged: StagedRecords, new_batches: Sequence[str], files: Any = None) -> BuiltVersion:
        """``base_info`` (None: nothing) followed by the staged records (with ``files``: the new ones)."""
        base = self._placement(name, base_info) if base_info else Placement.empty()
        staged, added_from = only_new(self.version_info, name, base_info, base, staged, files) if files is not None else (staged, {})
        added = self._place(staged, base)
        return BuiltVersion(
            Placement.concatenate([base, added]),
            [*(base_info.source_batches if base_info else ()), *new_batches],
            {"op": "append", "records": len(added), "new_batches": list(new_batches), **added_from},
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
        allow_empty: bool = False,
    ) -> VersionInfo:
        """New version = ``steps`` applied in order to ``parent`` (default: current); reports kept.
        ``NothingChangedError`` (and no version) when the steps leave the records as they were;
        ``EmptyDeriveError`` when they leave none, unless ``allow_empty``."""

        def build(base_info: VersionInfo | None) -> BuiltVersion:
            if base_info is None:
                raise VersionNotFoundError(f"dataset {name!r} has no version to derive from")
            records, reports = apply_steps(steps, list(self.records(name, base_info.version)))
            if not records and not allow_empty and base_info.record_count:
                raise EmptyDeriveError(name, base_info.version, reports)
            placement = self._place(StagedRecords.of(records), self._placement(name, base_info))
            if placement.checksum() == base_info.checksum:
                raise NothingChangedError(name, base_info.version, reports)
            return BuiltVersion(placement, base_info.source_batches, {"op": "derive", "steps": reports})

        return self._write_version(name, parent, version, major, build, creator=creator, description=description, metrics=metrics)

    def _write_version(
        self, name: str, parent: str | None, version: str | None, major: bool,
        build: Callable[[VersionInfo | None], BuiltVersion], **details: Any,
    ) -> VersionInfo:
        """Build the new version outside the dataset's lock, commit it under the lock.

        Committed only if, under the lock, the version it was built on is still the one
        to build on and every chunk it refers to exists (a concurrent delete may have
        collected one); otherwise it is rebuilt and committed with the locks held
        throughout, so it lands on the new parent and nothing is lost.
        """
        base = self._base(name, parent, version)
        try:
            built: BuiltVersion | None = build(base)
        except (IntegrityError, VersionNotFoundError):
            built = None  # its parent was deleted while being read; under the lock that cannot happen
        with self._dataset_lock(name), self._objects_lock(shared=True):
            if built is None or self._base(name, parent, version) != base or not self._all_stored(built.placement):
                base = self._base(name, parent, version)
                built = build(base)
            info = commit_version(self.catalog_path, name, built, base, version, major, **details)
        push_if_configured(self.home, self, name, info.version)  # storage.auto_push, after the lock
        return info

    def _base(self, name: str, parent: str | None, new_version: str | None) -> VersionInfo | None:
        """The version to build on (None for a first version); refuses an existing ``new_version`` early."""
        with connect(self.catalog_path) as con:
            dataset = find_dataset(con, name)
            if new_version is not None:
                check_version(new_version)
                if con.execute("SELECT 1 FROM versions WHERE dataset = ? AND version = ?", [name, new_version]).fetchone():
                    raise immutable(name, new_version)
            if parent is None and dataset.current_version is None:
                return None
            return find_version(con, name, parent)

    def _place(self, staged: StagedRecords, known: Placement) -> Placement:
        """Place records in this registry's object store (see :func:`~tdm_dagster.datasets.commit.place`)."""
        return place(self.store, staged, known)

    def _all_stored(self, placement: Placement) -> bool:
        return all(self.store.path(chunk).exists() for chunk in placement.chunks)

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
        return read_segments(self.store, segments, version_context(name, info.version))

    def _placement(self, name: str, info: VersionInfo, segments: list[Segment] | None = None) -> Placement:
        """The version's placement, with every object and the version checksum verified."""
        return verified_placement(self.store, info, segments if segments is not None else self._segments(name, info.version))

    def _segments(self, name: str, version: str) -> list[Segment]:
        with connect(self.catalog_path) as con:
            return version_segments(con, name, version)

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
                find_dataset(con, name)
            infos = [version_from_row(row) for row in con.execute(query, [name, name, version, version]).fetchall()]
        if name is not None and version is not None and not infos:
            raise VersionNotFoundError(f"dataset {name!r} has no version {version}")
        return verify_versions(self.store, self.catalog_path, infos)

    # -- history ----------------------------------------------------------------------------

    def rollback(self, name: str, version: str) -> DatasetInfo:
        """Make ``version`` current again; later versions stay and can be rolled forward to."""
        check_version(version)
        with self._dataset_lock(name), connect(self.catalog_path) as con:
            find_version(con, name, version)
            con.execute("UPDATE datasets SET current_version = ? WHERE name = ?", [version, name])
            return find_dataset(con, name)

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
                dataset = find_dataset(con, name)
                find_version(con, name, version)
                children = children_of(con, name, version)
                if not force and (dataset.current_version == version or children):
                    why = "it is the current version" if dataset.current_version == version else f"it is the parent of {', '.join(children)}"
                    raise DeletionRefusedError(f"dataset {name!r} version {version}", why)
                with transaction(con):
                    candidates = delete_rows(con, name, "version = ?", [version])
                    if dataset.current_version == version:
                        con.execute("UPDATE datasets SET current_version = ? WHERE name = ?", [latest_version(con, name), name])
                self._collect(con, candidates)

    def delete_dataset(self, name: str, *, force: bool = False) -> None:
        """Delete a dataset and its versions; refused while it has versions unless ``force``."""
        with self._dataset_lock(name), self._objects_lock(shared=False):
            with connect(self.catalog_path) as con:
                find_dataset(con, name)
                count = con.execute("SELECT count(*) FROM versions WHERE dataset = ?", [name]).fetchone()[0]
                if count and not force:
                    raise DeletionRefusedError(f"dataset {name!r}", f"it has {count} versions")
                with transaction(con):
                    candidates = delete_rows(con, name, "TRUE", [])
                    con.execute("DELETE FROM datasets WHERE name = ?", [name])
                self._collect(con, candidates)

    def _collect(self, con: duckdb.DuckDBPyConnection, candidates: set[str]) -> None:
        """Remove the ``candidates`` no version refers to any more (after the deleting transaction committed).

        Only chunks of the deleted rows are candidates (chunks are shared by content
        across versions and datasets), never every unreferenced file: a chunk another
        process has just written for a version it has not committed yet must survive.
        Should that process have reused one of these chunks, its commit finds it gone
        (under the objects lock) and writes it again before committing.
        """
        for chunk in candidates - referenced_chunks(con):
            self.store.remove(chunk)
