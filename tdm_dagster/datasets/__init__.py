"""Versioned fine-tuning datasets: registry, storage, steps and splits (no Dagster here)."""

from tdm_dagster.datasets.catalog import DatasetInfo, VersionInfo
from tdm_dagster.datasets.diff import VersionDiff
from tdm_dagster.datasets.errors import (
    CorruptObjectError,
    DatasetError,
    DatasetExistsError,
    DatasetNotFoundError,
    DeletionRefusedError,
    IntegrityError,
    MissingObjectError,
    VersionExistsError,
    VersionNotFoundError,
)
from tdm_dagster.datasets.registry import DatasetRegistry
from tdm_dagster.datasets.splits import SplitResult, assign_splits
from tdm_dagster.datasets.steps import (
    AdjustConfidence,
    BalanceClasses,
    CleanText,
    DropExactDuplicates,
    DropNearDuplicates,
    FieldFilter,
    Filter,
    RemapLabel,
    Step,
)
from tdm_dagster.datasets.verify import VerifyReport

__all__ = [
    "AdjustConfidence",
    "BalanceClasses",
    "CleanText",
    "CorruptObjectError",
    "DatasetError",
    "DatasetExistsError",
    "DatasetInfo",
    "DatasetNotFoundError",
    "DatasetRegistry",
    "DeletionRefusedError",
    "DropExactDuplicates",
    "DropNearDuplicates",
    "FieldFilter",
    "Filter",
    "IntegrityError",
    "MissingObjectError",
    "RemapLabel",
    "SplitResult",
    "Step",
    "VerifyReport",
    "VersionDiff",
    "VersionExistsError",
    "VersionInfo",
    "VersionNotFoundError",
    "assign_splits",
]
