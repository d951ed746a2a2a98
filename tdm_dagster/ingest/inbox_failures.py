"""``failed/``: inbox entries that are refused, and claimed batches given up on.

Each is moved to ``failed/<id>/`` (a refused entry itself, never a link's target; a
batch's archived file when no other part of the file still needs it) beside a
``reason.json`` saying what it was, where, when and why, so it is reported once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tdm_dagster.files.atomic import atomic_write_json
from tdm_dagster.home import TdmHome
from tdm_dagster.ingest.inbox import Refused, new_folder
from tdm_dagster.records.batches import BatchStore


@dataclass(frozen=True)
class Failed:
    name: str
    folder: Path
    code: str
    reason: str


def _write_reason(folder: Path, name: str, where: Path, moved_to: Path, code: str, reason: str, **extra: Any) -> Failed:
    """``reason.json``: what failed, where it was, where it is now, when, and why."""
    atomic_write_json(
        folder / "reason.json",
        {"what": name, "where": str(where), "moved_to": str(moved_to),
         "when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "code": code, "reason": reason, **extra},
    )  # fmt: skip
    return Failed(name, folder, code, reason)


def refuse(home: TdmHome, refused: Refused, where: Path | None = None) -> Failed | None:
    """Move a refused inbox entry (a link itself, never its target) to ``failed/<id>/``
    with its reason; ``where`` it was found, if not in its place now. None if another
    process moved it first (that one reports it)."""
    key, folder = new_folder(home.failed_dir, refused.path.name)
    moved_to = folder / refused.path.name
    try:
        os.rename(refused.path, moved_to)
    except FileNotFoundError:
        folder.rmdir()
        return None
    return _write_reason(folder, refused.path.name, where or refused.path, moved_to, refused.code, refused.reason)


def is_failed(home: TdmHome, batch_id: str) -> bool:
    return (home.failed_dir / batch_id).exists()


def fail_batch(home: TdmHome, batch_id: str, code: str, reason: str) -> Failed | None:
    """Move a claimed batch that cannot be processed to ``failed/<batch_id>/`` with its
    reason: the archived file with it when no other part of the file needs it. Once."""
    folder = home.failed_dir / batch_id
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        folder.mkdir()
    except FileExistsError:
        return None
    store = BatchStore(home)
    plan = store.load_plan(batch_id)
    archived = Path(plan.source_file or "")
    moved_to = archived
    needed_by_other_parts = plan.record_start > 0 or (store.load_ingest(batch_id) or {}).get("continues_in")
    if not needed_by_other_parts and archived.is_file():
        moved_to = folder / archived.name
        os.rename(archived, moved_to)
        archived.parent.rmdir()
    return _write_reason(folder, archived.name, archived, moved_to, code, reason, batch_id=batch_id)


def failed_outcome(failed: Failed) -> dict[str, Any]:
    return {"file": failed.name, "batch_id": None, "queued": False, "state": "failed",
            "verdict": f"moved to {failed.folder}: {failed.reason}"}  # fmt: skip
