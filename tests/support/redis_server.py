"""A throwaway Redis server for system tests (the Celery broker): started and removed here.

``redis_server()`` runs Debian's ``redis-server`` on 127.0.0.1 and a free port, with a
password, no persistence and its working folder in a temporary directory; on exit it
stops the server and deletes the folder. The ``redis`` fixture (import it into a test
module) skips, or with ``TDM_REQUIRE_SYSTEM_TESTS=1`` fails, when it is not installed.
"""

import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.dagster_processes import free_port, require_system, stop_process

START_ATTEMPTS = 3


@dataclass(frozen=True)
class RedisServer:
    port: int
    password: str
    log: Path

    def url(self, db: int = 0) -> str:
        """The broker URL, password included: a secret, passed only in the environment."""
        return f"redis://:{self.password}@127.0.0.1:{self.port}/{db}"


def _answers(port: int, password: str) -> bool:
    import redis

    try:
        return redis.Redis(host="127.0.0.1", port=port, password=password, socket_timeout=1).ping()
    except redis.RedisError:
        return False


@contextmanager
def redis_server(binary: str) -> Iterator[RedisServer]:
    folder = Path(tempfile.mkdtemp(prefix="tdm-redis-"))
    password = secrets.token_urlsafe(16)
    process = None
    try:
        for attempt in range(START_ATTEMPTS):  # another process may take the free port first
            port = free_port()
            log = folder / f"redis-{port}.log"
            config = f"bind 127.0.0.1\nport {port}\ndir {folder}\nsave \"\"\nappendonly no\nrequirepass {password}\nlogfile {log}\n"
            (folder / "redis.conf").write_text(config)
            (folder / "redis.conf").chmod(0o600)
            process = subprocess.Popen([binary, str(folder / "redis.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 20
            while process.poll() is None and time.monotonic() < deadline and not _answers(port, password):
                time.sleep(0.1)
            if process.poll() is None and _answers(port, password):
                break
            process.kill()
            process.wait()
            if attempt == START_ATTEMPTS - 1:
                raise RuntimeError(f"redis-server did not start:\n{log.read_text(errors='replace')[-3000:] if log.exists() else ''}")
        yield RedisServer(port, password, log)
    finally:
        if process is not None:
            stop_process(process, timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    """One throwaway Redis server for the test module (see the module docstring)."""
    binary = shutil.which("redis-server") or next((p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if Path(p).exists()), None)
    require_system(binary is not None, "redis-server")
    with redis_server(binary) as server:
        yield server
