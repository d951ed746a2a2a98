"""Statistics over everything under ``$TDM_HOME`` (plain Python, no Dagster).

- :func:`summary`: records by source, by format (spec) and by quality tier; approved
  records' token lengths (average and total, counted with the configured or bundled
  tokenizer, loaded only when asked); bytes on disk per top-level folder.
- :func:`daily`: generated / approved / rejected records per UTC day.
- :func:`sources`: per-source health (:func:`tdm_dagster.stats.source_health.source_health`).

Counts come from the quality reports (``reports/<batch>.json``) joined with the batch
plans (``batches/<batch>/batch.json``); a batch with no report yet counts as a batch but
adds no records, and as failed (:func:`failed_batches`) when no run for it is in
progress. Every result is JSON-serializable.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tdm_dagster.stats.batch_catalog import BatchInfo, load_batches, report_counts
from tdm_dagster.stats.source_health import source_health
from tdm_dagster.home import TdmHome


def _messages_of(record: Any) -> list[dict[str, Any]]:
    if not isinstance(record, dict):
        return []
    if isinstance(record.get("messages"), list):
        return [m for m in record["messages"] if isinstance(m, dict)]
    if "prompt" in record and "completion" in record:
        return [{"content": record.get("prompt")}, {"content": record.get("completion")}]
    if "instruction" in record:
        return [{"content": record.get("instruction")}, {"content": record.get("input")}, {"content": record.get("output")}]
    return []


def _record_text(record: Any) -> str:
    return "\n".join(str(m.get("content")) for m in _messages_of(record) if isinstance(m.get("content"), str))


def _approved_texts(home: TdmHome, batch_ids: list[str], limit: int) -> tuple[list[str], int]:
    """Texts of up to ``limit`` approved records, and how many approved records there are."""
    texts: list[str] = []
    total = 0
    for batch_id in batch_ids:
        path = home.batch_dir(batch_id) / "approved.jsonl"
        try:
            handle = path.open(encoding="utf-8")
        except OSError:
            continue
        with handle:
            for line in handle:
                if not line.strip():
                    continue
                total += 1
                if len(texts) >= limit:
                    continue
                try:
                    texts.append(_record_text(json.loads(line)))
                except ValueError:
                    continue
    return texts, total


def _tokenizer_path(home: TdmHome) -> str | None:
    try:
        from tdm_dagster.config.settings import load_config

        return load_config(home).quality.tokenizer_path
    except (ValueError, OSError):  # a broken config must not break stats: use the bundled tokenizer
        return None


def token_stats(home: TdmHome | str | Path, *, max_records: int = 20000, batches: list[BatchInfo] | None = None) -> dict[str, Any]:
    """Token lengths of approved records (all turns' contents joined by newlines).

    At most ``max_records`` records are tokenized; when there are more, the average is
    over that sample and ``total_tokens`` is the average times the number of records
    (``estimated: true``).
    """
    home = TdmHome.of(home)
    batch_ids = [b.batch_id for b in (load_batches(home) if batches is None else batches)]
    texts, total = _approved_texts(home, batch_ids, max_records)
    if not texts:
        return {"records": total, "counted": 0, "avg_tokens": 0.0, "total_tokens": 0, "estimated": False}
    from tdm_dagster.gate.quality import TokenCounter

    counts = TokenCounter(_tokenizer_path(home)).count(texts)
    average = sum(counts) / len(counts)
    estimated = len(counts) < total
    return {
        "records": total,
        "counted": len(counts),
        "avg_tokens": round(average, 2),
        "max_tokens": max(counts),
        "total_tokens": round(average * total) if estimated else sum(counts),
        "estimated": estimated,
    }


def storage_bytes(home: TdmHome | str | Path) -> dict[str, int]:
    """Bytes of regular files under each top-level entry of ``$TDM_HOME`` (files at the
    top level under ``"."``), plus ``"total"``. Symlinks are not followed."""
    home = TdmHome.of(home)
    sizes: Counter[str] = Counter()
    if not home.root.is_dir():
        return {"total": 0}
    for entry in home.root.iterdir():
        key = entry.name if entry.is_dir() and not entry.is_symlink() else "."
        if key == ".":
            try:
                sizes["."] += entry.lstat().st_size if entry.is_file() else 0
            except OSError:
                pass
            continue
        sizes[key] += 0
        for folder, _dirs, files in os.walk(entry):
            for name in files:
                try:
                    sizes[key] += os.lstat(os.path.join(folder, name)).st_size
                except OSError:
                    continue
    result = dict(sorted(sizes.items()))
    result["total"] = sum(sizes.values())
    return result


def failed_batches(home: TdmHome | str | Path, in_flight: Collection[str], *, batches: list[BatchInfo] | None = None) -> list[str]:
    """Batches that failed before their checks: a plan (``batches/<id>/batch.json``) but no
    report, and not in ``in_flight`` (the batches whose run is in progress), e.g. because
    the run was killed."""
    batches = load_batches(home) if batches is None else batches
    return [b.batch_id for b in batches if b.report is None and b.batch_id not in in_flight]


def rejection_codes(home: TdmHome | str | Path, batch_id: str) -> dict[str, int]:
    """Rejected records of a batch per reason code (``rejected/<batch>.jsonl``), most
    frequent first; a record with several reasons counts under each."""
    codes: Counter[str] = Counter()
    try:
        handle = (TdmHome.of(home).rejected_file(batch_id)).open(encoding="utf-8")
    except OSError:
        return {}
    with handle:
        for line in handle:
            try:
                reasons = json.loads(line).get("reasons") or []
            except (ValueError, AttributeError):
                continue
            codes.update({str(r.get("code")) for r in reasons if isinstance(r, dict)})
    return dict(codes.most_common())


def summary(
    home: TdmHome | str | Path,
    *,
    tokens: bool = True,
    max_token_records: int = 20000,
    batches: list[BatchInfo] | None = None,
    in_flight: Collection[str] = (),
) -> dict[str, Any]:
    """Totals across every batch.

    ``by_source`` / ``by_spec``: ``{"batches", "generated", "approved", "rejected"}``;
    ``by_tier``: approved records per quality tier (gold/silver/bronze/raw, from the
    reports); ``tokens``: :func:`token_stats` (None with ``tokens=False``, which avoids
    loading the tokenizer); ``storage_bytes``: :func:`storage_bytes`. ``totals.failed_batches``:
    :func:`failed_batches`, given the batches ``in_flight``.
    """
    home = TdmHome.of(home)
    batches = load_batches(home) if batches is None else batches
    by_source: dict[str, Counter[str]] = defaultdict(Counter)
    by_spec: dict[str, Counter[str]] = defaultdict(Counter)
    by_tier: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    for batch in batches:
        generated, approved, rejected = report_counts(batch.report)
        row = {"batches": 1, "generated": generated, "approved": approved, "rejected": rejected}
        for target in (by_source[batch.source], by_spec[batch.spec], totals):
            target.update(row)
        target = totals
        if batch.report:
            target["reported_batches"] += 1
            if batch.report.get("overall_pass"):
                target["passed_batches"] += 1
        by_tier.update({str(k): int(v) for k, v in ((batch.report or {}).get("tiers") or {}).items()})

    def plain(rows: dict[str, Counter[str]]) -> dict[str, dict[str, int]]:
        keys = ("batches", "generated", "approved", "rejected")
        return {name: {k: int(counts[k]) for k in keys} for name, counts in sorted(rows.items())}

    return {
        "home": str(home.root),
        "totals": {
            **{k: int(totals[k]) for k in ("batches", "reported_batches", "passed_batches", "generated", "approved", "rejected")},
            "failed_batches": len(failed_batches(home, in_flight, batches=batches)),
        },
        "by_source": plain(by_source),
        "by_spec": plain(by_spec),
        "by_tier": dict(sorted(by_tier.items())),
        "tokens": token_stats(home, max_records=max_token_records, batches=batches) if tokens else None,
        "storage_bytes": storage_bytes(home),
    }


def daily(
    home: TdmHome | str | Path, days: int = 14, now: datetime | None = None, *, batches: list[BatchInfo] | None = None
) -> list[dict[str, Any]]:
    """One row per UTC day, oldest first, for the ``days`` days ending today:
    ``{"date": "YYYY-MM-DD", "batches", "generated", "approved", "rejected"}``. A batch
    counts on the day it was created (its plan's ``created_at``)."""
    if days <= 0:
        return []
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    today = now.astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    rows = {first + timedelta(days=i): Counter() for i in range(days)}
    for batch in load_batches(home) if batches is None else batches:
        if batch.created_at is None:
            continue
        day = batch.created_at.astimezone(UTC).date()
        if day in rows:
            generated, approved, rejected = report_counts(batch.report)
            rows[day].update({"batches": 1, "generated": generated, "approved": approved, "rejected": rejected})
    return [
        {"date": day.isoformat(), **{k: int(c[k]) for k in ("batches", "generated", "approved", "rejected")}}
        for day, c in sorted(rows.items())
    ]


def sources(
    home: TdmHome | str | Path, now: datetime | None = None, *, batches: list[BatchInfo] | None = None
) -> dict[str, dict[str, Any]]:
    """Per-source health: :func:`tdm_dagster.stats.source_health.source_health`."""
    return source_health(TdmHome.of(home), now, batches=batches)


def trend_metrics(home: TdmHome | str | Path, now: datetime | None = None) -> dict[str, int | float]:
    """The numbers worth charting over time, flat and numeric (the ``data_stats`` asset
    records them as metadata on each materialization, which the Dagster UI plots):
    totals, approval rate, tokens, storage, queue depth, today's counts, and per source,
    format and tier."""
    from tdm_dagster.queue.store import TrainingQueue

    home = TdmHome.of(home)
    batches = load_batches(home)  # read once for the four views below
    overview = summary(home, batches=batches)
    totals = overview["totals"]
    tokens = overview["tokens"] or {}
    today = daily(home, days=1, now=now, batches=batches)[0]
    metrics: dict[str, int | float] = {
        **{key: totals[key] for key in ("batches", "passed_batches", "generated", "approved", "rejected")},
        "approval_rate": round(totals["approved"] / totals["generated"], 4) if totals["generated"] else 0.0,
        "avg_tokens": float(tokens.get("avg_tokens", 0.0)),
        "total_tokens": int(tokens.get("total_tokens", 0)),
        "storage_mb": round(overview["storage_bytes"]["total"] / 2**20, 3),
        "queue_files": TrainingQueue(home).total_depth(),
        **{f"today_{key}": today[key] for key in ("generated", "approved", "rejected")},
    }
    for name, row in overview["by_source"].items():
        metrics[f"source.{name}.approved"] = row["approved"]
    for name, row in overview["by_spec"].items():
        metrics[f"format.{name}.approved"] = row["approved"]
    for name, count in overview["by_tier"].items():
        metrics[f"tier.{name}"] = count
    for name, health in sources(home, now, batches=batches).items():
        metrics[f"source.{name}.health"] = health["health"]
    return metrics
