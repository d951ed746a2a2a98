"""Scheduled upkeep of the training dataset: de-duplication and export (plain Python).

Both act on the current version of ``dataset.name`` and leave a new version or an
export folder; neither changes an existing version. Where there is no such version yet
(a fresh home), both do nothing and say why (:func:`nothing_to_maintain`): the schedules
skip their tick for that reason, and a run started by hand ends with it logged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tdm_dagster.datasets.names import check_name, name_problem, shown
from tdm_dagster.home import TdmHome

EXPORT_FORMATS = ("jsonl", "hf")


def nothing_to_maintain(home: TdmHome, dataset: str) -> str | None:
    """Why ``dataset`` has no current version to de-duplicate or export (no such dataset
    yet, no version, or a name that is not a dataset name), or None when it has one.

    Opens the catalog only where one exists, so a schedule tick on a fresh home creates
    nothing."""
    from tdm_dagster.datasets import DatasetRegistry
    from tdm_dagster.datasets.errors import DatasetNotFoundError, VersionNotFoundError

    problem = name_problem(dataset)
    if problem:
        return f"dataset.name is {shown(dataset)}: {problem}"
    made_by = "the training_dataset asset makes it from the approved batches"
    registry = DatasetRegistry(home)
    try:
        if registry.catalog_path.exists():
            registry.version_info(dataset)
            return None
    except VersionNotFoundError:
        return f"dataset {dataset!r} has no version yet ({made_by})"
    except DatasetNotFoundError:
        pass
    return f"no dataset named {dataset!r} yet ({made_by})"


def deduplicate(home: TdmHome, dataset: str, threshold: float = 0.8) -> dict[str, Any]:
    """A new version without exact and near-duplicates (or nothing, if there are none, or
    ``skipped``: why there is no version to de-duplicate)."""
    check_name(dataset)  # a name that could steer a path is refused, not skipped
    skipped = nothing_to_maintain(home, dataset)
    if skipped:
        return {"dataset": dataset, "skipped": skipped}
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
    """``$TDM_HOME/exports/<dataset>-<version>/`` in each format (each skipped if already
    there; all, with ``skipped`` saying why, when there is no version to export)."""
    check_name(dataset)  # a name that could steer the path is refused, not skipped
    skipped = nothing_to_maintain(home, dataset)
    if skipped:
        return {"dataset": dataset, "skipped": skipped}
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
