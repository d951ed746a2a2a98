"""Splitting a claimed queue file at the run's example budget, crash-safe.

``training.max_examples_per_run`` makes a run take exactly that many examples in
priority order, so the last file it claims is usually cut in two: the first ``keep``
examples stay in the claim, the rest goes back to the queue as its own file (same
priority, same place in the order: it keeps the original file's mtime). Cutting happens
inside the claim folder, where no other trainer looks, in steps that each leave a state
:func:`finish_splits` can complete::

    1. write the rest to <claim>/.rest__<claimed name>     (atomic: whole or absent)
    2. journal {keep, rest_as} in claim.json                 (atomic)
    3. rewrite <claim>/<claimed name> with the first keep    (atomic replace)
    4. rename the rest into queue/<prio>/<rest_as>           (atomic)

A crash before 2 leaves the claimed file whole (the orphan rest is deleted on recovery);
after 2, recovery rolls forward (3 if the file still holds more than ``keep`` examples,
then 4). Every example is therefore in exactly one place: the queue or the claim.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tdm_dagster.files.atomic import atomic_open, atomic_write_json, fsync_path

REST_PREFIX = ".rest__"
SPLITS_KEY = "splits"


def _lines(path: Path) -> list[bytes]:
    with open(path, "rb") as handle:
        return handle.readlines()


def _cut(lines: list[bytes], keep: int) -> tuple[list[bytes], list[bytes]]:
    """Lines holding the first ``keep`` examples (blank lines ride along), and the rest."""
    seen = 0
    for index, line in enumerate(lines):
        if line.strip():
            if seen == keep:
                return lines[:index], lines[index:]
            seen += 1
    return lines, []


def _write(path: Path, lines: list[bytes]) -> None:
    with atomic_open(path, "wb") as handle:
        handle.writelines(line if line.endswith(b"\n") else line + b"\n" for line in lines)


def rest_name(name: str, claim_id: str) -> str:
    """The queue name of a split file's rest: ``<batch>.rest-<claim_id>.jsonl`` (one
    suffix however often a file is split, so names stay short)."""
    base = Path(name).stem.split(".rest-")[0]
    return f"{base}.rest-{claim_id}.jsonl"


def split(claimed: Path, origin: Path, priority: str, keep: int, info: dict[str, Any], claim_file: Path) -> str:
    """Keep the first ``keep`` examples of ``claimed`` (a file in the claim folder, taken
    from ``origin`` in the ``priority`` queue folder); send the rest back beside ``origin``.

    ``info`` is the claim's claim.json content, journalled to ``claim_file``. Returns the
    rest's name in the queue.
    """
    claim_dir = claimed.parent
    mtime = claimed.stat().st_mtime
    _head, rest = _cut(_lines(claimed), keep)
    pending = claim_dir / f"{REST_PREFIX}{claimed.name}"
    _write(pending, rest)
    os.utime(pending, (mtime, mtime))  # the rest keeps the original file's place in the queue
    target = rest_name(origin.name, info["claim_id"])
    info.setdefault(SPLITS_KEY, {})[claimed.name] = {"keep": keep, "rest_as": target, "priority": priority}
    atomic_write_json(claim_file, info)
    _roll_forward(claim_dir, claimed.name, info[SPLITS_KEY][claimed.name], origin.parent)
    return target


def _roll_forward(claim_dir: Path, name: str, entry: dict[str, Any], queue_dir: Path) -> None:
    pending = claim_dir / f"{REST_PREFIX}{name}"
    if not pending.exists():
        return  # step 4 done
    claimed = claim_dir / name
    lines = _lines(claimed)
    if sum(1 for line in lines if line.strip()) > entry["keep"]:
        mtime = claimed.stat().st_mtime
        _write(claimed, _cut(lines, entry["keep"])[0])
        os.utime(claimed, (mtime, mtime))
    queue_dir.mkdir(parents=True, exist_ok=True)
    os.rename(pending, queue_dir / entry["rest_as"])
    fsync_path(queue_dir)
    fsync_path(claim_dir)


def finish_splits(claim_dir: Path, info: dict[str, Any], queue_dir_of: Callable[[str], Path]) -> None:
    """Complete any split a killed claimer left half done (idempotent).

    ``queue_dir_of(priority)`` is the queue folder of a priority. Journalled splits are
    rolled forward; an unjournalled rest (crash before step 2) and atomic-write leftovers
    are deleted, since the claimed file they came from is still whole.
    """
    if not claim_dir.is_dir():
        return
    journal = info.get(SPLITS_KEY, {})
    for name, entry in journal.items():
        _roll_forward(claim_dir, name, entry, queue_dir_of(entry["priority"]))
    for leftover in claim_dir.iterdir():
        if leftover.name.startswith(".") and leftover.is_file():
            leftover.unlink()
