"""Deploy a checkpoint to a serving folder, verify it, roll back on failure.

``deploy(checkpoint_dir, serving_dir, score=..., server_url=...)``:

1. refuses a checkpoint whose score is lower than the deployed one's (unless ``force``),
   and a folder that is not a checkpoint (no parseable config.json or no weights file);
2. puts it in place as ``serving_dir/<name>`` without copying: hard links to the
   checkpoint's files (checkpoints are immutable once written), made in a dot-temp
   folder and renamed; a file on another filesystem is copied instead. With ``remote``
   (:mod:`tdm_dagster.serving.remote`), rsync over ssh into a temp folder on that host
   with ``--link-dest`` against the previous deployment there (unchanged files become
   hard links), then ``mv`` into place;
3. switches the ``current`` pointer file to ``<name>`` atomically (here, or on the host);
4. with ``server_url``: POST /admin/reload (with ``$TDM_SERVING_ADMIN_TOKEN``), then
   checks /health and one test completion report the new checkpoint; on any failure
   switches the pointer back (the previous model keeps serving: the server never swaps
   in a model that fails to load) and removes the new folder;
5. records every attempt (checkpoint, score, latency, time, outcome, reason) in
   ``serving_dir/deployments.json`` (written atomically, under a lock), per target
   (:mod:`tdm_dagster.serving.history`).

Outcomes: ``deployed``, ``rollback`` (both end with it serving), ``declined`` (the score
comparison said no: a routine result), ``refused`` (not a checkpoint, nothing to roll
back to) and ``failed`` (copy, pointer or verification failed; switched back).

``rollback(serving_dir, target=None, server_url=...)`` switches to an earlier deployment:
the previous one, or the one named (its ``name`` is its id in ``tdm deployments``).

With ``remote`` the deployment folders and the pointer live on that host, under the
target's path; ``serving_dir`` (here) keeps ``deployments.json`` and the deploy lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tdm_dagster.files.atomic import atomic_write_text, fsync_tree
from tdm_dagster.serving import DEPLOYMENTS_FILE, POINTER_FILE
from tdm_dagster.serving.history import load_deployments, save_deployments, stack_after
from tdm_dagster.serving.remote import RemoteTarget, rsync_problem
from tdm_dagster.serving.verify import reload_server, verify_server

WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "model.safetensors.index.json")
SERVING_OUTCOMES = ("deployed", "rollback")
"""The outcomes that end with the deployment serving."""


@dataclass
class DeployResult:
    deployed: bool
    reason: str
    latency_s: float
    previous: str | None
    name: str | None = None
    outcome: str = "failed"
    """As recorded: deployed, rollback, declined, refused or failed (module docstring)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class DeployError(RuntimeError):
    pass


