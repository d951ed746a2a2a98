"""Deploy a checkpoint to a serving folder, verify it, roll back on failure.

``deploy(checkpoint_dir, serving_dir, score=..., server_url=...)``:

1. refuses a checkpoint whose score is lower than the deployed one's (unless ``force``),
   and a folder that is not a checkpoint (no parseable config.json or no weights file);
2. copies it into ``serving_dir/<name>`` atomically (copy to a dot-temp folder, rename;
   with ``remote_host``, rsync to a temp folder on that host and ``mv`` it there);
3. switches ``serving_dir/current`` to ``<name>`` atomically;
4. with ``server_url``: POST /admin/reload (with ``$TDM_SERVING_ADMIN_TOKEN``), then
   checks /health and one test completion report the new checkpoint; on any failure
   switches the pointer back (the previous model keeps serving: the server never swaps
   in a model that fails to load) and removes the copy;
5. records every attempt (checkpoint, score, latency, time, outcome, reason) in
   ``serving_dir/deployments.json``.

``rollback(serving_dir, server_url=None)`` returns to the previous successful deployment.

``deployments.json``::

    {"active": ["ckpt-a", "ckpt-b"],          # successful deployments, last = current
     "scores": {"ckpt-a": 0.5, "ckpt-b": 0.7},
     "history": [{"name", "checkpoint", "score", "time", "latency_s", "outcome",
                  "reason", "previous", "remote_host"}, ...]}

With ``remote_host`` the checkpoint, the pointer and the served folders live on that host
(``serving_dir`` is the path there); ``deployments.json`` and the deploy lock are kept at
the same path on this machine.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tdm_dagster.files.atomic import (
    atomic_write_json,
    atomic_write_text,
    fsync_tree,
    read_json,
)
from tdm_dagster.serving import ADMIN_TOKEN_ENV, DEPLOYMENTS_FILE, POINTER_FILE

WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "model.safetensors.index.json")
RELOAD_TIMEOUT_S = 600.0
REQUEST_TIMEOUT_S = 120.0


@dataclass
class DeployResult:
    deployed: bool
    reason: str
    latency_s: float
    previous: str | None
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class DeployError(RuntimeError):
    pass


# --------------------------------------------------------------------------- state


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def load_deployments(serving_dir: str | os.PathLike[str]) -> dict[str, Any]:
    state = read_json(Path(serving_dir) / DEPLOYMENTS_FILE, default=None) or {}
    state.setdefault("active", [])
    state.setdefault("scores", {})
    state.setdefault("history", [])
    return state


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


def _record(serving_dir: Path, state: dict[str, Any], entry: dict[str, Any]) -> None:
    state["history"].append(entry)
    atomic_write_json(serving_dir / DEPLOYMENTS_FILE, state)


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


# --------------------------------------------------------------------------- copying


def rsync_command(checkpoint_dir: str | os.PathLike[str], remote_host: str, remote_dir: str) -> list[str]:
    """``rsync`` argv copying the checkpoint's contents into ``remote_host:remote_dir/``."""
    source = str(Path(checkpoint_dir)).rstrip("/") + "/"
    return ["rsync", "-a", "--delete", "--mkpath", source, f"{remote_host}:{shlex.quote(remote_dir.rstrip('/'))}/"]


def ssh_command(remote_host: str, script: str) -> list[str]:
    return ["ssh", "-o", "BatchMode=yes", remote_host, script]


def remote_finish_command(remote_host: str, serving_dir: str, tmp_name: str, name: str) -> list[str]:
    """ssh argv that renames the rsynced temp folder into place on the remote host."""
    base = serving_dir.rstrip("/")
    tmp = shlex.quote(f"{base}/{tmp_name}")
    final = shlex.quote(f"{base}/{name}")
    return ssh_command(remote_host, f"test ! -e {final} && mv {tmp} {final}")


