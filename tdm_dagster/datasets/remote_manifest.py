"""The manifest a dataset version travels with (``datasets/<name>/<version>.json`` on a remote).

Push builds it from the catalog (:func:`build_manifest`); pull trusts nothing in it
(:func:`parse_manifest`). A manifest's seal proves it is intact, not that its writer meant
well, and every field becomes a local path, a catalog row or an allocation: so each is
checked as strictly as local input before anything is received or read. Names and
versions by :mod:`~tdm_dagster.datasets.names`, metrics and operation as strict JSON
(no NaN or infinities, which no JSON reader could read back), checksums and object ids as
sha256 hex, segments as non-empty row ranges whose lengths add up to the record count.
Whether each range lies inside its object is checked against the object's own row count
once it is here (:func:`~tdm_dagster.datasets.manifest.load_placement`).
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, fields
from datetime import datetime
from typing import Any

from tdm_dagster.datasets.catalog import DatasetInfo, Segment, VersionInfo
from tdm_dagster.datasets.names import name_problem, shown, version_problem
from tdm_dagster.records.strict_json import value_problem
from tdm_dagster.storage.remote import OBJECT_ID

MANIFEST_KIND = "tdm.dataset_version/1"
DATASET_KEYS = ("description", "owner", "tags", "spec", "created_at")


_REQUIRED_VERSION_KEYS = tuple(f.name for f in fields(VersionInfo) if f.default is MISSING and f.default_factory is MISSING)
_OPTIONAL_VERSION_KEYS = tuple(f.name for f in fields(VersionInfo) if f.name not in _REQUIRED_VERSION_KEYS)
"""``operation`` is newer than the first manifests: one without it is still a manifest."""


class ManifestFieldError(ValueError):
    """A field of a pulled manifest that is not what a version's manifest holds; the message names it."""


@dataclass(frozen=True)
class PulledVersion:
    """A manifest's parts, every field checked."""

    dataset: dict[str, Any]
    """The dataset's row (``DATASET_KEYS``), used if the dataset is new here."""
    info: VersionInfo
    segments: list[Segment]
    sizes: dict[str, int]
    """Object id -> its size in bytes."""
    parent_checksums: dict[str, str]
    """Parent version -> its checksum, as the pushing side held it (empty in manifests
    written before this was recorded)."""


def build_manifest(dataset: DatasetInfo, info: VersionInfo, segments: list[Segment], sizes: dict[str, int], parents: dict[str, str]) -> dict[str, Any]:
    """The manifest of ``info``; ``parents`` maps each parent version to its checksum."""
    return {
        "kind": MANIFEST_KIND,
        "dataset": {key: value for key, value in asdict(dataset).items() if key != "current_version"},
        "version": asdict(info),
        "segments": [[s.chunk, s.start, s.stop] for s in segments],
        "objects": sizes,
        "parent_checksums": parents,
    }


def parse_manifest(manifest: Any, name: str, version: str) -> PulledVersion:
    """``manifest`` as the version ``name`` ``version``; ``ManifestFieldError`` names the first bad field."""
    _require(isinstance(manifest, dict) and manifest.get("kind") == MANIFEST_KIND, "kind", f"not {MANIFEST_KIND!r}")
    dataset = _mapping(manifest, "dataset", DATASET_KEYS, optional=("name", "current_version"))
    for key in ("description", "owner", "created_at"):
        _text(dataset[key], f"dataset.{key}")
    _require(isinstance(dataset["tags"], list), "dataset.tags", "not a list")
    for position, tag in enumerate(dataset["tags"]):
        _text(tag, f"dataset.tags[{position}]")
    _require(dataset["spec"] is None or name_problem(dataset["spec"]) is None, "dataset.spec", f"{shown(dataset['spec'])} is not a spec name")
    _timestamp(dataset["created_at"], "dataset.created_at")

    _require(dataset.get("name", name) == name, "dataset.name", f"{shown(dataset.get('name'))} is not {name}")
    info = _version_info(_mapping(manifest, "version", _REQUIRED_VERSION_KEYS, optional=_OPTIONAL_VERSION_KEYS), name, version)
    sizes = _objects(manifest.get("objects"))
    segments = _segments(manifest.get("segments"), sizes, info.record_count)
    parents = manifest.get("parent_checksums", {})
    _require(isinstance(parents, dict), "parent_checksums", "not a mapping")
    for parent, checksum in parents.items():
        _require(parent in info.parents, f"parent_checksums.{shown(parent)}", "not a parent of the version")
        _checksum(checksum, f"parent_checksums.{parent}")
    return PulledVersion({key: dataset[key] for key in DATASET_KEYS}, info, segments, sizes, dict(parents))