# --------------------------------------------------------------------------- state


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def current_deployment(serving_dir: str | os.PathLike[str]) -> str | None:
    """The folder name ``serving_dir/current`` points to (None if nothing is deployed)."""
    try:
        name = (Path(serving_dir) / POINTER_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return name or None


@contextmanager
def _deploy_lock(serving_dir: Path) -> Iterator[None]:
    serving_dir.mkdir(parents=True, exist_ok=True)
    with open(serving_dir / ".deploy.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _record(serving_dir: Path, remote: RemoteTarget | None, state: dict[str, Any], entry: dict[str, Any]) -> None:
    state["history"].append(entry)
    save_deployments(serving_dir, remote, state)


# --------------------------------------------------------------------------- checks


def validate_checkpoint(checkpoint_dir: str | os.PathLike[str]) -> str | None:
    """A reason the folder is not a loadable checkpoint, or None if it looks fine.

    Structural only (config.json parses and names a model type, a weights file exists);
    whether the weights load is checked by the server before it swaps the model in.
    """
    folder = Path(checkpoint_dir)
    if not folder.is_dir():
        return f"{folder} is not a folder"
    config_path = folder / "config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"{folder} has no config.json"
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return f"{config_path} is not valid JSON: {exc}"
    if not isinstance(config, dict) or not config.get("model_type"):
        return f"{config_path} does not name a model_type"
    if not any(any(folder.glob(pattern)) for pattern in WEIGHT_PATTERNS):
        return f"{folder} has no weights file ({', '.join(WEIGHT_PATTERNS)})"
    return None


def _score_refusal(state: dict[str, Any], current: str | None, score: float | None) -> str | None:
    if current is None:
        return None
    current_score = state["scores"].get(current)
    if current_score is None:
        return None
    if score is None:
        return f"no score given; the deployed {current} scored {current_score} (use force to deploy anyway)"
    if score < current_score:
        return f"score {score} is lower than the deployed {current}'s {current_score} (use force to deploy anyway)"
    return None


# --------------------------------------------------------------------------- placing


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=3600, check=False, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise DeployError(f"{argv[0]} failed ({proc.returncode}): {proc.stderr.strip()[:500]}")


def link_tree(source: Path, target: Path) -> dict[str, int]:
    """``target`` as hard links to ``source``'s files (copies where a link is refused,
    e.g. across filesystems): how many files were linked and copied."""
    counts = {"linked": 0, "copied": 0}
    for folder, dirs, files in os.walk(source):
        relative = Path(folder).relative_to(source)
        (target / relative).mkdir(parents=True, exist_ok=True)
        for name in files:
            src, dst = Path(folder) / name, target / relative / name
            try:
                os.link(src, dst, follow_symlinks=True)
                counts["linked"] += 1
            except OSError:
                shutil.copy2(src, dst)
                counts["copied"] += 1
        dirs.sort()
    return counts


def _place_local(checkpoint_dir: Path, serving_dir: Path, name: str) -> dict[str, int]:
    tmp = serving_dir / f".{name}.tmp-{os.getpid()}-{time.monotonic_ns()}"
    try:
        counts = link_tree(checkpoint_dir, tmp)
        fsync_tree(tmp)
        os.rename(tmp, serving_dir / name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return counts


def _place_remote(checkpoint_dir: Path, remote: RemoteTarget, name: str, previous: str | None) -> None:
    unusable = rsync_problem()
    if unusable:
        raise DeployError(unusable)
    tmp_name = f".{name}.tmp-{os.getpid()}-{time.monotonic_ns()}"
    try:
        _run(remote.rsync(checkpoint_dir, tmp_name, link_dest=previous))
        _run(remote.finish(tmp_name, name))
    except BaseException:
        with contextlib.suppress(Exception):
            _run(remote.remove(tmp_name))
        raise


def _unique_name(checkpoint_dir: Path, serving_dir: Path, state: dict[str, Any]) -> str:
    base = checkpoint_dir.resolve().name.lstrip(".") or "checkpoint"
    taken = set(state["scores"]) | set(state["active"]) | {e.get("name") for e in state["history"]}
    name = base
    if (serving_dir / name).exists() or name in taken or name in {POINTER_FILE, DEPLOYMENTS_FILE}:
        name = f"{base}-{datetime.now(UTC).strftime('%Y%m%d_%H%M%S_%f')}"
    return name


def _switch_pointer(serving_dir: Path, name: str | None, remote: RemoteTarget | None) -> None:
    if remote:
        _run(remote.switch_pointer(name))
    elif name is None:
        (serving_dir / POINTER_FILE).unlink(missing_ok=True)
    else:
        atomic_write_text(serving_dir / POINTER_FILE, name + "\n")


def _remove(serving_dir: Path, name: str, remote: RemoteTarget | None) -> None:
    if remote:
        with contextlib.suppress(DeployError, OSError, subprocess.TimeoutExpired):
            _run(remote.remove(name))
    else:
        shutil.rmtree(serving_dir / name, ignore_errors=True)


# --------------------------------------------------------------------------- API


def _finisher(serving: Path, remote: RemoteTarget | None, state: dict[str, Any], entry: dict[str, Any],
              started: float, previous: str | None) -> Any:
    def finish(outcome: str, reason: str, name: str | None) -> DeployResult:
        latency = round(time.monotonic() - started, 3)
        entry.update(name=name, outcome=outcome, reason=reason, latency_s=latency)
        if outcome in SERVING_OUTCOMES:
            assert name is not None
            state["active"] = stack_after(state["active"], outcome, name)
        _record(serving, remote, state, entry)
        return DeployResult(deployed=outcome in SERVING_OUTCOMES, reason=reason, latency_s=latency,
                            previous=previous, name=name, outcome=outcome)

    return finish


def _switch_and_verify(serving: Path, name: str, previous: str | None, server_url: str | None,
                       remote: RemoteTarget | None) -> str | None:
    """Point ``current`` at ``name`` and verify the server; on failure point it back at
    ``previous`` (reloading the server) and say why."""
    _switch_pointer(serving, name, remote)
    problem = verify_server(server_url, name) if server_url else None
    if not problem:
        return None
    _switch_pointer(serving, previous, remote)
    note = ""
    if server_url and previous is not None:
        try:
            reload_server(server_url)
        except Exception as exc:  # noqa: BLE001 - report it: the pointer is already back
            note = f"; reload after switching back failed: {exc}"
    return f"{problem}; switched back to {previous}{note}"


def deploy(
    checkpoint_dir: str | os.PathLike[str],
    serving_dir: str | os.PathLike[str],
    *,
    score: float | None,
    server_url: str | None,
    force: bool = False,
    remote: RemoteTarget | None = None,
) -> DeployResult:
    """Deploy ``checkpoint_dir``; see the module docstring."""
    started = time.monotonic()
    serving = Path(serving_dir)
    source = Path(checkpoint_dir)
    with _deploy_lock(serving):
        state = load_deployments(serving, remote)
        previous = (state["active"][-1] if state["active"] else None) if remote else current_deployment(serving)
        entry: dict[str, Any] = {
            "name": None, "checkpoint": str(source.resolve()), "score": score, "time": _now(),
            "previous": previous, "remote_host": str(remote) if remote else None, "forced": force,
        }
        finish = _finisher(serving, remote, state, entry, started, previous)
        problem = validate_checkpoint(source)
        if problem:
            return finish("refused", f"not a valid checkpoint: {problem}", None)
        if not force:
            refusal = _score_refusal(state, previous, score)
            if refusal:
                return finish("declined", refusal, None)

        name = _unique_name(source, serving, state)
        try:
            if remote:
                _place_remote(source, remote, name, previous)
            else:
                entry["files"] = _place_local(source, serving, name)
        except (OSError, DeployError, subprocess.TimeoutExpired) as exc:
            return finish("failed", f"copy failed: {exc}", None)

        try:
            problem = _switch_and_verify(serving, name, previous, server_url, remote)
        except (OSError, DeployError, subprocess.TimeoutExpired) as exc:
            problem = f"switching the pointer failed: {exc}"
        if problem:
            _remove(serving, name, remote)
            return finish("failed", problem, name)
        state["scores"][name] = score
        reason = "deployed and verified" if server_url else "deployed (not verified: no server_url)"
        return finish("deployed", reason, name)


def rollback(serving_dir: str | os.PathLike[str], server_url: str | None = None, *,
             target: str | None = None, remote: RemoteTarget | None = None) -> DeployResult:
    """Switch to an earlier deployment: ``target`` (a deployment name, as in ``tdm
    deployments``) or, by default, the one before the current. The deployments after
    the target in the stack are dropped from it (their folders stay, and a later
    rollback may name them)."""
    started = time.monotonic()
    serving = Path(serving_dir)
    with _deploy_lock(serving):
        state = load_deployments(serving, remote)
        current = state["active"][-1] if state["active"] else None
        entry: dict[str, Any] = {"name": None, "checkpoint": None, "score": None, "time": _now(),
                                 "previous": current, "remote_host": str(remote) if remote else None, "forced": False}
        finish = _finisher(serving, remote, state, entry, started, current)
        where = f" on {remote}" if remote else ""
        if target is None:
            if len(state["active"]) < 2:
                return finish("refused", f"no previous deployment to roll back to{where}", None)
            target = state["active"][-2]
        elif target not in state["scores"]:
            known = ", ".join(state["scores"]) or "none"
            return finish("refused", f"no deployment named {target!r}{where} (deployed there: {known})", None)
        elif target == current:
            return finish("refused", f"{target} is already the current deployment{where}", target)
        entry["score"] = state["scores"].get(target)
        entry["checkpoint"] = _checkpoint_of(state, target)
        if not _folder_exists(serving, target, remote):
            return finish("refused", f"deployment folder {target} is gone", target)
        try:
            problem = _switch_and_verify(serving, target, current, server_url, remote)
        except (OSError, DeployError, subprocess.TimeoutExpired) as exc:
            problem = f"switching the pointer failed: {exc}"
        if problem:
            return finish("failed", problem, target)
        return finish("rollback", f"rolled back from {current} to {target}", target)


def _checkpoint_of(state: dict[str, Any], name: str) -> str | None:
    return next((e["checkpoint"] for e in reversed(state["history"]) if e.get("name") == name and e.get("checkpoint")), None)


def _folder_exists(serving: Path, name: str, remote: RemoteTarget | None) -> bool:
    if not remote:
        return (serving / name).is_dir()
    try:
        _run(remote.exists(name))
    except (DeployError, OSError, subprocess.TimeoutExpired):
        return False
    return True
