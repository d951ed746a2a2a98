"""A throwaway PostgreSQL server for system tests: its own cluster, started and removed here.

``postgres_cluster()`` runs ``initdb`` in a fresh temporary folder and starts the server
with ``pg_ctl`` on a free port, listening on 127.0.0.1 only (no TCP elsewhere, its unix
socket inside that folder), with password (scram-sha-256) authentication for every
connection. On exit it stops the server and deletes the folder. It never uses or touches
another cluster (such as the system one on port 5432).

PostgreSQL refuses to run as root, so as root the binaries run as the ``postgres`` user
(``runuser -u postgres --``) in a folder that user owns; pytest's ``tmp_path`` is not
used because its parents are mode 700 for root. Otherwise they run as the current user.

    with postgres_cluster() as pg:
        db = pg.create_database("dagster_test")
        dagster_yaml = pg.dagster_storage_yaml(db, password_env="DAGSTER_PG_PASSWORD")

The session-scoped ``postgres`` fixture starts one cluster for the whole test run and
skips (or, with ``TDM_REQUIRE_SYSTEM_TESTS=1``, fails) the tests that use it when the
PostgreSQL server binaries are not installed. Import it into a test module to use it.
"""

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.dagster_processes import free_port, require_system

SERVICE_USER = "postgres"
"""The OS user the server runs as when the tests run as root."""
SUPERUSER = "tdm_test"
START_ATTEMPTS = 3


def find_bin_dir() -> Path | None:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``: ``$PG_BIN``, the newest
    Debian ``/usr/lib/postgresql/N/bin``, or the ``PATH``; ``None`` when not installed."""
    candidates = [os.environ.get("PG_BIN", "")]
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: _version(p.parent.name), reverse=True)
    candidates += [str(p) for p in versions]
    on_path = shutil.which("initdb")
    candidates.append(str(Path(on_path).parent) if on_path else "")
    for folder in filter(None, candidates):
        if all((Path(folder) / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return Path(folder)
    return None


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str
    folder: Path

    def connect(self, dbname: str = "postgres"):
        import psycopg2

        return psycopg2.connect(host=self.host, port=self.port, user=self.user, password=self.password, dbname=dbname, connect_timeout=10)

    def create_database(self, name: str) -> str:
        """A new, empty database ``name`` (letters, digits and ``_`` only)."""
        if not name.replace("_", "").isalnum():
            raise ValueError(f"not a plain database name: {name!r}")
        connection = self.connect()
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        return name

    def rows_containing(self, db_name: str, text: str) -> list[tuple[str, str]]:
        """(table, row) of every row of every table in database ``db_name`` whose text has
        ``text``: where a secret must not be, look everywhere."""
        connection = self.connect(db_name)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
                tables = [name for (name,) in cursor.fetchall()]
                assert "runs" in tables and "event_logs" in tables, tables
                found = []
                for table in tables:
                    cursor.execute(f'SELECT * FROM "{table}"')
                    found += [(table, repr(row)[:200]) for row in cursor.fetchall() if text in repr(row)]
                return found
        finally:
            connection.close()

    def dagster_storage_yaml(self, db_name: str, *, password_env: str) -> str:
        """The ``storage:`` section of a ``dagster.yaml`` for database ``db_name``, as the
        docs page "Past one box" shows it; the password is read from the env var ``password_env``, never
        written in the file. The scheme names the driver dagster-postgres speaks
        (psycopg2): SQLAlchemy 2.1 would map a bare ``postgresql://`` to psycopg 3."""
        return (
            "storage:\n"
            "  postgres:\n"
            "    postgres_db:\n"
            f"      username: {self.user}\n"
            "      password:\n"
            f"        env: {password_env}\n"
            f"      hostname: {self.host}\n"
            f"      db_name: {db_name}\n"
            f"      port: {self.port}\n"
            "      scheme: postgresql+psycopg2\n"
        )


def _as_owner(command: list[str]) -> list[str]:
    return ["runuser", "-u", SERVICE_USER, "--", *command] if os.geteuid() == 0 else command


def _run(command: list[str], what: str, timeout: float = 120) -> None:
    completed = subprocess.run(_as_owner(command), capture_output=True, text=True, timeout=timeout)
    if completed.returncode != 0:
        raise RuntimeError(f"{what} failed ({completed.returncode}):\n{completed.stdout[-2000:]}\n{completed.stderr[-2000:]}")


@contextmanager
def postgres_cluster(bin_dir: Path | None = None) -> Iterator[PostgresServer]:
    """Start a new cluster on 127.0.0.1 and a free port; stop and delete it on exit."""
    bin_dir = bin_dir or find_bin_dir()
    if bin_dir is None:
        raise FileNotFoundError("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found")
    folder = Path(tempfile.mkdtemp(prefix="tdm-postgres-"))
    data = folder / "data"
    log = folder / "server.log"
    password = secrets.token_urlsafe(16)
    started = False
    try:
        password_file = folder / "password"
        password_file.write_text(password + "\n")
        password_file.chmod(0o600)
        if os.geteuid() == 0:
            shutil.chown(folder, SERVICE_USER, SERVICE_USER)
            shutil.chown(password_file, SERVICE_USER, SERVICE_USER)
        folder.chmod(0o700)
        _run([str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--pwfile", str(password_file),
              "--auth", "scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync"], "initdb")  # fmt: skip
        password_file.unlink()
        for attempt in range(START_ATTEMPTS):  # another process may take the free port first
            port = free_port()
            options = (f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={folder} "
                       "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200")  # fmt: skip
            try:
                _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o", options, "start"], "pg_ctl start")
                started = True
                break
            except RuntimeError as exc:
                if attempt == START_ATTEMPTS - 1:
                    server_log = log.read_text(errors="replace")[-3000:] if log.exists() else ""
                    raise RuntimeError(f"{exc}\n{server_log}") from None
        yield PostgresServer("127.0.0.1", port, SUPERUSER, password, folder)
    finally:
        if started:
            _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], "pg_ctl stop")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the test session (see the module docstring)."""
    bin_dir = find_bin_dir()
    require_system(bin_dir is not None, "PostgreSQL (initdb, pg_ctl, postgres)")
    with postgres_cluster(bin_dir) as server:
        yield server
