"""A throwaway OpenSSH server on 127.0.0.1 for the remote-deploy tests.

``ssh_server(folder)`` generates a host key and a user key in ``folder``
(``ssh-keygen``), writes its own ``sshd_config`` (listening on 127.0.0.1 and a free port
only, keys and pid file in ``folder``, public-key login for the current user only,
``StrictModes no``, ``UsePAM no``) and runs ``/usr/sbin/sshd -D -f CONFIG -e`` until the
block exits. Clients use the ``ssh -F`` config it writes (port, identity, a known-hosts
file holding the host key, so host checking stays strict).

    with ssh_server(tmp_path) as ssh:
        subprocess.run(["ssh", "-F", ssh.client_config, ssh.host, "true"], check=True)

As root (a container), sshd needs its privilege-separation folder ``/run/sshd``, created
here if missing; the user must have a login shell. Tests skip when openssh-server,
the ssh client or rsync is missing, unless ``TDM_REQUIRE_SYSTEM_TESTS=1``.
"""

from __future__ import annotations

import getpass
import os
import pwd
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.dagster_processes import _stop, _tail, free_port, require_system, wait_for

SSHD = Path("/usr/sbin/sshd")
NO_LOGIN_SHELLS = ("nologin", "false")


@dataclass(frozen=True)
class SshServer:
    host: str
    """``user@127.0.0.1``: what ssh and rsync connect to."""
    port: int
    client_config: Path
    """An ``ssh -F`` file: port, identity and known-hosts file for ``host``."""
    folder: Path

    def run(self, script: str) -> subprocess.CompletedProcess:
        return subprocess.run(["ssh", "-F", str(self.client_config), self.host, script],
                              capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)  # fmt: skip


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "tdm-test", "-f", str(path)],
                   check=True, capture_output=True, timeout=30)  # fmt: skip


def _write_configs(folder: Path, port: int, user: str) -> tuple[Path, Path]:
    (folder / "authorized_keys").write_text((folder / "user_key.pub").read_text())
    host_key = (folder / "host_key.pub").read_text().split()
    (folder / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    server = folder / "sshd_config"
    server.write_text("\n".join([
        "ListenAddress 127.0.0.1", f"Port {port}", f'HostKey "{folder}/host_key"',
        f'AuthorizedKeysFile "{folder}/authorized_keys"', f'PidFile "{folder}/sshd.pid"',
        "StrictModes no", "UsePAM no", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes", "PermitRootLogin prohibit-password", f"AllowUsers {user}",
        "X11Forwarding no", "AllowTcpForwarding no", "LogLevel ERROR", "",
    ]))  # fmt: skip
    client = folder / "ssh_config"
    client.write_text("\n".join([
        "Host 127.0.0.1", f"  Port {port}", f"  User {user}", f'  IdentityFile "{folder}/user_key"',
        "  IdentitiesOnly yes", f'  UserKnownHostsFile "{folder}/known_hosts"', "  GlobalKnownHostsFile /dev/null",
        "  StrictHostKeyChecking yes", "  PreferredAuthentications publickey", "  ConnectTimeout 10",
        "  LogLevel ERROR", "",
    ]))  # fmt: skip
    return server, client


@contextmanager
def ssh_server(folder: Path) -> Iterator[SshServer]:
    """Run a private sshd for the current user until the block exits (see the module docstring)."""
    tools = SSHD.is_file() and all(shutil.which(name) for name in ("ssh", "ssh-keygen", "rsync"))
    require_system(tools, "openssh-server (with ssh, ssh-keygen) or rsync")
    user = getpass.getuser()
    if pwd.getpwnam(user).pw_shell.rsplit("/", 1)[-1] in NO_LOGIN_SHELLS:
        pytest.skip(f"user {user} has no login shell, so sshd cannot run commands as it")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    _keygen(folder / "host_key")
    _keygen(folder / "user_key")
    port = free_port()
    server_config, client_config = _write_configs(folder, port, user)
    log = folder / "sshd.log"
    with log.open("ab") as output:
        process = subprocess.Popen([str(SSHD), "-D", "-f", str(server_config), "-e"], stdout=output,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    server = SshServer(f"{user}@127.0.0.1", port, client_config, folder)
    try:
        def logged_in() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"sshd exited with {process.returncode}:\n{_tail(log)}")
            return server.run("true").returncode == 0

        wait_for(logged_in, timeout=30, interval=0.2, what=f"sshd on 127.0.0.1:{port}\n{_tail(log)}")
        yield server
    finally:
        _stop(process)