def remote_pointer_command(remote_host: str, serving_dir: str, name: str) -> list[str]:
    """ssh argv that switches ``serving_dir/current`` on the remote host atomically."""
    base = serving_dir.rstrip("/")
    tmp = shlex.quote(f"{base}/.{POINTER_FILE}.tmp")
    target = shlex.quote(f"{base}/{POINTER_FILE}")
    return ssh_command(remote_host, f"printf '%s\\n' {shlex.quote(name)} > {tmp} && sync && mv -f {tmp} {target}")


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=3600, check=False)
    if proc.returncode != 0:
        raise DeployError(f"{shlex.join(argv[:2])} ... failed ({proc.returncode}): {proc.stderr.strip()[:500]}")


def _copy_local(checkpoint_dir: Path, serving_dir: Path, name: str) -> None:
    tmp = serving_dir / f".{name}.tmp-{os.getpid()}-{time.monotonic_ns()}"
    try:
        shutil.copytree(checkpoint_dir, tmp, symlinks=False)
        fsync_tree(tmp)
        os.rename(tmp, serving_dir / name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _unique_name(checkpoint_dir: Path, serving_dir: Path, state: dict[str, Any]) -> str:
    base = checkpoint_dir.resolve().name.lstrip(".") or "checkpoint"
    taken = set(state["scores"]) | set(state["active"])
    name = base
    if (serving_dir / name).exists() or name in taken or name in {POINTER_FILE, DEPLOYMENTS_FILE}:
        name = f"{base}-{datetime.now(UTC).strftime('%Y%m%d_%H%M%S_%f')}"
    return name


def _switch_pointer(serving_dir: Path, name: str | None, remote_host: str | None) -> None:
    if remote_host:
        if name is None:
            _run(ssh_command(remote_host, f"rm -f {shlex.quote(str(serving_dir / POINTER_FILE))}"))
        else:
            _run(remote_pointer_command(remote_host, str(serving_dir), name))
        return
    if name is None:
        (serving_dir / POINTER_FILE).unlink(missing_ok=True)
    else:
        atomic_write_text(serving_dir / POINTER_FILE, name + "\n")


# --------------------------------------------------------------------------- verification


def reload_server(server_url: str) -> dict[str, Any]:
    """POST /admin/reload with the admin token from ``$TDM_SERVING_ADMIN_TOKEN`` (without
    it the server refuses, and the refusal's message is in the result)."""
    import httpx

    token = os.environ.get(ADMIN_TOKEN_ENV)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(server_url.rstrip("/") + "/admin/reload", headers=headers, timeout=RELOAD_TIMEOUT_S)
    try:
        body = response.json()
    except ValueError:
        body = {"raw": response.text[:500]}
    body["status_code"] = response.status_code
    return body


def reachable(url: str) -> str | None:
    """The server URL if a server answers there (then a deploy reloads and verifies it)."""
    import httpx

    try:
        httpx.get(f"{url}/health", timeout=2.0)
    except httpx.HTTPError:
        return None
    return url


def verify_server(server_url: str, name: str) -> str | None:
    """Reload the server and check it serves ``name``; a reason on failure, else None."""
    import httpx

    base = server_url.rstrip("/")
    try:
        reload = reload_server(base)
        if reload["status_code"] != 200 or reload.get("checkpoint") != name:
            error = reload.get("error") if isinstance(reload.get("error"), dict) else {}
            return f"server did not load {name}: {error.get('error') or error.get('message') or reload}"
        health = httpx.get(base + "/health", timeout=REQUEST_TIMEOUT_S)
        if health.status_code != 200 or health.json().get("model") != name:
            return f"/health does not report {name}: {health.status_code} {health.text[:300]}"
        completion = httpx.post(
            base + "/v1/chat/completions",
            json={"model": name, "messages": [{"role": "user", "content": "Say hello."}],
                  "max_tokens": 4, "temperature": 0},
            timeout=REQUEST_TIMEOUT_S,
        )
        if completion.status_code != 200:
            return f"test completion failed: {completion.status_code} {completion.text[:300]}"
        body = completion.json()
        if body.get("model") != name or not body.get("choices"):
            return f"test completion came from {body.get('model')!r}, not {name}"
    except httpx.HTTPError as exc:
        return f"server at {base} unreachable during verification: {type(exc).__name__}: {exc}"
    return None


# --------------------------------------------------------------------------- API


def deploy(
    checkpoint_dir: str | os.PathLike[str],
    serving_dir: str | os.PathLike[str],
    *,
    score: float | None,
    server_url: str | None,
    force: bool = False,
    remote_host: str | None = None,
) -> DeployResult:
    """Deploy ``checkpoint_dir`` into ``serving_dir``; see the module docstring."""
    started = time.monotonic()
    serving = Path(serving_dir)
    source = Path(checkpoint_dir)
    with _deploy_lock(serving):
        state = load_deployments(serving)
        previous = state["active"][-1] if remote_host else current_deployment(serving)
        entry: dict[str, Any] = {
            "name": None, "checkpoint": str(source.resolve()), "score": score, "time": _now(),
            "previous": previous, "remote_host": remote_host, "forced": force,
        }

        def finish(deployed: bool, outcome: str, reason: str, name: str | None) -> DeployResult:
            latency = round(time.monotonic() - started, 3)
            entry.update(name=name, outcome=outcome, reason=reason, latency_s=latency)
            _record(serving, state, entry)
            return DeployResult(deployed=deployed, reason=reason, latency_s=latency, previous=previous, name=name)

        problem = validate_checkpoint(source)
        if problem:
            return finish(False, "refused", f"not a valid checkpoint: {problem}", None)
        if not force:
            refusal = _score_refusal(state, previous, score)
            if refusal:
                return finish(False, "refused", refusal, None)

        name = _unique_name(source, serving, state)
        try:
            if remote_host:
                tmp_name = f".{name}.tmp-{os.getpid()}"
                _run(rsync_command(source, remote_host, f"{str(serving).rstrip('/')}/{tmp_name}"))
                _run(remote_finish_command(remote_host, str(serving), tmp_name, name))
            else:
                _copy_local(source, serving, name)
        except (OSError, DeployError, subprocess.TimeoutExpired) as exc:
            return finish(False, "failed", f"copy failed: {exc}", None)

        _switch_pointer(serving, name, remote_host)
        problem = verify_server(server_url, name) if server_url else None
        if problem:
            _switch_pointer(serving, previous, remote_host)
            revert_note = ""
            if server_url and previous is not None:
                try:
                    reload_server(server_url)
                except Exception as exc:  # noqa: BLE001 - report, the pointer is already back
                    revert_note = f"; reload after switching back failed: {exc}"
            if not remote_host:
                shutil.rmtree(serving / name, ignore_errors=True)
            return finish(False, "failed", f"{problem}; switched back to {previous}{revert_note}", name)

        state["active"].append(name)
        state["scores"][name] = score
        reason = "deployed and verified" if server_url else "deployed (not verified: no server_url)"
        return finish(True, "deployed", reason, name)


def rollback(serving_dir: str | os.PathLike[str], server_url: str | None = None,
             *, remote_host: str | None = None) -> DeployResult:
    """Return to the previous successful deployment (the one before the current)."""
    started = time.monotonic()
    serving = Path(serving_dir)
    with _deploy_lock(serving):
        state = load_deployments(serving)
        current = state["active"][-1] if state["active"] else None
        entry: dict[str, Any] = {"name": None, "checkpoint": None, "score": None, "time": _now(),
                                 "previous": current, "remote_host": remote_host, "forced": False}

        def finish(deployed: bool, outcome: str, reason: str, name: str | None) -> DeployResult:
            latency = round(time.monotonic() - started, 3)
            entry.update(name=name, outcome=outcome, reason=reason, latency_s=latency)
            _record(serving, state, entry)
            return DeployResult(deployed=deployed, reason=reason, latency_s=latency, previous=current, name=name)

        if len(state["active"]) < 2:
            return finish(False, "refused", "no previous deployment to roll back to", None)
        target = state["active"][-2]
        entry["score"] = state["scores"].get(target)
        if not remote_host and not (serving / target).is_dir():
            return finish(False, "refused", f"previous deployment folder {target} is gone", target)
        _switch_pointer(serving, target, remote_host)
        problem = verify_server(server_url, target) if server_url else None
        if problem:
            _switch_pointer(serving, current, remote_host)
            if server_url:
                with contextlib.suppress(Exception):
                    reload_server(server_url)
            return finish(False, "failed", f"{problem}; stayed on {current}", target)
        state["active"].pop()
        return finish(True, "rollback", f"rolled back from {current} to {target}", target)
