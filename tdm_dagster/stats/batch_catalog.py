"""The batch catalog: every batch under ``$TDM_HOME`` with its source, spec, creation time
and quality report, read from the batch plans (``batches/<batch>/batch.json``) and the
reports (``reports/<batch>.json``). Statistics and source health are computed over it;
damaged or missing files are skipped rather than raised, so one bad plan never hides
the rest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tdm_dagster.home import TdmHome
from tdm_dagster.ingest.collectors import CONVERSATIONS_SOURCE, DOCS_SOURCE, GIT_SOURCE, MANUAL_SOURCE


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def parse_time(value: Any) -> datetime | None:
    """An ISO time as written in a plan or a listing (naive means UTC); None if absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _first_record_source(batch_dir: Path) -> str | None:
    """The collector named in the first generated record's metadata, if any."""
    path = batch_dir / "generated.jsonl"
    try:
        with path.open(encoding="utf-8") as handle:
            first = handle.readline()
        record = json.loads(first) if first.strip() else None
    except (OSError, ValueError):
        return None
    if isinstance(record, dict) and isinstance(record.get("metadata"), dict):
        source = record["metadata"].get("source")
        if source in (GIT_SOURCE, DOCS_SOURCE, CONVERSATIONS_SOURCE):
            return source
    return None


@dataclass(frozen=True)
class BatchInfo:
    batch_id: str
    source: str
    spec: str
    created_at: datetime | None
    report: dict[str, Any] | None


def batch_source(plan: dict[str, Any], batch_dir: Path) -> str:
    """A batch's source: the collector its records name (git, docs, conversations),
    ``manual`` for other inbox files, else the plan's ``source`` (builtin, skill_api,
    inference)."""
    collected = _first_record_source(batch_dir)
    if collected:
        return collected
    source = str(plan.get("source") or "unknown")
    return MANUAL_SOURCE if source == "inbox" else source


def load_batches(home: TdmHome | str | Path) -> list[BatchInfo]:
    """Every batch with a plan (``batches/*/batch.json``) and its report, if written;
    reports with no plan count too (source ``unknown``). Created time: the plan's
    ``created_at``, else the report file's mtime."""
    home = TdmHome.of(home)
    out: dict[str, BatchInfo] = {}
    batches_dir = home.batches_dir
    reports_dir = home.reports_dir
    if batches_dir.is_dir():
        for plan_path in sorted(batches_dir.glob("*/batch.json")):
            plan = _read_json(plan_path)
            if plan is None:
                continue
            batch_id = str(plan.get("batch_id") or plan_path.parent.name)
            report = _read_json(reports_dir / f"{batch_id}.json")
            created = parse_time(plan.get("created_at"))
            spec = str((report or {}).get("spec") or plan.get("spec") or "unknown")
            out[batch_id] = BatchInfo(batch_id, batch_source(plan, plan_path.parent), spec, created, report)
    if reports_dir.is_dir():
        for report_path in sorted(reports_dir.glob("*.json")):
            batch_id = report_path.stem
            if batch_id in out:
                continue
            report = _read_json(report_path)
            if report is None:
                continue
            created = datetime.fromtimestamp(report_path.stat().st_mtime, UTC)
            out[batch_id] = BatchInfo(batch_id, "unknown", str(report.get("spec") or "unknown"), created, report)
    return sorted(out.values(), key=lambda b: (b.created_at or datetime.min.replace(tzinfo=UTC), b.batch_id))


def report_counts(report: dict[str, Any] | None) -> tuple[int, int, int]:
    """(generated, approved, rejected) from a report; zeros when there is none yet."""
    records = (report or {}).get("records") or {}
    return int(records.get("generated", 0)), int(records.get("approved", 0)), int(records.get("rejected", 0))
