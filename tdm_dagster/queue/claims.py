"""Atomic claims on training-queue files, so two trainers never take the same batch.

A trainer claims files in the order the queue serves them (``high``, ``normal``, ``low``;
oldest first) by renaming each one::

    queue/<prio>/<file>.jsonl  ->  queue/.claimed/<claim_id>/<prio>__<file>.jsonl

``rename`` is atomic, so of two racing trainers exactly one wins each file; the loser
gets ``FileNotFoundError`` and moves on. The claim folder holds ``claim.json`` (pid,
host, process start time, created_at) written *before* any file is moved, so a claim
whose process died is always recognisable (:func:`stale_claims`) and can be put back
(:func:`release`). With an example budget (``training.max_examples_per_run``) the file
that crosses it is split and its rest stays queued (``claim_split``). After training, :func:`archive` moves the files to
``$TDM_HOME/archive/trained/<checkpoint_name>/`` with a ``manifest.json``. A claimed file
is always in exactly one place: the queue, its claim folder, or the archive.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tdm_dagster.files.atomic import atomic_write_json, fsync_path, read_json, read_jsonl
from tdm_dagster.home import PRIORITIES, TdmHome
from tdm_dagster.queue import claim_split

CLAIM_FILE = "claim.json"
MANIFEST_FILE = "manifest.json"
SEP = "__"


@dataclass(frozen=True)
class ClaimedFile:
    priority: str
    name: str
    """The file's name in the queue, e.g. ``binary_autogen_..._count100.jsonl``."""
    path: Path
    """Where it is now (inside the claim folder)."""


@dataclass(frozen=True)
class Claim:
    claim_id: str
    home: TdmHome
    dir: Path
    info: dict[str, Any]

    @property
    def files(self) -> list[ClaimedFile]:
        found = []
        if not self.dir.is_dir():
            return found
        for path in self.dir.glob(f"*{SEP}*.jsonl"):
            priority, _, name = path.name.partition(SEP)
            if priority in PRIORITIES and not path.name.startswith("."):
                found.append(ClaimedFile(priority, name, path))
        order = {p: i for i, p in enumerate(PRIORITIES)}
        return sorted(found, key=lambda f: (order[f.priority], self.info.get("order", {}).get(f.path.name, 0), f.name))

    @property
    def source_names(self) -> list[str]:
        return [f"{f.priority}/{f.name}" for f in self.files]

    def examples(self) -> list[dict[str, Any]]:
        """Every record of every claimed file, in claim order."""
        records: list[dict[str, Any]] = []
        for claimed in self.files:
            records.extend(read_jsonl(claimed.path))
        return records


HomeLike = TdmHome | str | os.PathLike
"""A ``TdmHome`` or a path to one."""


def claims_root(home: HomeLike) -> Path:
    return TdmHome.of(home).claims_dir


def archive_root(home: HomeLike) -> Path:
    return TdmHome.of(home).trained_archive_dir


