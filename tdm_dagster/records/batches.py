"""Batch identity and the per-batch folder under ``$TDM_HOME/batches/<batch_id>/``.

A batch id names what is in it, e.g. ``syllo_autogen_20251122_130000_count100``: the
skill, where it came from, when, and how many examples were asked for. The same id is
the Dagster partition key and the queue file's name, so a file in the queue can be
traced back to its run in the UI.

Files of a batch:
  batch.json          the plan: skill, level, count, seed, source, priority, spec
  generated.jsonl     the records as generated
  validated.jsonl     the schema-valid records read as chats
  schema.json         the schema gate's verdict per record
  approved.jsonl      the records that passed the whole gate
  scores.jsonl        each approved record's quality score and tier
  gate_checks.json    the gate's outcome as the asset checks show it (suites, deep findings)
  sources.jsonl       inbox batches: where each record came from, with its raw bytes
  ingest.json         inbox batches: spec per record, read and mapping problems
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tdm_dagster.files.atomic import (
    atomic_write_json,
    atomic_write_jsonl,
    read_json,
    read_jsonl,
)
from tdm_dagster.home import TdmHome
from tdm_dagster.records.issues import RecordIssue
from tdm_dagster.gate.schemas import SchemaGateResult

_BATCH_ID = re.compile(r"^(?P<skill>[a-z0-9]+)_(?P<source>[a-z0-9]+)_(?P<stamp>\d{8}_\d{6})(?:_\d+)?_count(?P<count>\d+)$")
SOURCE_TAGS = {"builtin": "autogen", "skill_api": "skillapi", "inference": "infer"}


def new_batch_id(skill: str, source: str, count: int, now: datetime | None = None, taken: set[str] | None = None) -> str:
    """A fresh, readable batch id; a numeric suffix keeps ids unique within one second."""
    now = now or datetime.now(timezone.utc)
    stamp = now.strftime("%Y%m%d_%H%M%S")
    tag = SOURCE_TAGS.get(source, source)
    candidate = f"{skill}_{tag}_{stamp}_count{count}"
    suffix = 1
    while taken and candidate in taken:
        suffix += 1
        candidate = f"{skill}_{tag}_{stamp}_{suffix}_count{count}"
    return candidate


def parse_batch_id(batch_id: str) -> dict[str, Any]:
    """The skill and count a batch id names, or {} for a hand-made partition key."""
    match = _BATCH_ID.match(batch_id)
    if not match:
        return {}
    return {"skill": match["skill"], "count": int(match["count"])}


def seed_for(batch_id: str) -> int:
    """A stable seed derived from the id: re-materializing a batch reproduces it."""
    return int.from_bytes(hashlib.sha256(batch_id.encode()).digest()[:4], "big")


@dataclass(frozen=True)
class BatchPlan:
    batch_id: str
    skill: str
    level: int
    count: int
    seed: int
    source: str
    priority: str
    spec: str
    created_at: str
    source_file: str | None = None
    """For inbox batches: the archived file the records were read from."""
    record_start: int = 0
    """For inbox batches: input records of the file before this part (a large file is
    read in consecutive parts, each its own batch, so memory stays bounded)."""


class BatchStore:
    def __init__(self, home: TdmHome):
        self.home = home

    def folder(self, batch_id: str) -> Path:
        return self.home.batch_dir(batch_id)

    def _path(self, batch_id: str, name: str) -> Path:
        return self.folder(batch_id) / name

    def save_generated(self, plan: BatchPlan, records: list[dict[str, Any]]) -> None:
        atomic_write_jsonl(self._path(plan.batch_id, "generated.jsonl"), records)
        atomic_write_json(self._path(plan.batch_id, "batch.json"), asdict(plan))

    def load_plan(self, batch_id: str) -> BatchPlan:
        data = read_json(self._path(batch_id, "batch.json"))
        if data is None:
            raise FileNotFoundError(f"batch {batch_id} has not been generated yet (no {self._path(batch_id, 'batch.json')})")
        return BatchPlan(**data)

    def is_inbox_batch(self, batch_id: str) -> bool:
        """True for a batch claimed from the inbox (its plan was written at claim time)."""
        data = read_json(self._path(batch_id, "batch.json"))
        return bool(data) and data.get("source") == "inbox"

    def load_generated(self, batch_id: str) -> list[dict[str, Any]]:
        return read_jsonl(self._path(batch_id, "generated.jsonl"))

    def save_ingested(self, batch_id: str, loaded: Any, continues_in: str | None = None) -> None:
        """An inbox file as read (``tdm_dagster.ingest.load.LoadedFile``): records (null
        where unreadable), the spec of each, where each came from with its raw bytes, and
        the read and mapping problems by position."""
        atomic_write_jsonl(self._path(batch_id, "generated.jsonl"), loaded.records)
        atomic_write_jsonl(self._path(batch_id, "sources.jsonl"), loaded.sources)
        atomic_write_json(
            self._path(batch_id, "ingest.json"),
            {
                "specs": loaded.specs,
                "input_records": loaded.input_records,
                "file_problem": str(loaded.file_problem) if loaded.file_problem else None,
                "continues_in": continues_in,
                "issues": {str(i): [asdict(issue) for issue in found] for i, found in loaded.issues.items()},
            },
        )

    def load_ingest(self, batch_id: str) -> dict[str, Any] | None:
        """What ``save_ingested`` wrote (issues as RecordIssue), or None for a generated batch."""
        data = read_json(self._path(batch_id, "ingest.json"))
        if data is None:
            return None
        data["issues"] = {int(i): [RecordIssue(**issue) for issue in found] for i, found in data["issues"].items()}
        data["sources"] = read_jsonl(self._path(batch_id, "sources.jsonl"))
        return data

    def save_validated(self, batch_id: str, schema: SchemaGateResult) -> None:
        atomic_write_jsonl(self._path(batch_id, "validated.jsonl"), schema.conversations)
        atomic_write_json(
            self._path(batch_id, "schema.json"),
            {
                "spec": schema.spec,
                "total": schema.total,
                "valid_indices": schema.valid_indices,
                "rejected": {str(i): [asdict(issue) for issue in issues] for i, issues in schema.rejected.items()},
                "batch_error": schema.batch_error,
            },
        )

    def save_approved(self, batch_id: str, records: list[dict[str, Any]]) -> None:
        atomic_write_jsonl(self._path(batch_id, "approved.jsonl"), records)

    def load_approved(self, batch_id: str) -> list[dict[str, Any]]:
        path = self._path(batch_id, "approved.jsonl")
        if not path.exists():
            raise FileNotFoundError(f"batch {batch_id} has no approved records yet: materialize its quality_report first")
        return read_jsonl(path)
