"""Atomic checkpoints: ``<root>/checkpoints/checkpoint-N`` appears complete or not at all.

A checkpoint is written into a temp folder beside ``checkpoints/``
(``<root>/.checkpoint-N.<random>.tmp``): the model and tokenizer (``save_pretrained``),
then ``tdm_checkpoint.json`` (step, metrics, training data sources, created_at). Every
file and the folder are fsynced, then the folder is renamed to
``checkpoints/checkpoint-N`` and ``checkpoints/`` is fsynced. A writer killed at any point
leaves at most a temp folder, which :func:`list_checkpoints` ignores and
:func:`remove_stale_temp` cleans up.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tdm_dagster.files.atomic import atomic_write_json, fsync_path, fsync_tree, read_json

CHECKPOINTS_DIR = "checkpoints"
META_FILE = "tdm_checkpoint.json"
_NAME = re.compile(r"^checkpoint-(\d+)$")
_TMP = re.compile(r"^\.checkpoint-\d+\..*\.tmp$")


@dataclass(frozen=True)
class CheckpointInfo:
    name: str
    step: int
    path: Path
    meta: dict[str, Any]


def _rename_into_place(tmp: Path, final: Path) -> None:
    """The commit point (a seam tests patch to kill a writer just before it)."""
    os.rename(tmp, final)  # a directory rename: fails if `final` exists and is non-empty


def save_checkpoint(
    root: str | os.PathLike[str],
    step: int,
    model: Any = None,
    tokenizer: Any = None,
    metrics: dict[str, Any] | None = None,
    sources: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> CheckpointInfo:
    """Write ``<root>/checkpoints/checkpoint-<step>`` atomically; returns its info.

    ``sources`` records the training data (e.g. ``{"queue_files": [...], "dataset_version": ...}``).
    Raises ``FileExistsError`` if that checkpoint already exists (it is never overwritten).
    """
    root = Path(root)
    final_dir = root / CHECKPOINTS_DIR
    final_dir.mkdir(parents=True, exist_ok=True)
    name = f"checkpoint-{int(step)}"
    final = final_dir / name
    if final.exists():
        raise FileExistsError(f"checkpoint {final} already exists")
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=root))
    try:
        if model is not None:
            model.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        meta = {
            "name": name,
            "step": int(step),
            "metrics": metrics or {},
            "sources": sources or {},
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            **(extra or {}),
        }
        atomic_write_json(tmp / META_FILE, meta)  # written last: its presence marks "complete"
        fsync_tree(tmp)
        _rename_into_place(tmp, final)
        fsync_path(final_dir)
        fsync_path(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return CheckpointInfo(name, int(step), final, meta)


def list_checkpoints(root: str | os.PathLike[str]) -> list[CheckpointInfo]:
    """Complete checkpoints under ``<root>/checkpoints``, by step (temp folders ignored)."""
    folder = Path(root) / CHECKPOINTS_DIR
    if not folder.is_dir():
        return []
    found: list[CheckpointInfo] = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if not match or not entry.is_dir():
            continue
        meta = read_json(entry / META_FILE)
        if not isinstance(meta, dict):
            continue  # not one of ours (or damaged outside our control): never offered
        found.append(CheckpointInfo(entry.name, int(match.group(1)), entry, meta))
    return sorted(found, key=lambda info: info.step)


def latest(root: str | os.PathLike[str]) -> CheckpointInfo | None:
    checkpoints = list_checkpoints(root)
    return checkpoints[-1] if checkpoints else None


def temp_dirs(root: str | os.PathLike[str]) -> list[Path]:
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and _TMP.match(p.name))


def remove_stale_temp(root: str | os.PathLike[str], older_than_s: float = 3600.0) -> list[Path]:
    """Delete temp checkpoint folders left by killed writers (older than ``older_than_s``)."""
    removed = []
    now = time.time()
    for path in temp_dirs(root):
        if now - path.stat().st_mtime >= older_than_s:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    with open(Path(path) / META_FILE, encoding="utf-8") as handle:
        return json.load(handle)