def _version_info(fields_: dict[str, Any], name: str, version: str) -> VersionInfo:
    _require(fields_["dataset"] == name and fields_["version"] == version, "version.dataset and version.version", f"not {name} {version}")
    parents = fields_["parents"]
    _require(isinstance(parents, list) and len(set(map(str, parents))) == len(parents), "version.parents", "not a list of distinct versions")
    for position, parent in enumerate(parents):
        _require(version_problem(parent) is None and parent != version, f"version.parents[{position}]", f"{shown(parent)} is not another version (MAJOR.MINOR)")
    for key in ("creator", "description", "created_at"):
        _text(fields_[key], f"version.{key}")
    _timestamp(fields_["created_at"], "version.created_at")
    count = fields_["record_count"]
    _require(type(count) is int and count >= 0, "version.record_count", f"{shown(count)} is not a record count")
    _checksum(fields_["checksum"], "version.checksum")
    fields_ = {"operation": {}, **fields_}
    for key in ("metrics", "operation"):
        _require(isinstance(fields_[key], dict), f"version.{key}", "not a mapping")
        problem = value_problem(fields_[key])
        _require(problem is None, f"version.{key}" + (f".{problem.field}" if problem and problem.field else ""), problem.message if problem else "")
    _require(isinstance(fields_["source_batches"], list), "version.source_batches", "not a list")
    for position, batch in enumerate(fields_["source_batches"]):
        _text(batch, f"version.source_batches[{position}]")
    return VersionInfo(**fields_)


def _objects(objects: Any) -> dict[str, int]:
    _require(isinstance(objects, dict), "objects", "not a mapping")
    for chunk, size in objects.items():
        _require(_is_sha256(chunk), "objects", f"{shown(chunk)} is not an object id (sha256 hex)")
        _require(type(size) is int and size > 0, f"objects.{chunk}", f"{shown(size)} is not a size in bytes")
    return dict(objects)


def _segments(segments: Any, sizes: dict[str, int], record_count: int) -> list[Segment]:
    _require(isinstance(segments, list), "segments", "not a list")
    parsed = []
    for position, segment in enumerate(segments):
        where = f"segments[{position}]"
        _require(isinstance(segment, list) and len(segment) == 3, where, "not [object id, start, stop]")
        chunk, start, stop = segment
        _require(chunk in sizes, where, f"names {shown(chunk)}, which is not among the manifest's objects")
        _require(type(start) is int and type(stop) is int and 0 <= start < stop, where, f"[{start}, {stop}) is not a row range")
        parsed.append(Segment(chunk, start, stop))
    total = sum(s.stop - s.start for s in parsed)
    _require(total == record_count, "segments", f"hold {total} records, the version {record_count}")
    _require(set(sizes) == {s.chunk for s in parsed}, "objects", "name an object no segment uses")
    return parsed


def _mapping(parent: dict[str, Any], key: str, keys: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    value = parent.get(key)
    _require(isinstance(value, dict), key, "not a mapping")
    missing, extra = set(keys) - set(value), set(value) - set(keys) - set(optional)
    _require(not missing and not extra, key, f"missing {sorted(missing)}" if missing else f"unknown keys {sorted(map(str, extra))}")
    return value


def _text(value: Any, where: str) -> None:
    _require(isinstance(value, str) and value_problem(value) is None, where, f"{shown(value)} is not text")


def _timestamp(value: str, where: str) -> None:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise ManifestFieldError(f"{where}: {shown(value)} is not an ISO 8601 timestamp") from None


def _checksum(value: Any, where: str) -> None:
    _require(_is_sha256(value), where, f"{shown(value)} is not a sha256 checksum")


def _is_sha256(value: Any) -> bool:
    return isinstance(value, str) and OBJECT_ID.fullmatch(value) is not None


def _require(condition: object, where: str, problem: str) -> None:
    """Not ``assert``, which ``python -O`` removes."""
    if not condition:
        raise ManifestFieldError(f"{where}: {problem}")
