"""What a suite run gives back: light types, importable without pandas or GX."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tdm_dagster.records.issues import RecordIssue

SUITE_NAMES = ("format", "length", "diversity", "balance", "content")


@dataclass
class SuiteResult:
    name: str
    passed: bool
    pass_rate: float
    """Share of records that pass this suite's per-record expectations."""
    observed: dict[str, Any]
    thresholds: dict[str, Any]
    failed_records: dict[int, list[RecordIssue]] = field(default_factory=dict)
    warnings: dict[int, list[RecordIssue]] = field(default_factory=dict)
    """WARNING issues by row: findings that keep the record and lower its score."""
    samples: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    """JSON-safe summary for the quality report."""