def _proc_start_time(pid: int) -> str | None:
    """Kernel start time of ``pid`` (Linux), to tell a live process from a reused pid."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            stat = handle.read()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _count_lines(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(1 for line in handle if line.strip())


def _waiting(home: HomeLike) -> list[tuple[str, Path, float]]:
    """Queue files in serving order; tolerant of files vanishing while listed."""
    home = TdmHome.of(home)
    found: list[tuple[str, Path, float]] = []
    for priority in PRIORITIES:
        folder = home.queue_dir(priority)
        if not folder.is_dir():
            continue
        entries = []
        for path in folder.glob("*.jsonl"):
            if path.name.startswith("."):
                continue
            try:
                entries.append((priority, path, path.stat().st_mtime))
            except FileNotFoundError:
                continue  # claimed by someone else just now
        found.extend(sorted(entries, key=lambda e: (e[2], e[1].name)))
    return found


def claimable_examples(home: HomeLike) -> int:
    """Examples waiting in the queue (claimed files not counted)."""
    total = 0
    for _priority, path, _mtime in _waiting(home):
        try:
            total += _count_lines(path)
        except FileNotFoundError:
            continue
    return total


def claim(
    home: HomeLike,
    max_files: int | None = None,
    max_examples: int | None = None,
    claim_id: str | None = None,
) -> Claim | None:
    """Atomically take waiting queue files (priority order, oldest first).

    Stops after ``max_files`` files, or once exactly ``max_examples`` examples are taken:
    the file that crosses the budget is split (``claim_split``), its first examples
    claimed and the rest left queued in its place. Returns None when nothing was claimed.
    """
    if max_examples is not None and max_examples < 1:
        raise ValueError(f"max_examples is {max_examples}; expected a positive number or None")
    home = TdmHome.of(home)
    claim_id = claim_id or f"{time.strftime('%Y%m%d_%H%M%S')}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    folder = claims_root(home) / claim_id
    folder.mkdir(parents=True, exist_ok=False)
    pid = os.getpid()
    info: dict[str, Any] = {
        "claim_id": claim_id,
        "pid": pid,
        "host": socket.gethostname(),
        "proc_start": _proc_start_time(pid),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "created_ts": time.time(),
    }
    atomic_write_json(folder / CLAIM_FILE, info)  # before any move: a dead claim is always identifiable
    taken = 0
    examples = 0
    order: dict[str, int] = {}
    for priority, path, _mtime in _waiting(home):
        if max_files is not None and taken >= max_files:
            break
        if max_examples is not None and examples >= max_examples:
            break
        target = folder / f"{priority}{SEP}{path.name}"
        try:
            os.rename(path, target)
        except FileNotFoundError:
            continue  # another trainer won this file
        order[target.name] = taken
        taken += 1
        lines = _count_lines(target)
        if max_examples is not None and lines > max_examples - examples:
            lines = max_examples - examples
            claim_split.split(target, path, priority, lines, info, folder / CLAIM_FILE)
        examples += lines
    if not taken:
        shutil.rmtree(folder, ignore_errors=True)
        return None
    fsync_path(folder)
    for priority in PRIORITIES:
        if home.queue_dir(priority).is_dir():
            fsync_path(home.queue_dir(priority))
    info["order"] = order
    info["files"] = sorted(order, key=order.get)
    info["examples"] = examples
    atomic_write_json(folder / CLAIM_FILE, info)
    return Claim(claim_id, home, folder, info)


def load_claim(home: HomeLike, claim_id: str) -> Claim:
    home = TdmHome.of(home)
    folder = claims_root(home) / claim_id
    info = read_json(folder / CLAIM_FILE, default={}) or {}
    return Claim(claim_id, home, folder, info)


def list_claims(home: HomeLike) -> list[Claim]:
    root = claims_root(home)
    if not root.is_dir():
        return []
    return [load_claim(home, entry.name) for entry in sorted(root.iterdir()) if entry.is_dir()]


def _alive(info: dict[str, Any]) -> bool:
    pid = info.get("pid")
    if not isinstance(pid, int):
        return False
    if info.get("host") not in (None, socket.gethostname()):
        return True  # another machine's process: cannot tell, assume alive
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    recorded = info.get("proc_start")
    current = _proc_start_time(pid)
    if recorded and current and recorded != current:
        return False  # the pid was reused by another process
    if current is not None:
        try:  # a zombie (killed but not yet reaped) is gone too
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
                if handle.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return False
        except (OSError, IndexError):
            pass
    return True


def stale_claims(home: HomeLike, older_than_s: float = 0.0) -> list[Claim]:
    """Claims whose process is gone and that are at least ``older_than_s`` old."""
    now = time.time()
    stale = []
    for found in list_claims(home):
        created = found.info.get("created_ts")
        if created is None:
            try:
                created = found.dir.stat().st_mtime
            except FileNotFoundError:
                continue
        if now - float(created) < older_than_s:
            continue
        if not _alive(found.info):
            stale.append(found)
    return stale


def release(claim: Claim) -> list[Path]:
    """Put every claimed file back in its queue folder (crash or abort); returns new paths.

    If the queue meanwhile holds a file of the same name (the batch was re-queued), ours
    comes back as ``<stem>.released-<claim_id>.jsonl`` rather than overwrite it.
    """
    _finish_splits(claim)
    restored = []
    for claimed in claim.files:
        folder = claim.home.queue_dir(claimed.priority)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / claimed.name
        if target.exists():
            target = folder / f"{Path(claimed.name).stem}.released-{claim.claim_id}.jsonl"
        os.rename(claimed.path, target)
        restored.append(target)
        fsync_path(folder)
    _remove_claim_dir(claim)
    return restored


def archive(claim: Claim, checkpoint_name: str, extra: dict[str, Any] | None = None) -> Path:
    """Move the claimed files to ``archive/trained/<checkpoint_name>/`` with a manifest.

    The manifest (written first, atomically) records which checkpoint trained on which
    files, their priorities and example counts.
    """
    _finish_splits(claim)
    dest = archive_root(claim.home) / checkpoint_name
    dest.mkdir(parents=True, exist_ok=True)
    files = claim.files
    splits = (read_json(claim.dir / CLAIM_FILE, default={}) or {}).get(claim_split.SPLITS_KEY, {})
    manifest = {
        "checkpoint": checkpoint_name,
        "claim_id": claim.claim_id,
        "archived_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": [
            {
                "priority": f.priority,
                "name": f.name,
                "archived_as": f.path.name,
                "examples": _count_lines(f.path),
                **({"rest_queued_as": splits[f.path.name]["rest_as"]} if f.path.name in splits else {}),
            }
            for f in files
        ],
        **(extra or {}),
    }
    manifest["examples"] = sum(entry["examples"] for entry in manifest["files"])
    existing = read_json(dest / MANIFEST_FILE)
    if isinstance(existing, dict) and existing.get("files"):
        ours = {entry["archived_as"] for entry in manifest["files"]}
        manifest["files"] = [e for e in existing["files"] if e.get("archived_as") not in ours] + manifest["files"]
        manifest["examples"] = sum(entry["examples"] for entry in manifest["files"])
    atomic_write_json(dest / MANIFEST_FILE, manifest)
    for f in files:
        os.rename(f.path, dest / f.path.name)
    fsync_path(dest)
    _remove_claim_dir(claim)
    return dest


def _finish_splits(claim: Claim) -> None:
    """Complete a split its claimer was killed in (see ``claim_split``); re-reads claim.json,
    which the ``Claim`` may have been loaded before."""
    info = read_json(claim.dir / CLAIM_FILE, default={}) or {}
    claim_split.finish_splits(claim.dir, info, claim.home.queue_dir)


def _remove_claim_dir(claim: Claim) -> None:
    leftovers = [p for p in claim.dir.iterdir() if p.name != CLAIM_FILE] if claim.dir.is_dir() else []
    if leftovers:
        raise RuntimeError(f"claim {claim.dir} still holds {[p.name for p in leftovers]}; not removed")
    shutil.rmtree(claim.dir, ignore_errors=True)
    if claim.dir.parent.is_dir():
        fsync_path(claim.dir.parent)
