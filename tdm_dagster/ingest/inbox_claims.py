"""Claiming inbox files and owning inbox batches, exactly once across processes.

A file is claimed by an atomic rename into ``archive/<batch_id>/`` (of racing processes
exactly one rename succeeds). Whoever works on a batch holds an exclusive ``flock`` on
``batches/<batch_id>/.lock``; the claimer takes it before the batch's plan exists, so no
other process can pick up a claim that is being processed, and the kernel frees the lock
when its holder dies, so a crashed claim is picked up by the next ``tdm ingest`` or
sensor run (``unprocessed_claims``). A file is opened with ``O_NOFOLLOW | O_NONBLOCK``
and checked with ``fstat`` after it has been moved out of the inbox, so swapping in a
link or a FIFO at the last moment is refused too, and reading never blocks. Each run of
a batch is counted (``record_attempt``) so a batch that keeps failing can be given up on.
"""

from __future__ import annotations

import errno
import fcntl
import os
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from tdm_dagster.files.atomic import atomic_write_json, read_json
from tdm_dagster.home import TdmHome
from tdm_dagster.ingest.inbox import Refused, file_signature, new_folder, refusal_of
from tdm_dagster.ingest.inbox_failures import Failed, is_failed, refuse
from tdm_dagster.records.batches import BatchPlan, BatchStore

INBOX_SOURCE = "inbox"
LOCK_NAME = ".lock"
ATTEMPTS_NAME = "attempts.json"


class BatchLock:
    """An exclusive ``flock`` on ``batches/<id>/.lock``: the holder is the one process
    working on the batch. Freed by ``release`` or when the holder dies."""

    def __init__(self, handle: IO[bytes]):
        self._handle = handle

    def release(self) -> None:
        self._handle.close()

    def __enter__(self) -> BatchLock:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


def try_lock_batch(home: TdmHome, batch_id: str) -> BatchLock | None:
    """The batch's lock, or None while another live process holds it."""
    folder = home.batch_dir(batch_id)
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / LOCK_NAME, "ab")  # noqa: SIM115: held open for as long as the lock
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return BatchLock(handle)


def is_batch_locked(home: TdmHome, batch_id: str) -> bool:
    lock = try_lock_batch(home, batch_id)
    if lock is None:
        return True
    lock.release()
    return False


@dataclass
class Claim:
    batch_id: str
    archived: Path
    original_name: str
    lock: BatchLock | None = None
    """Held from before the plan is written until the claimer has processed the batch."""

    def release(self) -> None:
        if self.lock:
            self.lock.release()


def _opened_as_regular(path: Path) -> os.stat_result:
    """``fstat`` of ``path`` opened without following a link or blocking on a FIFO;
    OSError if it cannot be opened, ValueError if it is not a regular file."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    refusal = refusal_of(st.st_mode)
    if refusal:
        raise ValueError(refusal[1])
    return st


def _put_back(target: Path, path: Path) -> None:
    """Return a file that changed while being claimed to the inbox, never over a new one."""
    try:
        os.link(target, path)
        os.unlink(target)
    except FileExistsError:
        pass  # a new file of that name arrived: keep ours claimed rather than lose either


def _write_plan(home: TdmHome, batch_id: str, archived: Path, priority: str) -> None:
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
        source_file=str(archived),
    )
    atomic_write_json(BatchStore(home).folder(batch_id) / "batch.json", asdict(plan))


def unclaim(home: TdmHome, batch_id: str, lock: BatchLock, failed: Failed | None = None) -> Failed | None:
    """Undo a claim whose file did not move (or was refused): its lock, plan and empty folders."""
    lock.release()
    for name in (LOCK_NAME, "batch.json"):
        (home.batch_dir(batch_id) / name).unlink(missing_ok=True)
    home.batch_dir(batch_id).rmdir()
    (home.archive_dir / batch_id).rmdir()
    return failed


def claim_never_completed(home: TdmHome, batch_id: str) -> bool:
    """A plan whose file never moved into its archive folder: the claimer died between
    writing the plan and the rename, and the file is still in the inbox."""
    folder = home.archive_dir / batch_id
    return folder.is_dir() and not any(folder.iterdir())


def claim(home: TdmHome, path: Path, priority: str, signature: tuple[int, int, int, int] | None = None) -> Claim | Failed | None:
    """Lock a new batch, write its plan, then move ``path`` into its archive folder.

    The plan comes first, so a crash never leaves a moved file that no plan names.
    ``signature`` is the file as found settled: if the entry moved is not that file
    any more (swapped for a link, or still growing), it is refused or put back.
    Returns None if another process claimed it first or it was put back.
    """
    batch_id, folder = new_folder(home.archive_dir, path.name)
    lock = try_lock_batch(home, batch_id)  # a fresh id: nobody else can hold it
    target = folder / path.name
    _write_plan(home, batch_id, target, priority)
    try:
        os.rename(path, target)
    except FileNotFoundError:
        return unclaim(home, batch_id, lock)
    try:
        found = _opened_as_regular(target)
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else str(exc)
        code = "inbox.symlink" if isinstance(exc, OSError) and exc.errno == errno.ELOOP else "inbox.unreadable"
        return unclaim(home, batch_id, lock, refuse(home, Refused(target, code, f"cannot be read: {why}"), where=path))
    if signature and file_signature(found)[:2] != signature[:2]:
        refused = Refused(target, "inbox.replaced", "replaced by another file while being claimed")
        return unclaim(home, batch_id, lock, refuse(home, refused, where=path))
    if signature and file_signature(found) != signature:
        _put_back(target, path)
        if not target.exists():
            return unclaim(home, batch_id, lock)
    return Claim(batch_id, target, path.name, lock)


def plan_next_part(home: TdmHome, plan: BatchPlan, records_in_part: int) -> str:
    """Write the plan of the part after ``plan`` and return its batch id
    (``<first part's id>_part0002``, ``_part0003``, ...)."""
    base, _, number = plan.batch_id.partition("_part")
    next_id = f"{base}_part{(int(number) if number else 1) + 1:04d}"
    following = replace(plan, batch_id=next_id, record_start=plan.record_start + records_in_part)
    atomic_write_json(BatchStore(home).folder(next_id) / "batch.json", asdict(following))
    return next_id


def is_processed(home: TdmHome, batch_id: str) -> bool:
    """The batch's gate finished (it has a report) or it was given up on (``failed/``)."""
    return (home.reports_dir / f"{batch_id}.json").exists() or is_failed(home, batch_id)


def unprocessed_claims(home: TdmHome) -> list[str]:
    """Inbox batches (claimed files and their later parts) neither processed nor failed,
    e.g. because the process died between claiming and running. Some may be in the
    hands of a live process right now: take ``try_lock_batch`` before working on one."""
    return sorted(
        plan_path.parent.name
        for plan_path in home.batches_dir.glob("inbox_*/batch.json")
        if not is_processed(home, plan_path.parent.name)
    )


def record_attempt(home: TdmHome, batch_id: str) -> int:
    """Count one more run of the batch (call while holding its lock); returns the count."""
    path = home.batch_dir(batch_id) / ATTEMPTS_NAME
    attempts = (read_json(path) or {}).get("attempts", 0) + 1
    atomic_write_json(path, {"attempts": attempts})
    return attempts


def attempts_made(home: TdmHome, batch_id: str) -> int:
    return (read_json(home.batch_dir(batch_id) / ATTEMPTS_NAME) or {}).get("attempts", 0)
