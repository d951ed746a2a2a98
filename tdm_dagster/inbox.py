"""The inbox: files people and other tools drop in ``$TDM_HOME/inbox/``.

A file is *claimed* by an atomic rename into ``archive/<batch_id>/``: of two sensor
ticks (or a tick and ``tdm ingest``) racing for the same file only one rename succeeds,
and a claimed file is no longer in the inbox after a restart, so nothing is processed
twice. The claimed file is the archived original: it is never modified. A file still
being written is left alone until it has not changed for ``settle_sec``; names ending
in ``.tmp``, ``.part`` or starting with a dot are never picked up.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from tdm_dagster.atomic import atomic_write_json
from tdm_dagster.batches import BatchPlan, BatchStore
from tdm_dagster.home import TdmHome

IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".swp")
INBOX_SOURCE = "inbox"


def inbox_dir(home: TdmHome) -> Path:
    return home.root / "inbox"


def archive_dir(home: TdmHome) -> Path:
    return home.root / "archive"


def pending_files(home: TdmHome, *, settle_sec: float = 2.0, now: float | None = None) -> list[Path]:
    """Files ready to claim, oldest first."""
    folder = inbox_dir(home)
    if not folder.is_dir():
        return []
    now = time.time() if now is None else now
    ready = []
    for entry in folder.iterdir():
        name = entry.name
        if name.startswith(".") or name.lower().endswith(IGNORED_SUFFIXES):
            continue
        try:
            stat = entry.stat()
        except FileNotFoundError:  # claimed by someone else meanwhile
            continue
        if entry.is_file() and now - stat.st_mtime >= settle_sec:
            ready.append((stat.st_mtime, name, entry))
    return [entry for _mtime, _name, entry in sorted(ready)]


def inbox_batch_id(file_name: str, now: datetime | None = None) -> str:
    """``inbox_<name>_<utc stamp>``: readable, safe as a partition key and folder name,
    whatever characters the file name has."""
    stem = Path(file_name).stem
    slug = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")[:40] or "file"
    now = now or datetime.now(timezone.utc)
    return f"inbox_{slug}_{now.strftime('%Y%m%d_%H%M%S_%f')}"


@dataclass(frozen=True)
class Claim:
    batch_id: str
    archived: Path
    original_name: str


def claim(home: TdmHome, path: Path, priority: str) -> Claim | None:
    """Move ``path`` into the archive under a new batch id and write the batch's plan.

    Returns None if another process claimed it first.
    """
    batch_id = inbox_batch_id(path.name)
    target = archive_dir(home) / batch_id / path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(path, target)
    except FileNotFoundError:
        target.parent.rmdir()
        return None
    plan = BatchPlan(
        batch_id=batch_id,
        skill=INBOX_SOURCE,
        level=0,
        count=0,
        seed=0,
        source=INBOX_SOURCE,
        priority=priority,
        spec="mixed",
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        source_file=str(target),
    )
    atomic_write_json(BatchStore(home).folder(batch_id) / "batch.json", asdict(plan))
    return Claim(batch_id, target, path.name)


def plan_next_part(home: TdmHome, plan: BatchPlan, records_in_part: int) -> str:
    """Write the plan of the part after ``plan`` and return its batch id
    (``<first part's id>_part0002``, ``_part0003``, ...)."""
    base, _, number = plan.batch_id.partition("_part")
    next_id = f"{base}_part{(int(number) if number else 1) + 1:04d}"
    following = replace(plan, batch_id=next_id, record_start=plan.record_start + records_in_part)
    atomic_write_json(BatchStore(home).folder(next_id) / "batch.json", asdict(following))
    return next_id


def unprocessed_claims(home: TdmHome) -> list[str]:
    """Inbox batches (claimed files and their later parts) whose gate has not finished
    (no report yet), e.g. because the process died between claiming and running."""
    pending = []
    for plan_path in home.batches_dir.glob("inbox_*/batch.json"):
        batch_id = plan_path.parent.name
        if not (home.reports_dir / f"{batch_id}.json").exists():
            pending.append(batch_id)
    return sorted(pending)
