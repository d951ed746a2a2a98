"""Versioned fine-tuning datasets: registry, storage, steps and splits (no Dagster here).

The names below load on first use (PEP 562), so importing a light module of the package
(``names``, ``locks``, ``errors``) does not load DuckDB, NumPy and PyArrow: every ``tdm``
command imports ``datasets.names`` for its argument checks.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "DatasetInfo": "catalog", "VersionInfo": "catalog", "VersionDiff": "diff",
    **dict.fromkeys(("CorruptObjectError", "DatasetError", "DatasetExistsError", "DatasetNotFoundError", "DeletionRefusedError",
                     "IntegrityError", "MissingObjectError", "VersionExistsError", "VersionNotFoundError"), "errors"),
    "DatasetRegistry": "registry", "SplitResult": "splits", "assign_splits": "splits",
    **dict.fromkeys(("AdjustConfidence", "BalanceClasses", "CleanText", "DropExactDuplicates", "DropNearDuplicates",
                     "FieldFilter", "Filter", "RemapLabel", "Step"), "steps"),
    "VerifyReport": "verify",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value

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
