"""Deploying to another machine: ``serving.remote_host`` parsed, and the ssh and rsync
command lines that copy a checkpoint there, switch its pointer and clean up.

``serving.remote_host`` is ``[user@]host:/absolute/path`` (an IPv6 address in brackets:
``me@[::1]:/srv/serving``): ``[user@]host`` is what ssh connects to, ``/absolute/path``
the serving folder on that host (what ``tdm serve --dir`` reads there).

ssh always runs with ``SSH_OPTIONS`` (``BatchMode=yes``: a deploy never waits at a
password prompt) and, with ``serving.ssh_config``, ``-F`` that file (port, identity,
known-hosts file...); without it, ssh reads the user's own ``~/.ssh/config``. rsync
uses the same ssh command line (``rsync -e``).

rsync 3.2.4 and later pass remote paths to the other side intact, so the paths in
rsync's arguments are not shell-quoted; the scripts run with ``ssh host SCRIPT`` are
parsed by the remote shell, so every path in them is.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from tdm_dagster.serving import POINTER_FILE

SSH_OPTIONS = ("-o", "BatchMode=yes")
"""Options every deploy's ssh gets, before ``-F serving.ssh_config``."""
REMOTE_FORMAT = "[user@]host:/absolute/path"
_SPLIT = re.compile(r"^(?P<host>(?:[^@\s/:\[]+@)?(?:\[[^\]]*\]|[^:\[\]]*)):(?P<path>.*)$", re.DOTALL)
_HOST = re.compile(r"^(?:[^@\s/:]+@)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)$")


class RemoteHostError(ValueError):
    """``serving.remote_host`` is not ``[user@]host:/absolute/path``."""


@dataclass(frozen=True)
class RemoteTarget:
    host: str
    """What ssh connects to: ``host`` or ``user@host``."""
    path: str
    """The serving folder on that host (absolute, no trailing slash)."""
    ssh_config: str | None = None

    def __str__(self) -> str:
        return f"{self.host}:{self.path}"

    def ssh_argv(self) -> list[str]:
        argv = ["ssh", *SSH_OPTIONS]
        if self.ssh_config:
            argv += ["-F", str(Path(self.ssh_config).expanduser())]
        return argv

    def ssh(self, script: str) -> list[str]:
        """argv running the shell ``script`` on the host (ssh takes an IPv6 address
        without the brackets rsync needs)."""
        return [*self.ssh_argv(), self.host.replace("[", "").replace("]", ""), script]

    def folder(self, name: str) -> str:
        return f"{self.path}/{name}"

    def rsync(self, source: str | Path, dest_name: str, link_dest: str | None) -> list[str]:
        """argv copying the checkpoint folder's contents into ``path/dest_name/`` on the
        host; files equal to those of the ``link_dest`` deployment there become hard
        links to them instead of copies (``--link-dest``).

        Files are compared by content (``--checksum``) and modification times are not
        kept: two checkpoints' identical tokenizer files were written at different
        times, and rsync links only files whose kept attributes all match."""
        argv = ["rsync", "-rlp", "--checksum", "--delete", "--mkpath", "-e", shlex.join(self.ssh_argv())]
        if link_dest:
            argv.append(f"--link-dest={self.folder(link_dest)}")
        return [*argv, str(source).rstrip("/") + "/", f"{self.host}:{self.folder(dest_name)}/"]

    def finish(self, tmp_name: str, name: str) -> list[str]:
        """argv renaming the copied temp folder to its deployment name (never over one)."""
        tmp, final = shlex.quote(self.folder(tmp_name)), shlex.quote(self.folder(name))
        return self.ssh(f"test ! -e {final} && mv {tmp} {final}")

    def switch_pointer(self, name: str | None) -> list[str]:
        """argv pointing ``path/current`` at ``name`` atomically (temp file, sync, rename),
        or removing it for None."""
        target = shlex.quote(self.folder(POINTER_FILE))
        if name is None:
            return self.ssh(f"rm -f {target}")
        tmp = shlex.quote(self.folder(f".{POINTER_FILE}.tmp"))
        return self.ssh(f"printf '%s\\n' {shlex.quote(name)} > {tmp} && sync && mv -f {tmp} {target}")

    def remove(self, name: str) -> list[str]:
        return self.ssh(f"rm -rf {shlex.quote(self.folder(name))}")

    def exists(self, name: str) -> list[str]:
        return self.ssh(f"test -d {shlex.quote(self.folder(name))}")


def _split(value: str) -> tuple[str, str] | str:
    """(host, path), or why ``value`` is not ``[user@]host:/absolute/path``."""
    match = _SPLIT.match(value.strip())
    if not match:
        return "no ':/path' part"
    host, path = match["host"], match["path"]
    if not _HOST.match(host) or host.startswith("-"):
        return f"{host!r} is not a host ([user@]host)"
    if not path.startswith("/"):
        return f"the path {path!r} is not absolute"
    if any(part in {".", ".."} for part in path.split("/")) or "\n" in path:
        return f"the path {path!r} may not contain . or .. parts"
    return host, path


def parse_remote_host(value: str, ssh_config: str | None = None) -> RemoteTarget:
    """``[user@]host:/absolute/path`` as a target; ``RemoteHostError`` saying what is wrong."""
    parts = _split(value)
    if isinstance(parts, str):
        raise RemoteHostError(f"serving.remote_host {value!r}: {parts}; expected {REMOTE_FORMAT}")
    host, path = parts
    return RemoteTarget(host=host, path=path.rstrip("/") or "/", ssh_config=ssh_config)


def remote_host_problem(value: object) -> str | None:
    """For the config check: None for a good ``serving.remote_host`` value, else what is expected."""
    if not isinstance(value, str):
        return REMOTE_FORMAT
    parts = _split(value)
    return f"{REMOTE_FORMAT} ({parts})" if isinstance(parts, str) else None


def remote_target(remote_host: str | None, ssh_config: str | None) -> RemoteTarget | None:
    """The target ``serving.remote_host`` / ``serving.ssh_config`` name (None: deploy here)."""
    return parse_remote_host(remote_host, ssh_config) if remote_host else None
