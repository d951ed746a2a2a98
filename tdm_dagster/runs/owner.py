"""Which process runs a Dagster run, and whether that process is still there.

``tdm generate`` and ``dagster job execute`` run jobs in their own process
(``execute_in_process``), so Dagster's run monitoring, which watches the workers the daemon
launches, never learns that such a process was killed: its run stays STARTED for ever. Each
such run therefore carries :func:`owner_tags` (pid, host, and when the process started, so a
reused pid is not mistaken for the original), and :func:`owner_gone` says, from those tags,
whether the process is gone. Plain Python: no Dagster here.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path

PID_TAG = "tdm/pid"
HOST_TAG = "tdm/host"
PROCESS_START_TAG = "tdm/process_start"
_PROC = Path("/proc")


def _boot_id() -> str:
    try:
        return (_PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _process_state(pid: int) -> tuple[str, str] | None:
    """``(state letter, start time)`` of ``pid`` from ``/proc``; the start time (clock ticks
    after boot, with the boot's id) tells two processes with one pid apart. None when
    there is no such process; ``("", "")`` where ``/proc`` does not exist (not Linux)."""
    if not _PROC.is_dir():
        return ("", "")
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return ("", "")
    fields = stat.rsplit(")", 1)[1].split()  # the command name, in parentheses, may hold spaces
    return fields[0], f"{_boot_id()}/{fields[19]}"


def owner_tags() -> dict[str, str]:
    """Tags naming this process, for a run it executes itself."""
    state = _process_state(os.getpid())
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname(), PROCESS_START_TAG: state[1] if state else ""}


def owner_gone(tags: Mapping[str, str]) -> str | None:
    """Why the process named by ``tags`` no longer runs the run, or None when it is alive
    or this cannot be told here (no tags: the daemon launched it; another host)."""
    try:
        pid = int(tags[PID_TAG])
    except (KeyError, ValueError):
        return None
    host = tags.get(HOST_TAG)
    if host != socket.gethostname():
        return None
    where = f"process {pid} on {host}"
    state = _process_state(pid)
    if state is None:
        return f"{where} is gone (killed or crashed)"
    letter, started = state
    if letter in ("Z", "X"):
        return f"{where} is gone (killed or crashed; exited, not yet reaped)"
    recorded = tags.get(PROCESS_START_TAG)
    if recorded and started and started != recorded:
        return f"{where} is gone (killed or crashed; the pid now belongs to another process)"
    if not letter:  # no /proc: ask the kernel whether the pid exists at all
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return f"{where} is gone (killed or crashed)"
        except PermissionError:
            return None
    return None
