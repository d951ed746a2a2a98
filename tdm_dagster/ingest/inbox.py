"""The inbox: files people and other tools drop in ``$TDM_HOME/inbox/``.

Settling: a file is claimed only once its size, mtime and inode have stayed the same for
``inbox.settle_sec`` by this machine's clock, as seen by successive scans (the sensor's
ticks, ``tdm ingest``'s polls), recorded in ``state/inbox_observed.json``. The mtime
alone is not trusted: a slow writer that pauses, a coarse or skewed file-system clock
would pass it. Names ending in ``.tmp``, ``.part`` (see ``IGNORED_SUFFIXES``) or
starting with a dot are never touched: tools write there and rename into place.

Only regular files are read. Symbolic links (wherever they point, dangling or looping),
FIFOs, sockets, devices and folders are refused: each is moved, itself and never its
target, to ``failed/<id>/`` beside a ``reason.json``, so it is reported once. A file is
opened with ``O_NOFOLLOW | O_NONBLOCK`` and checked with ``fstat`` after it has been
moved out of the inbox, so swapping in a link or a FIFO at the last moment is refused
too, and reading never blocks.

Claims and ownership: a file is claimed by an atomic rename into ``archive/<batch_id>/``
(of racing processes exactly one rename succeeds). Whoever works on a batch holds an
exclusive ``flock`` on ``batches/<batch_id>/.lock``; the claimer takes it before the
batch's plan exists, so no other process can pick up a claim that is being processed,
and the kernel frees the lock when its holder dies, so a crashed claim is picked up by
the next ``tdm ingest`` or sensor run. A batch whose run fails before its gate finished
is tried ``MAX_ATTEMPTS`` times in all, then moved to ``failed/``.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import stat
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from collections.abc import Callable
from typing import IO, Any, Protocol

from tdm_dagster.files.atomic import atomic_write_json, read_json
from tdm_dagster.records.batches import BatchPlan, BatchStore
from tdm_dagster.home import TdmHome

IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".swp")
INBOX_SOURCE = "inbox"
MAX_ATTEMPTS = 2
"""Runs of one inbox batch (the first and one retry) before it is moved to ``failed/``."""
OBSERVATIONS = "inbox_observed.json"
LOCK_NAME = ".lock"
ATTEMPTS_NAME = "attempts.json"


def inbox_dir(home: TdmHome) -> Path:
    return home.root / "inbox"


def archive_dir(home: TdmHome) -> Path:
    return home.root / "archive"


def failed_dir(home: TdmHome) -> Path:
    return home.root / "failed"


def is_ignored_name(name: str) -> bool:
    """Names tools write to before renaming into place: never looked at."""
    return name.startswith(".") or name.lower().endswith(IGNORED_SUFFIXES)


def _refusal(mode: int) -> tuple[str, str] | None:
    """(code, reason) for anything in the inbox that is not a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISLNK(mode):
        return "inbox.symlink", "a symbolic link: links are never followed, copy the file itself into the inbox"
    if stat.S_ISDIR(mode):
        return "inbox.folder", "a folder: only files directly in the inbox are read"
    if stat.S_ISFIFO(mode):
        return "inbox.fifo", "a named pipe (FIFO), not a regular file"
    if stat.S_ISSOCK(mode):
        return "inbox.socket", "a socket, not a regular file"
    return "inbox.special", "a device or other special file, not a regular file"


def _link_target(path: str) -> str:
    """`` (it points to ...)``, read without following the link."""
    try:
        return f" (it points to {os.readlink(path)[:200]!r})"
    except OSError:
        return ""


@dataclass(frozen=True)
class Refused:
    path: Path
    code: str
    reason: str


@dataclass(frozen=True)
class Settling:
    path: Path
    unchanged_sec: float


@dataclass(frozen=True)
class Ready:
    path: Path
    signature: tuple[int, int, int, int]
    """(device, inode, size, mtime in ns) when it was found settled."""


