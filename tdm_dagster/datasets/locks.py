"""Advisory file locks (``flock``) that serialize the registry's writers across processes.

The kernel drops a ``flock`` when its holder exits, however it exits, so a process
killed while holding one never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def file_lock(path: Path, *, shared: bool = False) -> Iterator[None]:
    """Hold ``path``'s lock (exclusive, or shared with other shared holders) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
