"""What a sharded gate run leaves in its output folder, the same whichever engine ran it.

- ``decisions/<NNNNN>-<shard file name>.jsonl``: one line per record of the shard, in
  order: its name (``file:line``), approved or not, its quality score (approved records)
  and every issue found (code, severity, message);
- ``report.json``: the batch verdict: counts, metrics, suites passed, tiers, warnings,
  answer checks, and how the run went (engine, shards, seconds).

Each file is written atomically, one shard at a time, so the writer never holds more
than one shard's decisions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tdm_dagster.files.atomic import atomic_write_json, atomic_write_jsonl
from tdm_dagster.records.issues import RecordIssue

SUMMARY_KEYS = ("batch_id", "spec", "level", "overall_pass", "recommendation", "records", "metrics", "tiers", "warnings", "answers")


def decisions_file(out_dir: Path, shard: int, shard_path: Path) -> Path:
    return out_dir / "decisions" / f"{shard:05d}-{shard_path.name}.jsonl"


def write_decisions(
    path: Path,
    keys: Sequence[str],
    issues: Mapping[int, Sequence[RecordIssue]],
    scores: Mapping[int, float],
    batch_issue: RecordIssue | None = None,
) -> int:
    """One line per record; ``batch_issue`` (a rejected batch) is added to every record."""

    def lines():
        for position, key in enumerate(keys):
            found = [*issues.get(position, ()), *([batch_issue] if batch_issue else [])]
            ok = batch_issue is None and not any(issue.rejects for issue in found)
            yield {
                "record": key,
                "approved": ok,
                "score": scores.get(position) if ok else None,
                "issues": [{k: v for k, v in asdict(issue).items() if k != "suggestion"} for issue in found],
            }

    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_jsonl(path, lines())


def summary(report: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a gate report both engines give alike (suite details and timings differ)."""
    out = {key: report[key] for key in SUMMARY_KEYS if key in report}
    out["suites"] = {name: result["passed"] for name, result in report.get("results", {}).items()}
    return out


def write_report(out_dir: Path, report: Mapping[str, Any], run: Mapping[str, Any]) -> Path:
    path = out_dir / "report.json"
    atomic_write_json(path, {**summary(report), "run": dict(run)})
    return path
