"""The deployment record, ``serving_dir/deployments.json``, kept per target.

A target is where deployments land: ``"local"`` (``serving_dir`` itself) or a remote
``host:/path`` (``serving.remote_host``). Each has its own stack, scores and history, so
a rollback after ``serving.remote_host`` changed works against that target's
deployments, never the other's::

    {"version": 2,
     "targets": {"local": {"active": ["ckpt-a", "ckpt-b"],     # the stack, last = current
                           "scores": {"ckpt-a": 0.5, "ckpt-b": 0.7},
                           "history": [{"name", "checkpoint", "score", "time", "latency_s",
                                        "outcome", "reason", "previous", "remote_host",
                                        "forced"}, ...]},
                 "me@gpu-box:/srv/serving": {...}}}

A file written before targets (``{"active", "scores", "history"}`` at the top) is read
as one: each attempt goes to the target its ``remote_host`` names (none: local), and each
target's stack and scores are rebuilt by replaying its own attempts. It is written in
the new form by the next deploy or rollback.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tdm_dagster.files.atomic import atomic_write_json, read_json
from tdm_dagster.serving import DEPLOYMENTS_FILE

LOCAL = "local"
VERSION = 2


def target_key(remote: object | None) -> str:
    """The record's key for a target: ``"local"``, or the remote's ``host:/path``."""
    return str(remote) if remote else LOCAL


def empty_state() -> dict[str, Any]:
    return {"active": [], "scores": {}, "history": []}


def stack_after(active: list[str], outcome: str, name: str) -> list[str]:
    """The stack once ``name`` was deployed (pushed) or rolled back to (the stack is cut
    after it, or it is pushed when it had left the stack)."""
    if outcome == "deployed":
        return [*active, name]
    if name in active:
        return active[: len(active) - active[::-1].index(name)]
    return [*active, name]


def _replayed(history: list[dict[str, Any]]) -> dict[str, Any]:
    """One target's state from its attempts, as deploy and rollback built it."""
    state = empty_state()
    for entry in history:
        if entry.get("outcome") in {"deployed", "rollback"} and entry.get("name"):
            state["active"] = stack_after(state["active"], entry["outcome"], entry["name"])
            if entry["outcome"] == "deployed":
                state["scores"][entry["name"]] = entry.get("score")
        state["history"].append(entry)
    return state


def _migrated(old: dict[str, Any]) -> dict[str, Any]:
    by_target: dict[str, list[dict[str, Any]]] = {}
    for entry in old.get("history") or []:
        if isinstance(entry, dict):
            by_target.setdefault(entry.get("remote_host") or LOCAL, []).append(entry)
    return {"version": VERSION, "targets": {key: _replayed(entries) for key, entries in by_target.items()}}


def read_record(serving_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The whole record (every target), migrated from the old form if need be."""
    record = read_json(Path(serving_dir) / DEPLOYMENTS_FILE, default=None) or {}
    if not isinstance(record.get("targets"), dict):
        record = _migrated(record)
    return record


def load_deployments(serving_dir: str | os.PathLike[str], remote: object | None = None) -> dict[str, Any]:
    """One target's state: ``active`` (the stack), ``scores``, ``history``."""
    state = read_record(serving_dir)["targets"].get(target_key(remote)) or {}
    return {**empty_state(), **state}


def save_deployments(serving_dir: str | os.PathLike[str], remote: object | None, state: dict[str, Any]) -> None:
    """Write one target's state into the record (atomically; callers hold the deploy lock)."""
    record = read_record(serving_dir)
    record["targets"][target_key(remote)] = state
    atomic_write_json(Path(serving_dir) / DEPLOYMENTS_FILE, {"version": VERSION, "targets": record["targets"]})


def other_targets(serving_dir: str | os.PathLike[str], remote: object | None) -> list[str]:
    """The targets with a history besides this one (for ``tdm deployments``)."""
    return sorted(key for key in read_record(serving_dir)["targets"] if key != target_key(remote))
