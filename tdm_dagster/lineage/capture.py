"""What a training run is about to learn from, written down before it trains.

A claimed queue file holds a batch's approved records (``queue/<prio>/<batch>.jsonl``,
possibly cut by the run's example budget, trimmed by the re-check, or a rest that a
split put back). Each of its records is found in the batch's ``approved.jsonl`` by its
canonical JSON, whose line in the batch as it arrived is in ``scores.jsonl``: a record's
id is ``BATCH:LINE``, the same line ``rejected/`` and the reports use. A record that can
no longer be found (its batch folder deleted) is counted as ``unmatched``, never guessed.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

from tdm_dagster.datasets.records import canonical_json
from tdm_dagster.files.atomic import read_json, read_jsonl
from tdm_dagster.home import TdmHome

KIND = "tdm.lineage/1"
GENERATORS = ("builtin", "skill_api", "inference")
"""Plan sources that mean a generator made the batch (``records.batches.BatchPlan.source``)."""


def _plain(value: Any) -> Any:
    """A config value as JSON-ready data (``asdict`` would deep-copy read-only mappings)."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    return value


def gate_config_hash(config: Any) -> str:
    """sha256 (first 16 hex digits) of what decides a gate verdict: the ``gate`` and
    ``quality`` sections, so two reports with the same hash were judged by the same rules."""
    judged = {"gate": _plain(config.gate), "quality": _plain(config.quality)}
    text = json.dumps(judged, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def batch_of_queue_file(name: str) -> str:
    """The batch a queue file holds: ``<batch>.jsonl``, ``<batch>.rest-<claim>.jsonl`` (a
    split's rest) or ``<batch>.released-<claim>.jsonl`` (a released claim)."""
    stem = Path(name).name.removesuffix(".jsonl")
    for marker in (".rest-", ".released-"):
        stem = stem.split(marker)[0]
    return stem


def as_ranges(lines: Iterable[int]) -> list[list[int]]:
    """Sorted line numbers as ``[first, last]`` runs: ``[1, 2, 3, 7] -> [[1, 3], [7, 7]]``."""
    runs: list[list[int]] = []
    for line in sorted(set(lines)):
        if runs and line == runs[-1][1] + 1:
            runs[-1][1] = line
        else:
            runs.append([line, line])
    return runs


def in_ranges(line: int, ranges: Sequence[Sequence[int]]) -> bool:
    return any(first <= line <= last for first, last in ranges)


def expand(ranges: Sequence[Sequence[int]]) -> list[int]:
    return [line for first, last in ranges for line in range(first, last + 1)]


def count(ranges: Sequence[Sequence[int]]) -> int:
    """How many lines the runs hold."""
    return sum(last - first + 1 for first, last in ranges)


def _approved_lines(batch_dir: Path) -> dict[str, deque[int]]:
    """Canonical JSON of each approved record -> its lines in the batch, in order (a record
    approved twice has two lines, taken in turn)."""
    approved = batch_dir / "approved.jsonl"
    scores = batch_dir / "scores.jsonl"
    if not approved.is_file() or not scores.is_file():
        return {}
    try:
        records, rows = read_jsonl(approved), read_jsonl(scores)
        numbers = [int(row["line"]) for row in rows]
    except (OSError, ValueError, KeyError, TypeError):
        return {}  # damaged: its records count as unmatched
    if len(records) != len(numbers):
        return {}  # not written together: no line can be trusted
    found: dict[str, deque[int]] = defaultdict(deque)
    for record, line in zip(records, numbers):
        found[canonical_json(record)].append(line)
    return found


def _source(plan: dict[str, Any] | None) -> dict[str, Any]:
    """Where a batch came from, from its ``batch.json``."""
    if not plan:
        return {"kind": "unknown"}
    source = plan.get("source")
    if source == "inbox":
        return {"kind": "inbox", "file": plan.get("source_file"), "first_record": int(plan.get("record_start") or 0) + 1, "spec": plan.get("spec")}
    if source in GENERATORS:
        return {"kind": "generator", "generator": source, **{key: plan.get(key) for key in ("skill", "level", "seed", "count", "spec")}}
    return {"kind": str(source), **{key: plan.get(key) for key in ("skill", "spec")}}


def _gate(home: TdmHome, batch_id: str) -> dict[str, Any]:
    """The report that let the batch in: where it is, its sha256, level, config hash, verdict."""
    path = home.report_file(batch_id)
    try:
        raw = path.read_bytes()
        report = json.loads(raw)
    except (OSError, ValueError):
        return {"report": str(path), "report_sha256": None}
    counts = report.get("records") or {}
    return {
        "report": str(path),
        "report_sha256": hashlib.sha256(raw).hexdigest(),
        "level": report.get("level"),
        "config_hash": report.get("config_hash"),
        "overall_pass": report.get("overall_pass"),
        "recommendation": report.get("recommendation"),
        "approval_rate": counts.get("approval_rate"),
    }


def claimed_batches(home: TdmHome, files: Sequence[tuple[str, str, Path]]) -> list[dict[str, Any]]:
    """One entry per batch among the claimed ``files`` ((priority, queue name, path) each,
    in claim order): its source, gate, queue files, examples and record lines (as runs)."""
    entries: dict[str, dict[str, Any]] = {}
    lines: dict[str, list[int]] = defaultdict(list)
    unmatched: dict[str, int] = defaultdict(int)
    index: dict[str, dict[str, deque[int]]] = {}
    for priority, name, path in files:
        batch_id = batch_of_queue_file(name)
        if batch_id not in entries:
            batch_dir = home.batch_dir(batch_id)
            entries[batch_id] = {
                "batch_id": batch_id,
                "priority": priority,
                "source": _source(read_json(batch_dir / "batch.json")),
                "gate": _gate(home, batch_id),
                "queue_files": [],
                "examples": 0,
            }
            index[batch_id] = _approved_lines(batch_dir)
        entry = entries[batch_id]
        entry["queue_files"].append(f"{priority}/{name}")
        for record in read_jsonl(path):
            entry["examples"] += 1
            waiting = index[batch_id].get(canonical_json(record))
            if waiting:
                lines[batch_id].append(waiting.popleft())
            else:
                unmatched[batch_id] += 1
    for batch_id, entry in entries.items():
        entry["record_lines"] = as_ranges(lines[batch_id])
        entry["unmatched"] = unmatched[batch_id]
    return list(entries.values())


def lineage_of_claim(home: TdmHome, run: str, claim_id: str, files: Sequence[tuple[str, str, Path]]) -> dict[str, Any]:
    """What goes into training run ``run``'s checkpoints (``sources.lineage``) and the archive manifest."""
    batches = claimed_batches(home, files)
    return {
        "kind": KIND,
        "run": run,
        "claim_id": claim_id,
        "batches": batches,
        "examples": sum(entry["examples"] for entry in batches),
    }
