"""A remote (``s3://bucket/prefix`` or ``gs://bucket/prefix``): immutable objects and sealed manifests.

Layout under the remote's URL::

    objects/<2 hex>/<sha256>            content-addressed blobs: dataset chunks, checkpoint files
    datasets/<name>/<version>.json      a dataset version's manifest
    checkpoints/<run>/<name>.json       a checkpoint's manifest
    deployments/current.json            the checkpoint the trainer box deployed last

An object's name is the sha256 of its bytes, so what the remote holds already is never
sent again, and whatever is received is re-hashed before it is kept. A manifest is
written last, after every object it names, and created exclusively (S3 ``If-None-Match``,
GCS ``ifGenerationMatch=0``): readers see a version or a checkpoint completely or not at
all, and two pushes of one version cannot overwrite each other. Each manifest carries
the sha256 of its own content (its seal), checked on every read.

Credentials come from the environment only and are read by the clients themselves
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_PROFILE``, ``AWS_ENDPOINT_URL``;
``GOOGLE_APPLICATION_CREDENTIALS``, ``STORAGE_EMULATOR_HOST``); nothing here reads,
logs or reports them, and a credential in an endpoint URL (``user:secret@``, ``?token=``)
is masked in every error (:func:`~tdm_dagster.http.retry.mask_credentials`). ``s3fs``/``gcsfs`` are imported only when a remote is used.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tdm_dagster.files.atomic import fsync_path
from tdm_dagster.http.retry import mask_credentials

OBJECT_ID = re.compile(r"^[0-9a-f]{64}$")
_URL = re.compile(r"^(s3|gs|gcs)://([a-z0-9][a-z0-9._-]{1,220}[a-z0-9])(/[A-Za-z0-9._/=-]*)?$")
READ_BLOCK = 8 * 1024 * 1024
CONCURRENCY = 8
"""Objects sent or received at once (one batch); a batch of dataset chunks stays well under 1 GB."""
DOWNLOAD_SUFFIX = ".download.tmp"
"""A download lands in ``.<target name>.<random>.download.tmp`` beside its target, locked while it runs."""
STALE_TEMP_S = 3600
"""An unlocked temp file of the old naming (``.<target name>.<random>.tmp``) this old is a
leftover, not a write in progress: writes take seconds."""


class RemoteError(Exception):
    """The remote could not be used (unreachable, no such bucket, refused); the message names
    the remote and what was being done, never a credential."""


class RemoteCorruptError(RemoteError):
    """An object or manifest on the remote does not match its checksum: refused, nothing kept."""


class RemoteConflictError(RemoteError):
    """The remote holds something else under a name that is immutable (a version, a checkpoint)."""


@dataclass
class Transfer:
    """What a push or pull did."""

    what: str
    remote: str
    moved: list[str] = field(default_factory=list)
    """What was sent (push) or received (pull): versions, checkpoints."""
    already: list[str] = field(default_factory=list)
    """What the other side held already."""
    objects: int = 0
    objects_present: int = 0
    """Objects the other side held already (not sent again)."""
    bytes: int = 0
    seconds: float = 0.0


def check_remote_url(url: str) -> str | None:
    """What is wrong with ``url`` as a remote, or None."""
    if not isinstance(url, str) or not _URL.match(url.rstrip("/")) or "/../" in f"{url}/" or "//" in url.split("://", 1)[-1]:
        return "an s3://bucket/prefix or gs://bucket/prefix URL (lower-case bucket, plain path)"
    return None


def require(condition: object, what: str) -> None:
    """A check of what a remote sent (a manifest's fields): ``ValueError`` naming ``what`` when it fails.
    Not ``assert``, which ``python -O`` removes."""
    if not condition:
        raise ValueError(what)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(READ_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _locked_temp(target: Path) -> tuple[int, Path]:
    """A new download temp beside ``target``, held under an exclusive ``flock`` (returned
    open): the mark of a live download, which the kernel drops however its process ends."""
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=DOWNLOAD_SUFFIX, dir=target.parent)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.path.samestat(os.fstat(fd), os.stat(name)):
                return fd, Path(name)
        except FileNotFoundError:
            pass  # removed as stale between its creation and its lock: take another
        os.close(fd)


def remove_stale_downloads(folder: Path) -> int:
    """Remove the temp files that downloads killed half way left in ``folder``'s subfolders;
    returns how many. A download temp goes once no process holds its lock (a live one always
    does); an unlocked temp of the old naming once it is ``STALE_TEMP_S`` old."""
    removed = 0
    for temp in folder.glob("*/.*.tmp"):
        if not temp.name.endswith(DOWNLOAD_SUFFIX):
            try:
                if time.time() - temp.stat().st_mtime > STALE_TEMP_S:
                    temp.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
            continue
        try:
            fd = os.open(temp, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            temp.unlink(missing_ok=True)
            removed += 1
        except BlockingIOError:
            pass  # a live download
        finally:
            os.close(fd)
    return removed


def _sealed(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class Remote:
    """One remote: its objects and manifests (the client is made on first use)."""

    def __init__(self, url: str, *, endpoint_url: str | None = None) -> None:
        problem = check_remote_url(url)
        if problem:
            raise RemoteError(f"{mask_credentials(repr(url))} is not a remote: expected {problem}")
        self.url = url.rstrip("/")
        scheme, rest = self.url.split("://", 1)
        self.scheme = "gs" if scheme == "gcs" else scheme
        self.root = rest
        self.endpoint_url = endpoint_url
        self._fs: Any = None

    # -- the client ---------------------------------------------------------------------------

    @property
    def fs(self) -> Any:
        if self._fs is None:
            self._fs = self._filesystem()
        return self._fs

    def _filesystem(self) -> Any:
        caching = {"skip_instance_cache": True, "use_listings_cache": False}
        try:
            if self.scheme == "s3":
                import s3fs

                return s3fs.S3FileSystem(**caching, **({"endpoint_url": self.endpoint_url} if self.endpoint_url else {}))
            # The core class: the default one first asks a gRPC control API for the bucket's
            # layout (a minute's timeout against an emulator); plain objects need none of it.
            from gcsfs.core import GCSFileSystem

            emulated = os.environ.get("STORAGE_EMULATOR_HOST", "") not in ("", "default")
            return GCSFileSystem(**caching, **({"token": "anon"} if emulated else {}))
        except ImportError as error:
            package = "s3fs" if self.scheme == "s3" else "gcsfs"
            raise RemoteError(f"{self.scheme}:// remotes need {package}: pip install 'tdm-dagster[remote]' ({error})") from None

    @contextmanager
    def _talking(self, what: str, *passed: type[BaseException]) -> Iterator[None]:
        """Client errors become a ``RemoteError`` naming the remote and ``what`` (``passed``
        ones, such as FileNotFoundError, reach the caller as they are)."""
        try:
            yield
        except RemoteError:
            raise
        except Exception as error:  # noqa: BLE001 - every client failure becomes one clear error
            if passed and isinstance(error, passed):
                raise
            detail = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
            detail = mask_credentials(detail, self.endpoint_url, os.environ.get("AWS_ENDPOINT_URL"), os.environ.get("STORAGE_EMULATOR_HOST"))
            hint = ""
            if "credential" in detail.lower():
                hint = " (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or AWS_PROFILE; for GCS GOOGLE_APPLICATION_CREDENTIALS)"
            raise RemoteError(f"{self.url}: {what} failed: {type(error).__name__}: {detail}{hint}") from None

    # -- names --------------------------------------------------------------------------------

    def path(self, relative: str) -> str:
        return f"{self.root}/{relative}"

    def object_path(self, object_id: str) -> str:
        return self.path(f"objects/{object_id[:2]}/{object_id}")

    def shown(self, path: str) -> str:
        """A bucket path as the URL users know."""
        return f"{self.url.split('://', 1)[0]}://{path}"

    # -- objects ------------------------------------------------------------------------------

    def stored_objects(self) -> dict[str, int]:
        """Every object on the remote with its size (one listing)."""
        with self._talking("listing objects", FileNotFoundError):
            try:
                found = self.fs.find(self.path("objects"), detail=True)
            except FileNotFoundError:
                return {}
        return {path.rsplit("/", 1)[-1]: int(info.get("size") or 0) for path, info in found.items()}

    def send(self, items: Sequence[tuple[Path, str]], progress: Callable[[int], None] | None = None) -> int:
        """Upload ``(local file, object id)`` pairs, ``CONCURRENCY`` at a time; returns the bytes
        sent (``progress`` gets the bytes of each group as it lands).

        The caller has just checked that each file's sha256 is its object id."""
        sent = 0
        for start in range(0, len(items), CONCURRENCY):
            batch = items[start : start + CONCURRENCY]
            self._send_batch(batch)
            size = sum(path.stat().st_size for path, _ in batch)
            sent += size
            if progress:
                progress(size)
        return sent

    def _send_batch(self, batch: Sequence[tuple[Path, str]]) -> None:
        with self._talking(f"uploading {len(batch)} object(s)"):
            self.fs.put([str(path) for path, _ in batch], [self.object_path(oid) for _, oid in batch])

    def receive(self, items: Sequence[tuple[str, int, Path]], progress: Callable[[int], None] | None = None) -> int:
        """Download ``(object id, size, local target)`` triples; returns the bytes received
        (``progress`` gets the bytes of each group as it lands).

        Each lands in a temp file beside its target, is re-hashed, and only then renamed
        into place: a corrupt or short object is refused with its name and never kept."""
        received = 0
        for start in range(0, len(items), CONCURRENCY):
            batch = items[start : start + CONCURRENCY]
            size = self._receive_batch(batch)
            received += size
            if progress:
                progress(size)
        return received

    def _receive_batch(self, batch: Sequence[tuple[str, int, Path]]) -> int:
        temps: list[Path] = []
        locks: list[int] = []
        try:
            for _, _, target in batch:
                lock, temp = _locked_temp(target)
                locks.append(lock)
                temps.append(temp)
            with self._talking(f"downloading {len(batch)} object(s)", FileNotFoundError):
                try:
                    self.fs.get([self.object_path(oid) for oid, _, _ in batch], [str(t) for t in temps])
                except FileNotFoundError as error:
                    raise RemoteCorruptError(f"{self.url}: an object a manifest names is missing ({error})") from None
            total = 0
            for (oid, size, target), temp in zip(batch, temps):
                actual = temp.stat().st_size
                if actual != size or file_sha256(temp) != oid:
                    raise RemoteCorruptError(
                        f"{self.shown(self.object_path(oid))} is corrupt: its content does not match its sha256 "
                        f"({actual} bytes, {size} expected); nothing was kept from it"
                    )
                fsync_path(temp)
                os.replace(temp, target)
                fsync_path(target.parent)
                total += actual
            return total
        finally:
            for temp in temps:
                temp.unlink(missing_ok=True)
            for lock in locks:
                os.close(lock)

    # -- manifests ----------------------------------------------------------------------------

    def manifests(self, folder: str) -> list[str]:
        """Relative paths of the manifests (``*.json``) under ``folder``."""
        with self._talking(f"listing {folder}", FileNotFoundError):
            try:
                found = self.fs.find(self.path(folder))
            except FileNotFoundError:
                return []
        prefix = self.root + "/"
        return sorted(path[len(prefix):] for path in found if path.endswith(".json") and path.startswith(prefix))

    def read_manifest(self, relative: str) -> dict[str, Any] | None:
        """The manifest's content with its seal checked; None if there is none."""
        with self._talking(f"reading {relative}", FileNotFoundError):
            try:
                data = self.fs.cat_file(self.path(relative))
            except FileNotFoundError:
                return None
        return self._unsealed(relative, data)

    def read_manifests(self, relatives: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Several manifests at once (fetched concurrently)."""
        if not relatives:
            return {}
        with self._talking(f"reading {len(relatives)} manifest(s)"):
            found = self.fs.cat([self.path(r) for r in relatives], on_error="omit")
        prefix = self.root + "/"
        return {path[len(prefix):]: self._unsealed(path[len(prefix):], data) for path, data in found.items()}

    def _unsealed(self, relative: str, data: bytes) -> dict[str, Any]:
        try:
            sealed = json.loads(data)
            body = sealed["manifest"]
            intact = isinstance(body, dict) and sealed["sha256"] == _sealed(body)
        except (ValueError, KeyError, TypeError):
            intact = False
        if not intact:
            raise RemoteCorruptError(f"{self.shown(self.path(relative))} is corrupt: its content does not match its sha256 seal")
        return body

    def create_manifest(self, relative: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """Write the manifest unless one exists; returns the existing one's content, or None if written."""
        data = json.dumps({"manifest": body, "sha256": _sealed(body)}, sort_keys=True, indent=1).encode()
        with self._talking(f"writing {relative}", FileExistsError):
            try:
                self.fs.pipe_file(self.path(relative), data, mode="create")
                return None
            except FileExistsError:
                pass
        existing = self.read_manifest(relative)
        if existing is None:  # deleted between the two calls: try once more
            return self.create_manifest(relative, body)
        return existing

    def replace_manifest(self, relative: str, body: dict[str, Any]) -> None:
        """Write (or overwrite) a pointer-like manifest, e.g. ``deployments/current.json``."""
        data = json.dumps({"manifest": body, "sha256": _sealed(body)}, sort_keys=True, indent=1).encode()
        with self._talking(f"writing {relative}"):
            self.fs.pipe_file(self.path(relative), data)
