"""Deploying to another machine: ``serving.remote_host`` parsed, and the ssh and rsync
command lines that copy a checkpoint there, switch its pointer and clean up.

``serving.remote_host`` is ``[user@]host:/absolute/path`` (an IPv6 address in brackets:
``me@[::1]:/srv/serving``): ``[user@]host`` is what ssh connects to, ``/absolute/path``
the serving folder on that host (what ``tdm serve --dir`` reads there).

ssh always runs with ``SSH_OPTIONS`` (``BatchMode=yes``: a deploy never waits at a
password prompt) and, with ``serving.ssh_config``, ``-F`` that file (port, identity,
known-hosts file...); without it, ssh reads the user's own ``~/.ssh/config``. rsync
uses the same ssh command line (``rsync -e``).

No shell may see a path as code. rsync before 3.2.4 handed the remote path (and
``--link-dest``) to the remote shell, so ``/srv/x$(touch pwned)`` ran ``touch`` there;
so (1) ``serving.remote_host`` is refused unless its user, host and path are made of
``SAFE_PATH_CHARS`` (no shell metacharacter, no whitespace), and (2) rsync always runs
with ``--protect-args`` (``-s``: paths and options travel in rsync's protocol, never on
the remote command line; any rsync >= 3.0, and this module requires ``MIN_RSYNC``
for ``--mkpath``). The scripts run with ``ssh host SCRIPT`` are parsed by the remote
shell, so every path in them is quoted as well.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tdm_dagster.serving import POINTER_FILE

SSH_OPTIONS = ("-o", "BatchMode=yes")
"""Options every deploy's ssh gets, before ``-F serving.ssh_config``."""
REMOTE_FORMAT = "[user@]host:/absolute/path"
SAFE_PATH_CHARS = "letters, digits and . _ - + @ % = , ~ : /"
"""What the path of ``serving.remote_host`` may contain: nothing a shell treats specially."""
MIN_RSYNC = (3, 2, 3)
"""``--mkpath`` (creating the deployment folder's parents) came in rsync 3.2.3."""
_SPLIT = re.compile(r"^(?P<host>(?:[^@/:\[]+@)?(?:\[[^\]]*\]|[^:\[\]]*)):(?P<path>.*)$", re.DOTALL)
_HOST = re.compile(r"^(?:[A-Za-z0-9_.][A-Za-z0-9_.-]*@)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.][A-Za-z0-9_.-]*)$")
_UNSAFE_PATH_CHAR = re.compile(r"[^\w./@%+=,~:-]")
_UNSAFE_HOST_CHAR = re.compile(r"[^A-Za-z0-9_.@:\[\]-]")
_RSYNC_VERSION = re.compile(r"rsync\s+version\s+v?(\d+)\.(\d+)\.(\d+)")


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
        times, and rsync links only files whose kept attributes all match.

        ``--protect-args``: the paths reach the host through rsync's protocol, never its
        shell (see the module docstring)."""
        argv = ["rsync", "--protect-args", "-rlp", "--checksum", "--delete", "--mkpath", "-e", shlex.join(self.ssh_argv())]
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
    """(host, path), or why ``value`` is not ``[user@]host:/absolute/path`` made of safe
    characters (the first unsafe one is named)."""
    match = _SPLIT.match(value.strip())
    if not match:
        return "no ':/path' part"
    host, path = match["host"], match["path"]
    unsafe = _UNSAFE_HOST_CHAR.search(host)
    if unsafe:
        return f"the host {host!r} contains {unsafe.group()!r}: shell metacharacters and whitespace are refused"
    if not _HOST.match(host):
        return f"{host!r} is not a host ([user@]host)"
    if not path.startswith("/"):
        return f"the path {path!r} is not absolute"
    unsafe = _UNSAFE_PATH_CHAR.search(path)
    if unsafe:
        return (f"the path {path!r} contains {unsafe.group()!r}: shell metacharacters and whitespace are refused "
                f"(allowed: {SAFE_PATH_CHARS})")
    if any(part in {".", ".."} for part in path.split("/")):
        return f"the path {path!r} may not contain . or .. parts"
    return host, path


def rsync_version(version_output: str) -> tuple[int, int, int] | None:
    """(major, minor, patch) from ``rsync --version``'s first line, or None."""
    match = _RSYNC_VERSION.search(version_output)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def rsync_problem() -> str | None:
    """Why the rsync here cannot deploy (missing, or older than ``MIN_RSYNC``), or None."""
    found = shutil.which("rsync")
    wanted = ".".join(map(str, MIN_RSYNC))
    if found is None:
        return f"rsync is not installed here (not on PATH): a remote deploy needs rsync >= {wanted} here and on the host"
    try:
        output = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=30, check=False,
                                stdin=subprocess.DEVNULL).stdout  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{found} --version failed: {exc}"
    version = rsync_version(output)
    if version is None:
        return f"{found} --version does not say which rsync it is: a remote deploy needs rsync >= {wanted}"
    if version < MIN_RSYNC:
        return f"{found} is rsync {'.'.join(map(str, version))}: a remote deploy needs rsync >= {wanted} (--mkpath)"
    return None


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
