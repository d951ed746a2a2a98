"""Checkpoints on a remote: the trainer box pushes them, the serving box pulls them.

A checkpoint (``$TDM_HOME/training/<run>/checkpoints/checkpoint-N``) travels as its files,
each an object named by its sha256 (a tokenizer file shared by every checkpoint is sent
once), and one manifest, ``checkpoints/<run>/checkpoint-N.json``, created after every
file is stored: a checkpoint is on the remote complete or not at all.

A pull assembles the files in ``training/<run>/.checkpoint-N.pull.tmp`` (each re-hashed
as it lands; the folder is locked, and files already there from an interrupted pull are
kept once re-hashed), then renames it into place: the local checkpoint, too, appears
complete or not at all, and what the trainer's :func:`~tdm_dagster.training.checkpoints.list_checkpoints`
offers is only ever a complete one.

``deployments/current.json`` names the checkpoint the trainer box deployed last, with its
score, so the serving box can pull and deploy the same one (``tdm checkpoints pull --deployed``).
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import time
from pathlib import Path, PurePosixPath
from typing import Any

from tdm_dagster.files.atomic import fsync_path, fsync_tree
from tdm_dagster.home import TdmHome
from tdm_dagster.progress import BYTES, Bars, no_progress
from tdm_dagster.storage.remote import OBJECT_ID, Remote, RemoteConflictError, RemoteCorruptError, RemoteError, Transfer, file_sha256, require
from tdm_dagster.training.checkpoints import CHECKPOINTS_DIR, META_FILE, CheckpointInfo, latest, list_checkpoints, read_meta

MANIFEST_KIND = "tdm.checkpoint/1"
DEPLOYMENT = "deployments/current.json"
_RUN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_CHECKPOINT = re.compile(r"^checkpoint-\d{1,12}$")


def check_run(run: str) -> str:
    if not isinstance(run, str) or not _RUN.match(run) or ".." in run:
        raise RemoteError(f"{run!r} is not a training run name (the checkpoint partition key, e.g. ckpt_20260101_120000)")
    return run


def _manifest_path(run: str, name: str) -> str:
    return f"checkpoints/{run}/{name}.json"


def _local(home: TdmHome, run: str, name: str | None) -> CheckpointInfo:
    root = home.training_dir / check_run(run)
    found = latest(root) if name is None else next((c for c in list_checkpoints(root) if c.name == name), None)
    if found is None:
        raise RemoteError(f"no complete checkpoint {name or ''} of run {run} under {root}".replace("  ", " "))
    return found


def push_checkpoint(home: TdmHome, remote: Remote, run: str, name: str | None = None, progress: Bars = no_progress) -> Transfer:
    """Send checkpoint ``name`` of ``run`` (None: its latest) to ``remote``."""
    started = time.monotonic()
    checkpoint = _local(home, run, name)
    files = {
        path.relative_to(checkpoint.path).as_posix(): [file_sha256(path), path.stat().st_size]
        for path in sorted(checkpoint.path.rglob("*")) if path.is_file()
    }  # fmt: skip
    transfer = Transfer(f"{run}/{checkpoint.name}", remote.url)
    stored = remote.stored_objects()
    missing = {sha: checkpoint.path / rel for rel, (sha, size) in files.items() if stored.get(sha) != size}
    with progress(f"push {checkpoint.name}", sum(path.stat().st_size for path in missing.values()), unit=BYTES) as sent:
        transfer.bytes = remote.send([(path, sha) for sha, path in missing.items()], sent)
    transfer.objects, transfer.objects_present = len(missing), len({sha for sha, _ in files.values()}) - len(missing)
    body = {"kind": MANIFEST_KIND, "run": run, "name": checkpoint.name, "meta": read_meta(checkpoint.path), "files": files}
    theirs = remote.create_manifest(_manifest_path(run, checkpoint.name), body)
    if theirs is not None and theirs.get("files") != files:
        raise RemoteConflictError(f"{remote.url}: checkpoint {run}/{checkpoint.name} there has other files; it was not replaced")
    (transfer.already if theirs is not None else transfer.moved).append(checkpoint.name)
    transfer.seconds = time.monotonic() - started
    return transfer


def remote_checkpoints(remote: Remote) -> dict[str, list[str]]:
    """Run -> its complete checkpoints on the remote, by step."""
    found: dict[str, list[str]] = {}
    for path in remote.manifests("checkpoints"):
        parts = path.split("/")
        if len(parts) == 3 and _RUN.match(parts[1]) and _CHECKPOINT.match(parts[2].removesuffix(".json")):
            found.setdefault(parts[1], []).append(parts[2].removesuffix(".json"))
    return {run: sorted(names, key=lambda n: int(n.split("-")[1])) for run, names in sorted(found.items())}


def pull_checkpoint(home: TdmHome, remote: Remote, run: str, name: str | None = None, progress: Bars = no_progress) -> tuple[CheckpointInfo, Transfer]:
    """Receive checkpoint ``name`` of ``run`` (None: the remote's latest) into this home."""
    started = time.monotonic()
    available = remote_checkpoints(remote).get(check_run(run), [])
    name = name or (available[-1] if available else None)
    if name not in available:
        raise RemoteError(f"{remote.url} holds no checkpoint {name or ''} of run {run}".replace("  ", " ") + (f" (it has {', '.join(available)})" if available else ""))
    relative = _manifest_path(run, name)
    manifest = remote.read_manifest(relative) or {}
    files = _files(remote, relative, manifest, name)
    transfer = Transfer(f"{run}/{name}", remote.url)
    root = home.training_dir / run
    final = root / CHECKPOINTS_DIR / name
    staging = root / f".{name}.pull.tmp"
    staging.mkdir(parents=True, exist_ok=True)
    lock = os.open(staging, os.O_RDONLY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one pull assembles it; a second waits, then finds it done
        if final.is_dir():
            transfer.already.append(name)
        else:
            for leftover in [p for p in staging.rglob("*") if p.is_file() and p.relative_to(staging).as_posix() not in files]:
                leftover.unlink()  # a temp file of a download killed half way
            wanted = [(sha, size, staging / rel) for rel, (sha, size) in files.items() if not _holds(staging / rel, sha, size)]
            with progress(f"pull {name}", sum(size for _, size, _ in wanted), unit=BYTES) as received:
                transfer.bytes = remote.receive(wanted, received)
            transfer.objects, transfer.objects_present = len(wanted), len(files) - len(wanted)
            fsync_tree(staging)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.rename(staging, final)
            fsync_path(final.parent)
            transfer.moved.append(name)
    finally:
        os.close(lock)
    if transfer.already:
        shutil.rmtree(staging, ignore_errors=True)
    transfer.seconds = time.monotonic() - started
    return next(c for c in list_checkpoints(root) if c.name == name), transfer


def _files(remote: Remote, relative: str, manifest: dict[str, Any], name: str) -> dict[str, tuple[str, int]]:
    """The manifest's files, each path a plain relative path (it becomes a local one)."""
    try:
        require(manifest["kind"] == MANIFEST_KIND and manifest["name"] == name, "kind and name")
        files = {str(rel): (str(sha), int(size)) for rel, (sha, size) in manifest["files"].items()}
        for rel, (sha, _size) in files.items():
            parts = PurePosixPath(rel).parts
            require(OBJECT_ID.match(sha), f"object id of {rel!r}")
            require(parts and not rel.startswith("/") and ".." not in parts and "\\" not in rel, f"path {rel!r}")
        require(META_FILE in files, META_FILE)
    except (KeyError, TypeError, ValueError) as error:
        raise RemoteCorruptError(f"{remote.shown(remote.path(relative))} is not a checkpoint manifest ({type(error).__name__}: {error})") from None
    return files


def _holds(path: Path, sha: str, size: int) -> bool:
    """Whether an interrupted pull already left this file, complete."""
    return path.is_file() and path.stat().st_size == size and file_sha256(path) == sha


def record_deployment(remote: Remote, run: str, name: str, score: float | None) -> None:
    """Name checkpoint ``run/name`` (already pushed) as the deployed one, for the serving box."""
    if remote.read_manifest(_manifest_path(check_run(run), name)) is None:
        raise RemoteError(f"{remote.url}: checkpoint {run}/{name} is not there; push it first")
    remote.replace_manifest(DEPLOYMENT, {"run": run, "name": name, "score": score, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})


def deployed(remote: Remote) -> dict[str, Any] | None:
    """What ``deployments/current.json`` names (run, name, score), or None."""
    return remote.read_manifest(DEPLOYMENT)


def publish(home: TdmHome, storage: Any, run: str, name: str, *, deployed_score: float | None = None, deploying: bool = False) -> str:
    """What the trainer box does with ``storage.push_checkpoints`` on: push checkpoint
    ``run/name`` to ``storage.remote`` and, once deployed here (``deploying``), name it
    the deployed one there. Returns a line for the run's log; raises ``RemoteError``."""
    if not storage.remote:
        raise RemoteError("storage.push_checkpoints is on but storage.remote is not set")
    remote = Remote(storage.remote, endpoint_url=storage.endpoint_url)
    transfer = push_checkpoint(home, remote, run, name)
    line = f"pushed {run}/{name} to {remote.url}: {transfer.objects} file(s), {transfer.bytes:,} bytes sent"
    if deploying:
        record_deployment(remote, run, name, deployed_score)
        line += "; recorded as deployed there"
    return line
