"""The quality re-check of the training queue (every 12 h in the SAM design).

A batch is tested once, when it is queued, and may wait in the queue for days while the
settings move on: thresholds are tightened, evaluation sets are added, the gate level is
raised, or someone copies a file into the queue by hand. The re-check runs today's gate on
every file still waiting (schema gate, the level's quality suites, batch metrics, and at
level ``deep`` duplicates within the file and leakage against today's evaluation sets) and
acts on the verdict:

- ``passed``: the file is left as it is;
- ``trimmed``: the file as a whole passes but some records no longer do; they are taken
  out of the file (rewritten atomically) and kept with their reasons in
  ``rejected/<batch>.recheck.jsonl``;
- ``held``: the file fails as a whole and its batch's source rejects failed batches
  (``gate.on_batch_failure``: where it salvages, as when the batch was queued, only the
  records that fail on their own are trimmed); it is moved to ``held/<priority>/<batch>.jsonl``
  with ``<batch>.reasons.json`` beside it, where no trainer looks, until a person
  releases it (:func:`release`) or deletes it.

While a file is being checked it is moved to ``queue/.rechecking/<priority>/``, where
the trainer's claim (a rename out of the priority folder) cannot take it, so a file is
never trained and trimmed at once; a re-check that dies mid-way leaves it there, and the
next one puts it back first. Every record stays accounted for: in the queue, in the held
file, or in the re-check's rejected file, with the bytes of a line that is not JSON kept
as they were.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tdm_dagster.files.atomic import atomic_write_json, atomic_write_jsonl, fsync_path
from tdm_dagster.config.settings import TdmConfig
from tdm_dagster.gate.outcome import GateOutcome, rejection_rows
from tdm_dagster.gate.run import GateInput, run_gate
from tdm_dagster.gate.salvage import on_batch_failure, queued_source
from tdm_dagster.home import PRIORITIES, TdmHome
from tdm_dagster.ingest.load import raw_field
from tdm_dagster.ingest.readers import read_records
from tdm_dagster.ingest.source import FileProblem
from tdm_dagster.records.issues import RecordIssue

QUEUE_SPEC = "chat_sft_v1"


@dataclass
class FileVerdict:
    batch_id: str
    priority: str
    records: int
    verdict: str
    """``passed``, ``trimmed``, ``held``, or ``skipped`` (claimed by a trainer meanwhile)."""
    removed: int = 0
    reasons: list[str] = field(default_factory=list)
    path: str = ""
    """Where the file is now."""


@dataclass
class RecheckResult:
    checked_at: str
    level: str
    files: list[FileVerdict]
    dry_run: bool = False

    def count(self, verdict: str) -> int:
        return sum(1 for f in self.files if f.verdict == verdict)

    @property
    def records(self) -> int:
        return sum(f.records for f in self.files)

    @property
    def removed(self) -> int:
        return sum(f.removed for f in self.files if f.verdict == "trimmed")

    @property
    def held_records(self) -> int:
        return sum(f.records for f in self.files if f.verdict == "held")

    @property
    def clean(self) -> bool:
        return not any(f.verdict in ("trimmed", "held") for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "checked_at": self.checked_at,
            "level": self.level,
            "dry_run": self.dry_run,
            "totals": {
                "files": len(self.files), "records": self.records,
                **{verdict: self.count(verdict) for verdict in ("passed", "trimmed", "held", "skipped")},
                "records_removed": self.removed, "records_held": self.held_records,
            },
            "files": [asdict(f) for f in self.files],
        }  # fmt: skip


@dataclass
class _QueueFile:
    """A queue file as read: each record (``None`` where a line could not be read), the
    read problems by position, and where each unreadable line was, with its bytes."""

    records: list[Any]
    read_issues: dict[int, list[RecordIssue]]
    unreadable: dict[int, dict[str, Any]]


def _read(path: Path, config: TdmConfig) -> _QueueFile:
    """With the inbox's JSONL reader: a bad line is a record with a read issue naming the
    file, line and problem, not the end of the re-check. Raises ``FileProblem`` for a
    file with no records or one that cannot be read at all."""
    read = _QueueFile([], {}, {})
    for source in read_records(path, max_record_bytes=config.gate.max_record_bytes):
        position = len(read.records)
        read.records.append(source.value if source.issue is None else None)
        if source.issue is not None:
            read.read_issues[position] = [source.issue]
            read.unreadable[position] = {"line": source.line, **raw_field(source.raw)}
    return read


def _batch_reasons(outcome: GateOutcome) -> list[str]:
    report = outcome.report
    reasons = [str(report["recommendation"]), *outcome.shortfalls]
    if report.get("schema_error"):
        reasons.append(str(report["schema_error"]))
    return reasons


def _judge(path: Path, priority: str, batch_id: str, config: TdmConfig, home: TdmHome, apply: bool) -> FileVerdict:
    verdict = FileVerdict(batch_id, priority, 0, "passed", path=str(home.queue_dir(priority) / f"{batch_id}.jsonl"))
    try:
        read = _read(path, config)
    except FileProblem as problem:
        verdict.verdict, verdict.reasons = "held", [str(problem)]
        if apply:
            verdict.path = str(_hold(home, path, priority, batch_id, verdict, {"file_problem": problem.code}))
        return verdict
    records = read.records
    verdict.records = len(records)
    # No queued_in: the file is itself queued, so the index of queued data holds it already.
    outcome = run_gate(GateInput.from_records(records, QUEUE_SPEC, batch_id, read.read_issues), config)
    source = queued_source(home, batch_id)
    outcome = on_batch_failure(outcome, records, source, config.gate.on_batch_failure[source])  # as when it was queued
    if not outcome.batch_approved and not outcome.salvaged:
        verdict.verdict, verdict.reasons = "held", _batch_reasons(outcome)
        if apply:
            verdict.path = str(_hold(home, path, priority, batch_id, verdict, outcome.report))
        return verdict
    if outcome.rejected:
        verdict.verdict, verdict.removed = "trimmed", len(outcome.rejected)
        codes = sorted({issue.code for found in outcome.rejected.values() for issue in found})
        verdict.reasons = [f"{len(outcome.rejected)} record(s) no longer pass: {', '.join(codes)}"]
        if apply:
            rows = rejection_rows(batch_id, records, outcome.rejected)
            for row in rows:
                if row["line"] - 1 in read.unreadable:
                    row["source"] = {"file": verdict.path, **read.unreadable[row["line"] - 1]}
            atomic_write_jsonl(home.rejected_file(batch_id, "recheck"), rows)
            modified = path.stat().st_mtime
            atomic_write_jsonl(path, [records[i] for i in outcome.approved_indices])
            os.utime(path, (modified, modified))  # keeps its place in the trainer's order
    return verdict


def _hold(home: TdmHome, path: Path, priority: str, batch_id: str, verdict: FileVerdict, report: dict[str, Any]) -> Path:
    target = home.held_dir(priority) / f"{batch_id}.jsonl"
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        target.with_suffix(".reasons.json"),
        {"batch_id": batch_id, "priority": priority, "held_at": datetime.now(UTC).isoformat(),
         "reasons": verdict.reasons, "report": report},
    )  # fmt: skip
    os.replace(path, target)
    fsync_path(target.parent)
    return target


def recover_interrupted(home: TdmHome) -> list[Path]:
    """Put back in the queue the files an interrupted re-check left being checked."""
    restored = []
    for priority in PRIORITIES:
        folder = home.rechecking_dir(priority)
        for checking in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
            queued = home.queue_dir(priority) / checking.name
            os.replace(checking, queued)
            restored.append(queued)
    return restored


def nothing_to_recheck(home: TdmHome) -> str | None:
    """Why a re-check would have nothing to do (no file waiting in the queue, none left
    mid-check by an interrupted one), or None."""
    from tdm_dagster.queue.store import TrainingQueue

    interrupted = any(any(home.rechecking_dir(priority).glob("*.jsonl")) for priority in PRIORITIES)
    if interrupted or TrainingQueue(home).files():
        return None
    return "the queue is empty: nothing to re-check"


def recheck_queue(
    home: TdmHome, config: TdmConfig, *, apply: bool = True, progress: Callable[[FileVerdict], None] | None = None
) -> RecheckResult:
    """Re-check every file waiting in the queue; with ``apply=False`` only report.

    ``progress`` (optional) is called with each :class:`FileVerdict` as it is decided."""
    from tdm_dagster.queue.store import TrainingQueue

    if apply:
        recover_interrupted(home)
    verdicts = []
    for queued in TrainingQueue(home).files():
        current = queued.path
        if apply:
            current = home.rechecking_dir(queued.priority) / queued.path.name
            current.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(queued.path, current)
            except FileNotFoundError:  # a trainer claimed it between the listing and now
                verdicts.append(FileVerdict(queued.batch_id, queued.priority, 0, "skipped", reasons=["claimed by a trainer"]))
                continue
        try:
            verdict = _judge(current, queued.priority, queued.batch_id, config, home, apply)
        finally:
            if apply and current.exists():
                os.replace(current, queued.path)
        verdicts.append(verdict)
        if progress:
            progress(verdict)
    result = RecheckResult(datetime.now(UTC).isoformat(), config.gate.level, verdicts, dry_run=not apply)
    if apply:
        atomic_write_json(home.state_file("recheck"), result.to_dict())
    return result


def held_files(home: TdmHome) -> list[dict[str, Any]]:
    """What the re-checks hold back, with their reasons, oldest first."""
    found = []
    for priority in PRIORITIES:
        folder = home.held_dir(priority)
        for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
            try:
                reasons = json.loads(path.with_suffix(".reasons.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                reasons = {"reasons": ["(no reasons file)"]}
            found.append({"batch_id": path.stem, "priority": priority, "path": str(path),
                          "held_at": reasons.get("held_at"), "reasons": reasons.get("reasons", [])})  # fmt: skip
    return sorted(found, key=lambda row: row["held_at"] or "")


def release(home: TdmHome, batch_id: str) -> Path:
    """Put a held file back in its priority folder (a person decided it is fine)."""
    for priority in PRIORITIES:
        path = home.held_dir(priority) / f"{batch_id}.jsonl"
        if path.exists():
            target = home.queue_dir(priority) / path.name
            if target.exists():
                raise FileExistsError(f"{target} already exists in the queue; remove one of the two first")
            os.replace(path, target)
            fsync_path(target.parent)
            path.with_suffix(".reasons.json").unlink(missing_ok=True)
            return target
    held = ", ".join(row["batch_id"] for row in held_files(home)) or "none"
    raise FileNotFoundError(f"no held batch named {batch_id!r} (held: {held})")
