"""The REST API's keys: created once, shown once, stored only as sha256 hashes.

A key is ``tdm_`` plus 32 random bytes (URL-safe base64), so a hash of it cannot be
guessed back; the file (``home.api_keys_file``) holds each key's name, scopes, creation
time and sha256, never the key. Creates and revokes hold a ``flock`` while they read,
change and atomically rewrite the file, so two at once both land. A running server
re-reads the file when it changes (inode, size, mtime), so a new key works and a revoked
one stops working without a restart: rotate by creating the new key, switching clients,
then revoking the old one.

Scopes: ``read`` (list, show, download, validate, stats, queue, metrics), ``write``
(import), ``delete`` (delete datasets and versions) and ``admin`` (manage keys over the
API; an admin key may do everything).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tdm_dagster.datasets.locks import file_lock
from tdm_dagster.datasets.names import name_problem, shown
from tdm_dagster.files.atomic import atomic_write_json, read_json
from tdm_dagster.home import TdmHome

SCOPES = ("read", "write", "delete", "operate", "admin")
KEY_PREFIX = "tdm_"
TOKEN_BYTES = 32


class ApiKeyError(ValueError):
    """A key name, scope or revoke that cannot be done; the message says why."""


class KeyStoreUnreadable(Exception):
    """``keys.json`` cannot be read or is not what ``KeyStore`` writes. The message says
    so in one line that names the file by its name only (it reaches HTTP clients)."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"key store unreadable: {problem}; every key is refused until the file is repaired or restored")


@dataclass(frozen=True)
class ApiKey:
    name: str
    scopes: tuple[str, ...]
    created_at: str
    sha256: str

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes

    def public(self) -> dict[str, Any]:
        """What listings show: never the hash, let alone the key."""
        return {"name": self.name, "scopes": list(self.scopes), "created_at": self.created_at}


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def check_scopes(scopes: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise ApiKeyError(f"scope {shown(unknown[0]) if unknown else 'missing'}: expected one or more of {', '.join(SCOPES)}")
    return tuple(dict.fromkeys(scopes))


class KeyStore:
    """Keys under ``home``; safe to use from several processes and threads."""

    def __init__(self, home: TdmHome) -> None:
        self.path = home.api_keys_file
        self.lock = home.api_keys_lock
        self._cache_lock = threading.Lock()
        self._signature: tuple[int, int, int] | None = None
        self._keys: tuple[ApiKey, ...] = ()
        self._session: tuple[ApiKey, ...] = ()

    def admit_session_key(self, name: str, scopes: tuple[str, ...]) -> str:
        """A new key that this store (this process) alone accepts, never written to the key
        file: what the running service gives this machine's ``tdm validate``
        (:mod:`tdm_dagster.api.local`). Returns the key."""
        token = KEY_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
        key = ApiKey(name, check_scopes(scopes), datetime.now(UTC).isoformat(timespec="seconds"), digest(token))
        with self._cache_lock:
            self._session = (key,)
        return token

    def _read(self) -> list[ApiKey]:
        name = self.path.name
        try:
            data = read_json(self.path) or {}
        except OSError as error:
            raise KeyStoreUnreadable(f"{name}: {error.strerror or type(error).__name__}") from error
        except ValueError as error:  # JSONDecodeError, UnicodeDecodeError
            raise KeyStoreUnreadable(f"{name} is not valid JSON ({error})") from error
        try:
            return [ApiKey(k["name"], tuple(k["scopes"]), k["created_at"], k["sha256"]) for k in data.get("keys", [])]
        except (AttributeError, KeyError, TypeError) as error:
            raise KeyStoreUnreadable(f"{name} is not a key store: expected {{\"keys\": [{{name, scopes, created_at, sha256}}, ...]}}") from error

    def _write(self, keys: list[ApiKey]) -> None:
        rows = [{"name": k.name, "scopes": list(k.scopes), "created_at": k.created_at, "sha256": k.sha256} for k in keys]
        atomic_write_json(self.path, {"keys": rows})  # a temp file from mkstemp: mode 0600

    def create(self, name: str, scopes: list[str] | tuple[str, ...]) -> tuple[ApiKey, str]:
        """A new key named ``name``; returns it and the key itself (shown this once)."""
        problem = name_problem(name)
        if problem:
            raise ApiKeyError(f"key name {shown(name)}: {problem}")
        scopes = check_scopes(scopes)
        token = KEY_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
        with file_lock(self.lock):
            keys = self._read()
            if any(k.name == name for k in keys):
                raise ApiKeyError(f"a key named {name!r} exists already; choose another name (rotate: create the new key, then revoke {name!r})")
            key = ApiKey(name, scopes, datetime.now(UTC).isoformat(timespec="seconds"), digest(token))
            self._write([*keys, key])
        return key, token

    def revoke(self, name: str) -> ApiKey:
        with file_lock(self.lock):
            keys = self._read()
            found = [k for k in keys if k.name == name]
            if not found:
                raise LookupError(f"no key named {shown(name)}; `tdm api keys list` shows the names")
            self._write([k for k in keys if k.name != name])
        return found[0]

    def list(self) -> list[ApiKey]:
        return self._current()

    def _current(self) -> list[ApiKey]:
        """The keys as the file holds them now, re-read only when it changed."""
        try:
            stat = self.path.stat()
            signature = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        except FileNotFoundError:
            signature = None
        with self._cache_lock:
            if signature != self._signature:
                self._keys = tuple(self._read()) if signature else ()
                self._signature = signature
            return list(self._keys)

    def authenticate(self, token: str) -> ApiKey | None:
        """The key ``token`` is, or None; every stored hash is compared in constant time."""
        wanted = digest(token)
        match = None
        for key in (*self._current(), *self._session):
            if hmac.compare_digest(key.sha256, wanted):
                match = key
        return match