@dataclass
class InboxScan:
    ready: list[Ready] = field(default_factory=list)
    settling: list[Settling] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)


def _signature(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def scan_inbox(home: TdmHome, *, settle_sec: float, now: float | None = None) -> InboxScan:
    """What is in the inbox: settled files (oldest first), files still changing, and
    entries that will not be read. Records this scan's observations for the next one."""
    folder = inbox_dir(home)
    scan = InboxScan()
    if not folder.is_dir():
        return scan
    now = time.time() if now is None else now
    try:
        seen_before = read_json(home.state_dir / OBSERVATIONS) or {}
    except ValueError:  # damaged by hand: start observing afresh (only delays claims)
        seen_before = {}
    seen_now: dict[str, dict[str, Any]] = {}
    ready = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if is_ignored_name(entry.name):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:  # claimed by someone else meanwhile
                continue
            refusal = _refusal(st.st_mode)
            if refusal:
                code, reason = refusal
                if stat.S_ISLNK(st.st_mode):
                    reason += _link_target(entry.path)
                scan.refused.append(Refused(Path(entry.path), code, reason))
                continue
            signature = list(_signature(st))
            earlier = seen_before.get(entry.name)
            since = min(earlier["since"], now) if earlier and earlier.get("signature") == signature else now
            seen_now[entry.name] = {"signature": signature, "since": since}
            changed_at = max(since, st.st_mtime) if st.st_mtime <= now else since  # a future mtime is not trusted
            unchanged = now - changed_at
            if unchanged >= settle_sec:
                ready.append((st.st_mtime, entry.name, Ready(Path(entry.path), _signature(st))))
            else:
                scan.settling.append(Settling(Path(entry.path), max(unchanged, 0.0)))
    if seen_now != seen_before:
        atomic_write_json(home.state_dir / OBSERVATIONS, seen_now)
    scan.ready = [found for _mtime, _name, found in sorted(ready)]
    return scan


def inbox_batch_id(file_name: str, now: datetime | None = None) -> str:
    """``inbox_<name>_<utc stamp>``: readable, safe as a partition key and folder name,
    whatever characters the file name has."""
    stem = Path(file_name).stem
    slug = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")[:40] or "file"
    now = now or datetime.now(timezone.utc)
    return f"inbox_{slug}_{now.strftime('%Y%m%d_%H%M%S_%f')}"


def _new_folder(parent: Path, name: str) -> tuple[str, Path]:
    """A folder that did not exist before, named by ``inbox_batch_id(name)``."""
    parent.mkdir(parents=True, exist_ok=True)
    while True:
        key = inbox_batch_id(name)
        try:
            (parent / key).mkdir()
            return key, parent / key
        except FileExistsError:
            continue


# ---------------------------------------------------------------------------- ownership


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


# ---------------------------------------------------------------------------- failed/


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
    key, folder = _new_folder(failed_dir(home), refused.path.name)
    moved_to = folder / refused.path.name
    try:
        os.rename(refused.path, moved_to)
    except FileNotFoundError:
        folder.rmdir()
        return None
    return _write_reason(folder, refused.path.name, where or refused.path, moved_to, refused.code, refused.reason)


def is_failed(home: TdmHome, batch_id: str) -> bool:
    return (failed_dir(home) / batch_id).exists()


def fail_batch(home: TdmHome, batch_id: str, code: str, reason: str) -> Failed | None:
    """Move a claimed batch that cannot be processed to ``failed/<batch_id>/`` with its
    reason: the archived file with it when no other part of the file needs it. Once."""
    folder = failed_dir(home) / batch_id
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


# ---------------------------------------------------------------------------- claims


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
    refusal = _refusal(st.st_mode)
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


def _unclaim(home: TdmHome, batch_id: str, lock: BatchLock, failed: Failed | None = None) -> Failed | None:
    """Undo a claim whose file did not move (or was refused): its lock, plan and empty folders."""
    lock.release()
    for name in (LOCK_NAME, "batch.json"):
        (home.batch_dir(batch_id) / name).unlink(missing_ok=True)
    home.batch_dir(batch_id).rmdir()
    (archive_dir(home) / batch_id).rmdir()
    return failed


def claim_never_completed(home: TdmHome, batch_id: str) -> bool:
    """A plan whose file never moved into its archive folder: the claimer died between
    writing the plan and the rename, and the file is still in the inbox."""
    folder = archive_dir(home) / batch_id
    return folder.is_dir() and not any(folder.iterdir())


def claim(home: TdmHome, path: Path, priority: str, signature: tuple[int, int, int, int] | None = None) -> Claim | Failed | None:
    """Lock a new batch, write its plan, then move ``path`` into its archive folder.

    The plan comes first, so a crash never leaves a moved file that no plan names.
    ``signature`` is the file as found settled: if the entry moved is not that file
    any more (swapped for a link, or still growing), it is refused or put back.
    Returns None if another process claimed it first or it was put back.
    """
    batch_id, folder = _new_folder(archive_dir(home), path.name)
    lock = try_lock_batch(home, batch_id)  # a fresh id: nobody else can hold it
    target = folder / path.name
    _write_plan(home, batch_id, target, priority)
    try:
        os.rename(path, target)
    except FileNotFoundError:
        return _unclaim(home, batch_id, lock)
    try:
        found = _opened_as_regular(target)
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else str(exc)
        code = "inbox.symlink" if isinstance(exc, OSError) and exc.errno == errno.ELOOP else "inbox.unreadable"
        return _unclaim(home, batch_id, lock, refuse(home, Refused(target, code, f"cannot be read: {why}"), where=path))
    if signature and _signature(found)[:2] != signature[:2]:
        refused = Refused(target, "inbox.replaced", "replaced by another file while being claimed")
        return _unclaim(home, batch_id, lock, refuse(home, refused, where=path))
    if signature and _signature(found) != signature:
        _put_back(target, path)
        if not target.exists():
            return _unclaim(home, batch_id, lock)
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


# ---------------------------------------------------------------------------- one ingest pass


class Log(Protocol):
    def info(self, msg: str) -> None: ...
    def warning(self, msg: str) -> None: ...
    def error(self, msg: str) -> None: ...


def scan_until_settled(home: TdmHome, *, settle_sec: float, wait_sec: float) -> InboxScan:
    """``scan_inbox``, polled for up to ``wait_sec`` while files are still settling
    (``tdm ingest`` waits for what was just dropped; the sensor's run does not wait)."""
    deadline = time.monotonic() + wait_sec
    scan = scan_inbox(home, settle_sec=settle_sec)
    while scan.settling and time.monotonic() < deadline:
        time.sleep(min(1.0, max(settle_sec / 4, 0.05)))
        scan = scan_inbox(home, settle_sec=settle_sec)
    return scan


def failed_outcome(failed: Failed) -> dict[str, Any]:
    return {"file": failed.name, "batch_id": None, "queued": False, "state": "failed",
            "verdict": f"moved to {failed.folder}: {failed.reason}"}  # fmt: skip


def _whole_file_problem(home: TdmHome, batch_id: str) -> str | None:
    """The file problem of a batch that read no record at all (empty, wrong format)."""
    ingest = read_json(home.batch_dir(batch_id) / "ingest.json") or {}
    return ingest.get("file_problem") if ingest.get("input_records") == 0 else None


def _run_owned_batch(
    home: TdmHome, batch_id: str, run_batch: Callable[[str], tuple[bool, str]], log: Log
) -> tuple[dict[str, Any] | None, Failed | None]:
    """Run a batch whose lock this process holds, retrying a run that ends before its gate
    finished until ``MAX_ATTEMPTS`` runs (a killed process's run counts); returns its
    outcome, and what was moved to ``failed/``."""
    file_name = Path(BatchStore(home).load_plan(batch_id).source_file or batch_id).name
    verdict = "a run was killed before it finished"
    while attempts_made(home, batch_id) < MAX_ATTEMPTS:
        attempt = record_attempt(home, batch_id)
        queued, verdict = run_batch(batch_id)
        if is_processed(home, batch_id):
            problem = _whole_file_problem(home, batch_id)
            failed = fail_batch(home, batch_id, "inbox.unreadable_file", problem) if problem else None
            return {"file": file_name, "batch_id": batch_id, "queued": queued, "verdict": verdict}, failed
        log.warning(f"batch {batch_id} ({file_name}) failed before its gate finished (attempt {attempt} of {MAX_ATTEMPTS}): {verdict}")
    reason = f"its run failed {MAX_ATTEMPTS} times before the gate finished; last: {verdict}"
    return None, fail_batch(home, batch_id, "inbox.run_failed", reason)


def ingest_pass(
    home: TdmHome,
    scan: InboxScan,
    *,
    priority: str,
    run_batch: Callable[[str], tuple[bool, str]],
    log: Log,
    on_failed: Callable[[Failed], None],
) -> list[dict[str, Any]]:
    """Claim the settled files of ``scan``, move its refused entries to ``failed/``, and
    run each new claim, each orphaned claim and each later part exactly once across
    processes (``run_batch`` returns (queued, verdict)). One outcome per file or part."""
    outcomes: list[dict[str, Any]] = []
    failures: list[Failed] = []
    for item in scan.settling:
        log.warning(f"left {item.path.name!r} in the inbox: still being written (unchanged for {item.unchanged_sec:.0f}s)")
        outcomes.append({"file": item.path.name, "batch_id": None, "queued": False, "state": "settling",
                         "verdict": "still being written; left in the inbox for the next run"})  # fmt: skip
    for refused in scan.refused:
        try:
            failed = refuse(home, refused)
        except OSError as exc:
            log.error(f"could not move {refused.path.name!r} ({refused.reason}) to failed/: {exc}")
            continue
        if failed:
            failures.append(failed)
            outcomes.append(failed_outcome(failed))
    held: dict[str, BatchLock] = {}
    for ready in scan.ready:
        try:
            claimed = claim(home, ready.path, priority, ready.signature)
        except OSError as exc:
            log.error(f"could not claim {ready.path.name!r}: {exc}")
            continue
        if isinstance(claimed, Failed):
            failures.append(claimed)
            outcomes.append(failed_outcome(claimed))
        elif claimed:
            log.info(f"claimed {claimed.original_name!r} as batch {claimed.batch_id}")
            held[claimed.batch_id] = claimed.lock
    todo = [*held, *(batch_id for batch_id in unprocessed_claims(home) if batch_id not in held)]
    while todo:
        batch_id = todo.pop(0)
        lock = held.pop(batch_id, None) or try_lock_batch(home, batch_id)
        if lock is None:
            log.info(f"batch {batch_id} is being processed by another process: left to it")
            continue
        with lock:
            if is_processed(home, batch_id):
                continue
            if claim_never_completed(home, batch_id):
                log.warning(f"batch {batch_id}: its claimer died before moving the file, which stays in the inbox; dropped")
                _unclaim(home, batch_id, lock)
                continue
            outcome, failed = _run_owned_batch(home, batch_id, run_batch, log)
        if failed:
            failures.append(failed)
        if outcome and failed:
            outcome.update(state="failed", verdict=f"{outcome['verdict']}; moved to {failed.folder}")
        if outcome or failed:
            outcomes.append(outcome or failed_outcome(failed))
        following = (read_json(home.batch_dir(batch_id) / "ingest.json") or {}).get("continues_in")
        if following and following not in todo:
            todo.append(following)
    for failed in failures:
        log.error(f"{failed.name!r} moved to {failed.folder}: {failed.reason}")
        on_failed(failed)
    return outcomes
