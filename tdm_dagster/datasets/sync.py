"""Pushing dataset versions to a remote and pulling them back (layout: :mod:`tdm_dagster.storage.remote`).

A version travels as its chunks (the very bytes of the local chunk files, named by their
sha256) and one manifest, ``datasets/<name>/<version>.json``: the version's catalog row,
its segments, the size of each chunk and the dataset's own row.

Push sends the chunks the remote lacks (each local chunk re-hashed first: a damaged one
is never shared), then creates the manifest. Pull receives the chunks this machine lacks
(each re-hashed as it lands), then, holding the dataset's lock, recomputes the version
checksum from the local chunks and commits the version in one catalog transaction. So on
either side a version appears whole or not at all, and running an interrupted push or
pull again moves only what is still missing.

A pulled manifest is distrusted field by field (:mod:`~tdm_dagster.datasets.remote_manifest`)
before anything is received, and a version whose parent is a different version here is
refused: pulling it would graft the remote's history onto this one.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from tdm_dagster.datasets.catalog import Segment, VersionInfo, connect, find_dataset, transaction, version_segments
from tdm_dagster.datasets.commit import insert_version
from tdm_dagster.datasets.errors import CorruptObjectError, DatasetNotFoundError, MissingObjectError, VersionNotFoundError
from tdm_dagster.datasets.names import check_name, check_version, parse_version
from tdm_dagster.datasets.remote_manifest import ManifestFieldError, PulledVersion, build_manifest, parse_manifest
from tdm_dagster.datasets.verify import verified_placement, version_context
from tdm_dagster.progress import BYTES, Bars, no_progress
from tdm_dagster.storage.remote import Remote, RemoteConflictError, RemoteCorruptError, RemoteError, Transfer, file_sha256, remove_stale_downloads

if TYPE_CHECKING:  # the registry imports this module's push (storage.auto_push)
    from tdm_dagster.datasets.registry import DatasetRegistry


def _manifest_path(name: str, version: str) -> str:
    return f"datasets/{name}/{version}.json"


def _conflict(remote: Remote, name: str, version: str, theirs: str, ours: str) -> RemoteConflictError:
    return RemoteConflictError(
        f"{remote.url}: dataset {name!r} version {version} there holds other records (checksum {theirs[:12]}) than "
        f"here ({ours[:12]}); versions are immutable, so neither was replaced"
    )


# -- push ---------------------------------------------------------------------------------------


def push(registry: DatasetRegistry, remote: Remote, name: str, version: str | None = None, progress: Bars = no_progress) -> Transfer:
    """Send ``version`` of ``name`` (None: every version, oldest first) to ``remote``."""
    started = time.monotonic()
    dataset = registry.describe(name)
    infos = [registry.version_info(name, check_version(version))] if version else registry.versions(name)
    if not infos:
        raise VersionNotFoundError(f"dataset {name!r} has no versions to push")
    transfer = Transfer(name, remote.url)
    on_remote = set(remote.manifests(f"datasets/{name}"))
    stored = remote.stored_objects()
    for info in infos:
        path = _manifest_path(name, info.version)
        if path in on_remote:
            theirs = remote.read_manifest(path)
            if theirs is not None:
                _check_same(remote, name, info, theirs)
                transfer.already.append(info.version)
                continue
        with connect(registry.catalog_path) as con:
            segments = version_segments(con, name, info.version)
        sizes = _local_sizes(registry, info, segments)
        missing = [chunk for chunk, size in sizes.items() if stored.get(chunk) != size]
        for chunk in missing:
            if file_sha256(registry.store.path(chunk)) != chunk:
                raise CorruptObjectError(f"{version_context(name, info.version)}: object {chunk} is corrupt here; not pushed (run tdm datasets verify)")
        with progress(f"push {name} {info.version}", sum(sizes[chunk] for chunk in missing), unit=BYTES) as sent:
            transfer.bytes += remote.send([(registry.store.path(chunk), chunk) for chunk in missing], sent)
        stored.update((chunk, sizes[chunk]) for chunk in missing)
        transfer.objects += len(missing)
        transfer.objects_present += len(sizes) - len(missing)
        parents = {parent: _local_checksum(registry, name, parent) for parent in info.parents}
        manifest = build_manifest(dataset, info, segments, sizes, {parent: checksum for parent, checksum in parents.items() if checksum})
        theirs = remote.create_manifest(path, manifest)
        if theirs is not None:  # another push wrote it meanwhile: fine if it is the same version
            _check_same(remote, name, info, theirs)
            transfer.already.append(info.version)
        else:
            transfer.moved.append(info.version)
    transfer.seconds = time.monotonic() - started
    return transfer


def _local_sizes(registry: DatasetRegistry, info: VersionInfo, segments: list[Segment]) -> dict[str, int]:
    sizes = {}
    for chunk in dict.fromkeys(segment.chunk for segment in segments):
        try:
            sizes[chunk] = registry.store.path(chunk).stat().st_size
        except FileNotFoundError:
            raise MissingObjectError(f"{version_context(info.dataset, info.version)}: object {chunk} is missing here; not pushed") from None
    return sizes


def _check_same(remote: Remote, name: str, info: VersionInfo, theirs: dict[str, Any]) -> None:
    checksum = str((theirs.get("version") or {}).get("checksum"))
    if checksum != info.checksum:
        raise _conflict(remote, name, info.version, checksum, info.checksum)


# -- pull ---------------------------------------------------------------------------------------


def pull(registry: DatasetRegistry, remote: Remote, name: str, version: str | None = None, progress: Bars = no_progress) -> Transfer:
    """Receive ``version`` of ``name`` (None: every version the remote has, oldest first).

    Temp files of downloads killed half way (by this pull's predecessors) are removed first."""
    started = time.monotonic()
    check_name(name)
    on_remote = remote_versions(remote, name).get(name, [])
    if not on_remote:
        raise DatasetNotFoundError(f"{remote.url} holds no dataset {name!r}")
    if version is not None and check_version(version) not in on_remote:
        raise VersionNotFoundError(f"{remote.url} holds no version {version} of {name!r} (it has {', '.join(on_remote)})")
    remove_stale_downloads(registry.store.root / "chunks")
    transfer = Transfer(name, remote.url)
    for wanted in [version] if version else on_remote:
        pulled = _read_pulled(remote, name, wanted)
        held = _local_checksum(registry, name, wanted)
        if held is not None:
            if held != pulled.info.checksum:
                raise _conflict(remote, name, wanted, pulled.info.checksum, held)
            transfer.already.append(wanted)
            continue
        lineage = _parent_checksums(remote, name, pulled, on_remote)
        _check_lineage(registry, remote, pulled.info, lineage)  # before receiving anything; again under the lock
        missing = [(chunk, size, registry.store.path(chunk)) for chunk, size in pulled.sizes.items() if not registry.store.path(chunk).exists()]
        with progress(f"pull {name} {wanted}", sum(size for _, size, _ in missing), unit=BYTES) as received:
            transfer.bytes += remote.receive(missing, received)
        transfer.objects += len(missing)
        transfer.objects_present += len(pulled.sizes) - len(missing)
        if _commit_pulled(registry, remote, pulled, lineage):
            transfer.moved.append(wanted)
        else:
            transfer.already.append(wanted)
    transfer.seconds = time.monotonic() - started
    return transfer


def _read_pulled(remote: Remote, name: str, version: str) -> PulledVersion:
    """The remote's manifest of ``version``, every field checked (they become local paths, rows and allocations)."""
    path = _manifest_path(name, version)
    manifest = remote.read_manifest(path)
    if manifest is None:
        raise RemoteError(f"{remote.url}: {path} disappeared while pulling")
    try:
        return parse_manifest(manifest, name, version)
    except ManifestFieldError as error:
        raise RemoteCorruptError(f"{remote.shown(remote.path(path))} is not a manifest of {name} {version} (ValueError: {error})") from None


def _parent_checksums(remote: Remote, name: str, pulled: PulledVersion, on_remote: list[str]) -> dict[str, str | None]:
    """Each parent's checksum as the remote knows it: recorded in the manifest, else its own
    manifest there; None when the remote cannot say."""
    return {
        parent: pulled.parent_checksums.get(parent)
        or (_read_pulled(remote, name, parent).info.checksum if parent in on_remote else None)
        for parent in pulled.info.parents
    }


def _check_lineage(registry: DatasetRegistry, remote: Remote, info: VersionInfo, lineage: dict[str, str | None]) -> None:
    """Refuse a version whose parent is a different version here: it would graft the
    remote's history onto this one (its diffs and ancestry would be about other records)."""
    for parent, theirs in lineage.items():
        ours = _local_checksum(registry, info.dataset, parent)
        if ours is None or ours == theirs:
            continue
        there = f"there it is {theirs[:12]}" if theirs else "the remote cannot say which records it holds"
        raise RemoteConflictError(
            f"{remote.url}: dataset {info.dataset!r} version {info.version} builds on version {parent}, and version {parent} "
            f"here holds other records ({ours[:12]}; {there}); not pulled, so the history here stays as it is"
        )


def _local_checksum(registry: DatasetRegistry, name: str, version: str) -> str | None:
    with connect(registry.catalog_path) as con:
        row = con.execute("SELECT checksum FROM versions WHERE dataset = ? AND version = ?", [name, version]).fetchone()
    return row[0] if row else None


def _commit_pulled(registry: DatasetRegistry, remote: Remote, pulled: PulledVersion, lineage: dict[str, str | None]) -> bool:
    """Commit a received version once its chunks and checksum check out here and its parents
    agree with this history; False if a concurrent pull committed it first. The dataset is
    created (with the remote's description) if missing; its current version moves only forward."""
    info, dataset = pulled.info, pulled.dataset
    with registry._dataset_lock(info.dataset), registry._objects_lock(shared=True):
        verified_placement(registry.store, info, pulled.segments)  # ranges checked, every chunk re-hashed, the checksum recomputed
        held = _local_checksum(registry, info.dataset, info.version)
        if held is not None:
            if held != info.checksum:
                raise CorruptObjectError(f"{version_context(info.dataset, info.version)}: a different version was committed here meanwhile")
            return False
        _check_lineage(registry, remote, info, lineage)
        with connect(registry.catalog_path) as con, transaction(con):
            con.execute(
                "INSERT INTO datasets (name, description, owner, tags, spec, created_at, current_version) "
                "VALUES (?, ?, ?, ?, ?, ?, NULL) ON CONFLICT DO NOTHING",
                [info.dataset, dataset["description"], dataset["owner"], list(dataset["tags"]), dataset["spec"], dataset["created_at"]],
            )
            insert_version(con, info, pulled.segments)
            current = find_dataset(con, info.dataset).current_version
            if current is None or parse_version(info.version) > parse_version(current):
                con.execute("UPDATE datasets SET current_version = ? WHERE name = ?", [info.version, info.dataset])
    return True


# -- listing ------------------------------------------------------------------------------------


def remote_versions(remote: Remote, name: str | None = None) -> dict[str, list[str]]:
    """Dataset name -> its versions on the remote (oldest first); only complete versions (those with a manifest)."""
    found: dict[str, list[str]] = {}
    for path in remote.manifests(f"datasets/{check_name(name)}" if name else "datasets"):
        parts = path.split("/")
        if len(parts) != 3 or not parts[2].endswith(".json"):
            continue
        dataset, version = parts[1], parts[2][: -len(".json")]
        try:
            check_name(dataset), check_version(version)
        except ValueError:
            continue  # not ours
        found.setdefault(dataset, []).append(version)
    return {dataset: sorted(versions, key=parse_version) for dataset, versions in sorted(found.items())}
