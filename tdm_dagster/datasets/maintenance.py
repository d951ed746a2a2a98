"""Scheduled upkeep of the training dataset: de-duplication and export (plain Python).

Both act on the current version of ``dataset.name`` and leave a new version or an
export folder; neither changes an existing version.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tdm_dagster.home import TdmHome

EXPORT_FORMATS = ("jsonl", "hf")


def deduplicate(home: TdmHome, dataset: str, threshold: float = 0.8) -> dict[str, Any]:
    """A new version without exact and near-duplicates (or nothing, if there are none)."""
    from tdm_dagster.datasets import (
        DatasetRegistry,
        DropExactDuplicates,
        DropNearDuplicates,
    )
    from tdm_dagster.datasets.errors import NothingChangedError

    registry = DatasetRegistry(home)
    current = registry.version_info(dataset)
    try:
        version = registry.derive(
            dataset, [DropExactDuplicates(), DropNearDuplicates(threshold)], parent=current.version, description="scheduled de-duplication"
        )
    except NothingChangedError:  # no duplicates: no new version
        return {"dataset": dataset, "version": current.version, "removed": 0, "new_version": None}
    removed = sum(step["removed"] for step in version.operation["steps"])
    return {"dataset": dataset, "version": current.version, "removed": removed, "new_version": version.version}


def export_current(home: TdmHome, dataset: str, formats: tuple[str, ...] = EXPORT_FORMATS) -> dict[str, Any]:
    """``$TDM_HOME/exports/<dataset>-<version>/`` in each format (skipped if already there)."""
    from tdm_dagster.datasets import DatasetRegistry
    from tdm_dagster.formats import export_records

    registry = DatasetRegistry(home)
    current = registry.version_info(dataset)  # refuses a name that could steer the path (e.g. "../x")
    folder = home.exports_dir / f"{dataset}-{current.version}"
    if folder.is_symlink():
        raise ValueError(f"{folder} is a symlink: refusing to export through it to wherever it points")
    written = {}
    for fmt in formats:
        target = folder / (f"{dataset}.{fmt}" if fmt != "hf" else f"{dataset}_hf")
        if not Path(target).exists():
            written[fmt] = export_records(registry.records(dataset, current.version), target, fmt)
    return {"dataset": dataset, "version": current.version, "folder": str(folder), "written": written}
