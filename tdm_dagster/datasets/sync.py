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
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from tdm_dagster.datasets.catalog import DatasetInfo, Segment, VersionInfo, connect, find_dataset, transaction, version_segments
from tdm_dagster.datasets.commit import insert_version
from tdm_dagster.datasets.errors import CorruptObjectError, DatasetNotFoundError, MissingObjectError, VersionNotFoundError
from tdm_dagster.datasets.names import check_name, check_version, parse_version
from tdm_dagster.datasets.registry import DatasetRegistry
from tdm_dagster.datasets.verify import verified_placement, version_context
from tdm_dagster.storage.remote import OBJECT_ID, Remote, RemoteConflictError, RemoteCorruptError, RemoteError, Transfer, file_sha256, require

MANIFEST_KIND = "tdm.dataset_version/1"
Progress = Callable[[str], None]


def _manifest_path(name: str, version: str) -> str:
    return f"datasets/{name}/{version}.json"


def _conflict(remote: Remote, name: str, version: str, theirs: str, ours: str) -> RemoteConflictError:
    return RemoteConflictError(
        f"{remote.url}: dataset {name!r} version {version} there holds other records (checksum {theirs[:12]}) than "
        f"here ({ours[:12]}); versions are immutable, so neither was replaced"
    )


# -- push ---------------------------------------------------------------------------------------


def push(registry: DatasetRegistry, remote: Remote, name: str, version: str | None = None, progress: Progress | None = None) -> Transfer:
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
        report = (lambda done, sent: progress(f"{name} {info.version}: sent {done}/{len(missing)} objects, {sent:,} bytes")) if progress else None
        transfer.bytes += remote.send([(registry.store.path(chunk), chunk) for chunk in missing], report)
        stored.update((chunk, sizes[chunk]) for chunk in missing)
        transfer.objects += len(missing)
        transfer.objects_present += len(sizes) - len(missing)
        theirs = remote.create_manifest(path, _manifest(dataset, info, segments, sizes))
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


def _manifest(dataset: DatasetInfo, info: VersionInfo, segments: list[Segment], sizes: dict[str, int]) -> dict[str, Any]:
    return {
        "kind": MANIFEST_KIND,
        "dataset": {key: value for key, value in asdict(dataset).items() if key != "current_version"},
        "version": asdict(info),
        "segments": [[s.chunk, s.start, s.stop] for s in segments],
        "objects": sizes,
    }


def _check_same(remote: Remote, name: str, info: VersionInfo, theirs: dict[str, Any]) -> None:
    checksum = str((theirs.get("version") or {}).get("checksum"))
    if checksum != info.checksum:
        raise _conflict(remote, name, info.version, checksum, info.checksum)


# -- pull ---------------------------------------------------------------------------------------


def pull(registry: DatasetRegistry, remote: Remote, name: str, version: str | None = None, progress: Progress | None = None) -> Transfer:
    """Receive ``version`` of ``name`` (None: every version the remote has, oldest first)."""
    started = time.monotonic()
    check_name(name)
    available = remote_versions(remote, name).get(name, [])
    if not available:
        raise DatasetNotFoundError(f"{remote.url} holds no dataset {name!r}")
    if version is not None:
        if check_version(version) not in available:
            raise VersionNotFoundError(f"{remote.url} holds no version {version} of {name!r} (it has {', '.join(available)})")
        available = [version]
    transfer = Transfer(name, remote.url)
    for wanted in available:
        path = _manifest_path(name, wanted)
        manifest = remote.read_manifest(path)
        if manifest is None:
            raise RemoteError(f"{remote.url}: {path} disappeared while pulling")
        dataset, info, segments, sizes = _parse(remote, path, name, wanted, manifest)
        held = _local_checksum(registry, name, wanted)
        if held is not None:
            if held != info.checksum:
                raise _conflict(remote, name, wanted, info.checksum, held)
            transfer.already.append(wanted)
            continue
        missing = [(chunk, size, registry.store.path(chunk)) for chunk, size in sizes.items() if not registry.store.path(chunk).exists()]
        report = (lambda done, got: progress(f"{name} {wanted}: received {done}/{len(missing)} objects, {got:,} bytes")) if progress else None
        transfer.bytes += remote.receive(missing, report)
        transfer.objects += len(missing)
        transfer.objects_present += len(sizes) - len(missing)
        if _commit_pulled(registry, dataset, info, segments):
            transfer.moved.append(wanted)
        else:
            transfer.already.append(wanted)
    transfer.seconds = time.monotonic() - started
    return transfer


def _parse(remote: Remote, path: str, name: str, version: str, manifest: dict[str, Any]) -> tuple[dict, VersionInfo, list[Segment], dict[str, int]]:
    """The manifest's parts, every name and number checked (they become local paths and rows)."""
    try:
        require(manifest["kind"] == MANIFEST_KIND, "kind")
        info = VersionInfo(**manifest["version"])
        require(info.dataset == name and info.version == version, "dataset and version")
        dataset = {key: manifest["dataset"][key] for key in ("description", "owner", "tags", "spec", "created_at")}
        sizes = {str(chunk): int(size) for chunk, size in manifest["objects"].items()}
        segments = [Segment(str(chunk), int(start), int(stop)) for chunk, start, stop in manifest["segments"]]
        require(all(OBJECT_ID.match(chunk) for chunk in sizes), "object ids")
        require(all(s.chunk in sizes and 0 <= s.start < s.stop for s in segments), "segments")
    except (KeyError, TypeError, ValueError) as error:
        raise RemoteCorruptError(f"{remote.shown(remote.path(path))} is not a manifest of {name} {version} ({type(error).__name__}: {error})") from None
    return dataset, info, segments, sizes


def _local_checksum(registry: DatasetRegistry, name: str, version: str) -> str | None:
    with connect(registry.catalog_path) as con:
        row = con.execute("SELECT checksum FROM versions WHERE dataset = ? AND version = ?", [name, version]).fetchone()
    return row[0] if row else None


def _commit_pulled(registry: DatasetRegistry, dataset: dict[str, Any], info: VersionInfo, segments: list[Segment]) -> bool:
    """Commit a received version once its chunks and checksum check out here; False if a
    concurrent pull committed it first. The dataset is created (with the remote's
    description) if missing; its current version moves only forward."""
    with registry._dataset_lock(info.dataset), registry._objects_lock(shared=True):
        verified_placement(registry.store, info, segments)  # every chunk re-hashed, the checksum recomputed
        held = _local_checksum(registry, info.dataset, info.version)
        if held is not None:
            if held != info.checksum:
                raise CorruptObjectError(f"{version_context(info.dataset, info.version)}: a different version was committed here meanwhile")
            return False
        with connect(registry.catalog_path) as con, transaction(con):
            con.execute(
                "INSERT INTO datasets (name, description, owner, tags, spec, created_at, current_version) "
                "VALUES (?, ?, ?, ?, ?, ?, NULL) ON CONFLICT DO NOTHING",
                [info.dataset, dataset["description"], dataset["owner"], list(dataset["tags"]), dataset["spec"], dataset["created_at"]],
            )
            insert_version(con, info, segments)
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
