"""Source health: how each source (a collector, the inbox, a generator) has been doing,
from the batch catalog and the files waiting in or claimed from the inbox."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tdm_dagster.home import TdmHome
from tdm_dagster.ingest.collectors import MANUAL_SOURCE, manual_files
from tdm_dagster.stats.batch_catalog import BatchInfo, load_batches, parse_time, report_counts


def source_health(
    home: TdmHome | str | Path, now: datetime | None = None, *, window_hours: float = 24.0, batches: list[BatchInfo] | None = None
) -> dict[str, dict[str, Any]]:
    """Per source: records and batches in the last ``window_hours``, approval rate,
    tier distribution of approved records (reports' ``tiers``), last update, and a
    health score in 0..1.

    Health score = 0.5 * approval + 0.3 * freshness + 0.2 * pass, where
    ``approval`` is approved / generated over the window (all time if the window is
    empty), ``freshness`` is 1 for an update within the window falling linearly to 0 at
    seven windows old, and ``pass`` is the share of the window's reported batches
    (all time if none) whose report passed (``overall_pass``). Rounded to 3 places.
    A source with no reports scores 0. ``batches``: already loaded (:func:`load_batches`).
    """
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    window_start = now - timedelta(hours=window_hours)
    by_source: dict[str, list[BatchInfo]] = defaultdict(list)
    source_of: dict[str, str] = {}
    for batch in load_batches(home) if batches is None else batches:
        by_source[batch.source].append(batch)
        source_of[batch.batch_id] = batch.source
    # archived inbox files whose records a collector made count for that collector
    manual = [row for row in manual_files(home) if source_of.get(row["batch_id"] or "", MANUAL_SOURCE) == MANUAL_SOURCE]
    pending = sum(1 for row in manual if row["state"] == "pending")
    if manual:
        by_source.setdefault(MANUAL_SOURCE, [])
    result: dict[str, dict[str, Any]] = {}
    for source, batches in sorted(by_source.items()):
        recent = [b for b in batches if b.created_at and b.created_at >= window_start]
        tiers: Counter[str] = Counter()
        for batch in recent:
            tiers.update({k: int(v) for k, v in ((batch.report or {}).get("tiers") or {}).items()})
        generated = sum(report_counts(b.report)[0] for b in recent)
        approved = sum(report_counts(b.report)[1] for b in recent)
        rejected = sum(report_counts(b.report)[2] for b in recent)
        last = max((b.created_at for b in batches if b.created_at), default=None)
        if source == MANUAL_SOURCE and manual:
            newest_file = parse_time(manual[-1]["modified"])
            if newest_file and (last is None or newest_file > last):
                last = newest_file
        basis = recent if any(b.report for b in recent) else batches
        all_generated = sum(report_counts(b.report)[0] for b in basis)
        all_approved = sum(report_counts(b.report)[1] for b in basis)
        reported = [b for b in basis if b.report]
        approval = all_approved / all_generated if all_generated else 0.0
        passed = sum(1 for b in reported if b.report.get("overall_pass")) / len(reported) if reported else 0.0
        if last is None:
            freshness = 0.0
        else:
            age = (now - last).total_seconds() / 3600.0
            freshness = 1.0 if age <= window_hours else max(0.0, 1.0 - (age - window_hours) / (6 * window_hours))
        score = round(0.5 * approval + 0.3 * freshness + 0.2 * passed, 3) if reported else 0.0
        entry: dict[str, Any] = {
            "batches_24h": len(recent),
            "records_24h": generated,
            "approved_24h": approved,
            "rejected_24h": rejected,
            "tiers_24h": dict(sorted(tiers.items())),
            "batches_total": len(batches),
            "last_update": last.isoformat(timespec="seconds") if last else None,
            "approval_rate": round(approval, 4),
            "pass_rate": round(passed, 4),
            "freshness": round(freshness, 4),
            "health": score,
        }
        if source == MANUAL_SOURCE:
            entry["inbox_pending"] = pending
            entry["archived_files"] = len(manual) - pending
        result[source] = entry
    return result
