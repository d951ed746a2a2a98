"""What ``add`` and ``import`` append: never a file or a record the dataset holds already.

A version made from files records each file's sha256 (``operation.files``). Adding a
file whose checksum a version in the new version's lineage (its parent, the parent's
parent...) recorded is refused, naming that version; of any other file, records the
parent already holds (same canonical JSON) are left out and counted
(``operation.already_present``), and a file with nothing new is refused. So running
the same ``add`` twice, or adding an overlapping export, never duplicates records.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tdm_dagster.datasets.commit import StagedRecords
from tdm_dagster.datasets.errors import AlreadyAddedError, VersionNotFoundError

if TYPE_CHECKING:
    from tdm_dagster.datasets.catalog import VersionInfo
    from tdm_dagster.datasets.manifest import Placement

VersionLookup = Callable[[str, str], "VersionInfo"]
"""``(dataset, version) -> VersionInfo``, e.g. ``DatasetRegistry.version_info``."""


def file_entry(path: str | os.PathLike[str], records: int) -> dict[str, Any]:
    """What a version keeps of a file it was made from: its name, sha256 and records read."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"file": Path(path).name, "sha256": digest.hexdigest(), "records": records}


def _lineage(version_info: VersionLookup, name: str, info: VersionInfo | None) -> Iterator[VersionInfo]:
    seen: set[str] = set()
    while info is not None and info.version not in seen:
        seen.add(info.version)
        yield info
        try:
            info = version_info(name, info.parents[0]) if info.parents else None
        except VersionNotFoundError:  # a deleted ancestor ends the lineage we can see
            info = None


def only_new(
    version_info: VersionLookup, name: str, base_info: VersionInfo | None, base: Placement, staged: StagedRecords,
    files: Sequence[Mapping[str, Any]],
) -> tuple[StagedRecords, dict[str, Any]]:
    """The staged records the parent does not hold, and what the version records about it;
    raises ``AlreadyAddedError`` for a file added before or when nothing is new."""
    wanted = {entry["sha256"]: entry["file"] for entry in files}
    for info in _lineage(version_info, name, base_info):
        for entry in info.operation.get("files", []):
            if entry.get("sha256") in wanted:
                raise AlreadyAddedError(
                    f"{wanted[entry['sha256']]} (sha256 {entry['sha256'][:16]}) is already in {name}: version {info.version} "
                    f"added it as {entry['file']}; nothing added"
                )
    new = np.flatnonzero(base.find(staged.digests) < 0)
    if staged.texts and not new.size:
        where = f"{name} {base_info.version}" if base_info else name
        raise AlreadyAddedError(f"every one of the {len(staged.texts)} records is already in {where}: nothing added")
    kept = StagedRecords([staged.texts[i] for i in new], staged.digests[new])
    return kept, {"files": list(files), "already_present": len(staged.texts) - int(new.size)}
