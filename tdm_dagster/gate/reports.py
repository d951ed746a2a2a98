"""Where a gate outcome lands: ``reports/<batch>.json``, ``rejected/<batch>.jsonl`` and,
in the batch's folder, ``approved.jsonl``, ``scores.jsonl`` and ``gate_checks.json`` (what
the asset checks show); and the totals over all reports that ``tdm stats`` shows."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tdm_dagster.files.atomic import (
    atomic_write_json,
    atomic_write_jsonl,
    atomic_write_text,
    read_json,
)
from tdm_dagster.gate.outcome import GateOutcome, check_view, rejection_rows, score_rows
from tdm_dagster.gate.schemas import as_chat_record
from tdm_dagster.home import TdmHome
from tdm_dagster.records.batches import BatchStore

CHECK_VIEW = "gate_checks.json"


def save_outcome(
    home: TdmHome,
    batch_id: str,
    records: Sequence[dict[str, Any] | None],
    outcome: GateOutcome,
    sources: Sequence[dict[str, Any]] | None = None,
) -> None:
    """Persist one batch's verdict: approved records, scores, rejected records with
    reasons, what the asset checks show, and the report.

    ``sources`` (inbox batches) gives each rejected record its place in the original file
    and its bytes exactly as they arrived. The report is written last, so its presence
    means the other files are complete.
    """
    if len(records) != outcome.total:
        raise ValueError(f"batch {batch_id}: {len(records)} records but the gate judged {outcome.total}")
    store = BatchStore(home)
    specs = outcome.specs or [outcome.report["spec"]] * outcome.total
    store.save_approved(batch_id, [as_chat_record(records[i], specs[i]) for i in outcome.approved_indices])
    atomic_write_jsonl(store.folder(batch_id) / "scores.jsonl", score_rows(outcome))
    rejected_path = home.rejected_file(batch_id)
    if outcome.rejected:
        rows = rejection_rows(batch_id, records, outcome.rejected)
        if sources is not None:
            for row in rows:
                row["source"] = sources[row["line"] - 1]
        atomic_write_jsonl(rejected_path, rows)
    elif rejected_path.exists():
        rejected_path.unlink()
    # default=str: suite observations may hold numpy scalars, shown as text in the checks
    view = json.dumps(check_view(outcome), indent=2, ensure_ascii=False, default=str)
    atomic_write_text(store.folder(batch_id) / CHECK_VIEW, view + "\n")
    atomic_write_json(home.report_file(batch_id), outcome.report)


def load_report(home: TdmHome, batch_id: str) -> dict[str, Any]:
    report = read_json(home.report_file(batch_id))
    if report is None:
        raise FileNotFoundError(
            f"no quality report for batch {batch_id}: materialize its quality_report first"
        )
    return report


def load_check_view(home: TdmHome, batch_id: str) -> dict[str, Any]:
    """What :func:`save_outcome` kept for the asset checks (see ``gate.outcome.check_view``)."""
    view = read_json(BatchStore(home).folder(batch_id) / CHECK_VIEW)
    if view is None:
        raise FileNotFoundError(f"no gate outcome for batch {batch_id}: materialize its quality_report first")
    return view


def iter_reports(home: TdmHome) -> list[dict[str, Any]]:
    """All readable reports, oldest first; an unreadable file is skipped, not fatal."""
    reports = []
    for path in sorted(home.reports_dir.glob("*.json"), key=lambda p: p.stat().st_mtime):
        try:
            reports.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return reports


def summarize(reports: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Totals for ``tdm stats``: generated, approved, rejected, approval rate, and the
    average pass rate of each check over the batches that ran it."""
    generated = sum(r["records"]["generated"] for r in reports)
    approved = sum(r["records"]["approved"] for r in reports)
    check_rates: dict[str, list[float]] = {}
    check_passes: dict[str, list[bool]] = {}
    for report in reports:
        for name, result in report.get("results", {}).items():
            rate = result.get("details", {}).get("pass_rate")
            if isinstance(rate, (int, float)):
                check_rates.setdefault(name, []).append(float(rate))
            check_passes.setdefault(name, []).append(bool(result.get("passed")))
    return {
        "batches": len(reports),
        "batches_approved": sum(1 for r in reports if r.get("overall_pass")),
        "total_generated": generated,
        "total_approved": approved,
        "total_rejected": generated - approved,
        "approval_rate": round(approved / generated, 4) if generated else 0.0,
        "checks": {
            name: {
                "avg_pass_rate": round(sum(check_rates.get(name, [])) / len(check_rates[name]), 4) if check_rates.get(name) else None,
                "batches_passed": sum(passes),
                "batches_run": len(passes),
            }
            for name, passes in check_passes.items()
        },
    }


def latest_report(home: TdmHome) -> dict[str, Any] | None:
    reports = iter_reports(home)
    return reports[-1] if reports else None
