"""How ``tdm validate`` finds a ``tdm api`` running on this machine over the same home,
with no ``TDM_API_URL`` or ``TDM_API_KEY`` to set.

At start the service makes a read key that only it accepts (never in the key file), writes
it to ``home.api_local_key_file`` (mode 0600: readable by the owner of the home, who can
read all its data anyway) and writes ``home.api_running_file``: its URL, its pid, the key
file's name (never the key) and a fingerprint of its effective config. It removes both
when it stops.

:func:`find_local_service` uses the service only when all of this holds, else returns None
and the file is validated in-process, quietly: the file is there and readable, its pid is
alive, the config it validates with is the one this process loaded (same file, same env
overrides: the same verdict), the key file is readable, and ``/healthz`` answers within
:data:`PROBE_TIMEOUT_S`. The cost when no service runs is one failed ``open``; with a stale
file (the process was killed), one ``kill(pid, 0)``; with a live one, one loopback GET.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from tdm_dagster.config.settings import TdmConfig, describe
from tdm_dagster.files.atomic import atomic_write_json, atomic_write_text, read_json
from tdm_dagster.home import TdmHome

LOCAL_KEY_NAME = "local-validate"
PROBE_TIMEOUT_S = 0.5
"""How long ``/healthz`` may take to answer before the service is passed over."""


@dataclass(frozen=True)
class LocalService:
    url: str
    key: str


def config_fingerprint(config: TdmConfig) -> str:
    """sha256 of the effective config (file and env overrides), as ``tdm config --json`` shows it."""
    return hashlib.sha256(json.dumps(describe(config), sort_keys=True, default=str).encode()).hexdigest()


def _connect_host(host: str) -> str:
    """Where this machine reaches a service bound to ``host`` (a wildcard: loopback)."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def announce(home: TdmHome, host: str, port: int, config: TdmConfig, key: str) -> None:
    """Say that this process serves ``home`` at ``host:port`` with the read key ``key``."""
    home.api_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(home.api_local_key_file, key)  # mkstemp: 0600
    atomic_write_json(home.api_running_file, {
        "url": f"http://{_connect_host(host)}:{port}", "pid": os.getpid(), "key_file": home.api_local_key_file.name,
        "config_sha256": config_fingerprint(config), "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    })  # fmt: skip


def withdraw(home: TdmHome) -> None:
    """Remove what :func:`announce` wrote, unless another service has announced since."""
    try:
        if (read_json(home.api_running_file) or {}).get("pid") != os.getpid():
            return
    except (OSError, ValueError):
        return
    for path in (home.api_running_file, home.api_local_key_file):
        path.unlink(missing_ok=True)


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except OSError:  # gone, or another user's process (whose key file we could not read)
        return False
    return True


def find_local_service(home: TdmHome, config: TdmConfig) -> LocalService | None:
    """The ``tdm api`` serving ``home`` here with ``config``, answering now; else None."""
    try:
        running = read_json(home.api_running_file)
    except (OSError, ValueError):
        return None
    if not isinstance(running, dict) or not _alive(running.get("pid")):
        return None
    if running.get("config_sha256") != config_fingerprint(config) or running.get("key_file") != home.api_local_key_file.name:
        return None
    try:
        key = home.api_local_key_file.read_text().strip()
    except OSError:
        return None
    url = str(running.get("url", ""))
    return LocalService(url, key) if key and _answers(url) else None


def _answers(url: str) -> bool:
    """Whether ``url``'s ``/healthz`` answers 200 within :data:`PROBE_TIMEOUT_S` (the
    standard library's client: no TLS context to build, which costs httpx ~0.1 s)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        return False
    connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=PROBE_TIMEOUT_S)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()
