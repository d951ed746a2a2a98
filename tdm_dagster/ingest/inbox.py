"""The inbox: files people and other tools drop in ``$TDM_HOME/inbox/``, and what a scan sees there.

Settling: a file is claimed only once its size, mtime and inode have stayed the same for
``inbox.settle_sec`` by this machine's clock, as seen by successive scans (the sensor's
ticks, ``tdm ingest``'s polls), recorded in ``state/inbox_observed.json``. The mtime
alone is not trusted: a slow writer that pauses, a coarse or skewed file-system clock
would pass it. Names ending in ``.tmp``, ``.part`` (see ``IGNORED_SUFFIXES``) or
starting with a dot are never touched: tools write there and rename into place.

Only regular files are read. Symbolic links (wherever they point, dangling or looping),
FIFOs, sockets, devices and folders are refused: a scan lists them as ``Refused`` and
``tdm_dagster.ingest.inbox_failures.refuse`` moves each, itself and never its target, to
``failed/<id>/`` beside a ``reason.json``, so it is reported once.

Claiming a settled file is ``tdm_dagster.ingest.inbox_claims``; one whole pass over a scan
(claim, run, retry, give up) is ``tdm_dagster.ingest.inbox_pass``.
"""

from __future__ import annotations

import os
import re
import stat
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tdm_dagster.files.atomic import atomic_write_json, read_json
from tdm_dagster.home import TdmHome

IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".swp")


def is_ignored_name(name: str) -> bool:
    """Names tools write to before renaming into place: never looked at."""
    return name.startswith(".") or name.lower().endswith(IGNORED_SUFFIXES)


def refusal_of(mode: int) -> tuple[str, str] | None:
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


def file_signature(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def scan_inbox(home: TdmHome, *, settle_sec: float, now: float | None = None) -> InboxScan:
    """What is in the inbox: settled files (oldest first), files still changing, and
    entries that will not be read. Records this scan's observations for the next one."""
    folder = home.inbox_dir
    scan = InboxScan()
    if not folder.is_dir():
        return scan
    now = time.time() if now is None else now
    try:
        seen_before = read_json(home.state_file("inbox_observed")) or {}
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
            refusal = refusal_of(st.st_mode)
            if refusal:
                code, reason = refusal
                if stat.S_ISLNK(st.st_mode):
                    reason += _link_target(entry.path)
                scan.refused.append(Refused(Path(entry.path), code, reason))
                continue
            signature = list(file_signature(st))
            earlier = seen_before.get(entry.name)
            since = min(earlier["since"], now) if earlier and earlier.get("signature") == signature else now
            seen_now[entry.name] = {"signature": signature, "since": since}
            changed_at = max(since, st.st_mtime) if st.st_mtime <= now else since  # a future mtime is not trusted
            unchanged = now - changed_at
            if unchanged >= settle_sec:
                ready.append((st.st_mtime, entry.name, Ready(Path(entry.path), file_signature(st))))
            else:
                scan.settling.append(Settling(Path(entry.path), max(unchanged, 0.0)))
    if seen_now != seen_before:
        atomic_write_json(home.state_file("inbox_observed"), seen_now)
    scan.ready = [found for _mtime, _name, found in sorted(ready)]
    return scan


def scan_until_settled(home: TdmHome, *, settle_sec: float, wait_sec: float) -> InboxScan:
    """``scan_inbox``, polled for up to ``wait_sec`` while files are still settling
    (``tdm ingest`` waits for what was just dropped; the sensor's run does not wait)."""
    deadline = time.monotonic() + wait_sec
    scan = scan_inbox(home, settle_sec=settle_sec)
    while scan.settling and time.monotonic() < deadline:
        time.sleep(min(1.0, max(settle_sec / 4, 0.05)))
        scan = scan_inbox(home, settle_sec=settle_sec)
    return scan


def inbox_batch_id(file_name: str, now: datetime | None = None) -> str:
    """``inbox_<name>_<utc stamp>``: readable, safe as a partition key and folder name,
    whatever characters the file name has."""
    stem = Path(file_name).stem
    slug = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")[:40] or "file"
    now = now or datetime.now(timezone.utc)
    return f"inbox_{slug}_{now.strftime('%Y%m%d_%H%M%S_%f')}"


def new_folder(parent: Path, name: str) -> tuple[str, Path]:
    """A folder that did not exist before, named by ``inbox_batch_id(name)``."""
    parent.mkdir(parents=True, exist_ok=True)
    while True:
        key = inbox_batch_id(name)
        try:
            (parent / key).mkdir()
            return key, parent / key
        except FileExistsError:
            continue
