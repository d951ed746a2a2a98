"""Fail every test that reads a path beside the checkout.

A clone must pass its tests with nothing next to it, so a test that reads, say,
``../shared/data`` passes on a machine that has that folder and fails on a fresh one.
An audit hook (``sys.addaudithook``, PEP 578) sees each file this process opens, each
folder it lists, and the program, arguments and working folder of each process it
starts. A path under the checkout's parent folder that is not inside the checkout is
recorded, and the test (or the collection of the module) that touched it fails, naming
the path.

Not recorded: the Python installation and its site-packages (a virtual environment
may live beside the checkout, e.g. through a ``.venv`` link), the temp folder and
pytest's ``--basetemp``, the home folder, system folders (for a checkout such as
``/app``), and hidden folders beside the checkout (``~/.cache`` and the like when the
checkout sits in a home folder). Folders that contain the checkout's
parent (``/tmp`` for a checkout in ``/tmp/x/repo``) are never exempt, or they would
exempt everything. The hook cannot be removed, so it returns at once for other events.
Reads by native code (e.g. pyarrow's C++ file system) and by child processes are not
seen here; ``test_checkout_paths.py`` scans the sources for those.
"""

from __future__ import annotations

import os
import site
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

WATCHED_EVENTS = frozenset({"open", "os.listdir", "os.scandir", "subprocess.Popen"})
# Never flagged, for a checkout whose parent is the file system's root (e.g. /app).
SYSTEM_FOLDERS = ("/bin", "/dev", "/etc", "/lib", "/lib64", "/opt", "/proc", "/run", "/sbin", "/snap", "/sys", "/tmp", "/usr", "/var")


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


class CheckoutGuard:
    """Records the paths beside ``checkout`` that this process touches."""

    def __init__(self, checkout: Path, exempt: Iterable[str | os.PathLike[str]]) -> None:
        self.checkout = os.path.abspath(checkout)
        self.parent = os.path.dirname(self.checkout)
        folders = {os.path.abspath(folder) for folder in exempt} | {os.path.realpath(folder) for folder in exempt}
        self.exempt = tuple(sorted(f for f in folders if self.beside_checkout(f) and not _inside(self.checkout, f)))
        self._parent_prefix = self.parent.rstrip(os.sep) + os.sep
        self._lock = threading.Lock()
        self._escapes: list[str] = []

    def beside_checkout(self, path: str) -> bool:
        """``path`` (absolute, normalized) lies under the checkout's parent, not inside the checkout."""
        return _inside(path, self.parent) and not _inside(path, self.checkout) and path != self.parent

    def beside(self, path: str) -> bool:
        """``path`` (absolute, normalized) lies beside the checkout and is not exempt."""
        if not self.beside_checkout(path):
            return False
        if path[len(self.parent) :].lstrip(os.sep).startswith("."):
            return False  # a hidden folder beside the checkout: tool caches and settings
        return not any(_inside(path, folder) for folder in self.exempt)

    def audit(self, event: str, args: tuple) -> None:
        if event not in WATCHED_EVENTS:
            return
        if event == "open" and type(args[0]) is str and args[0].startswith(os.sep):  # most opens: cheap test first
            if not args[0].startswith(self._parent_prefix) and os.sep + ".." not in args[0]:
                return
        for path in _paths(event, args):
            if self.beside(path):
                with self._lock:
                    self._escapes.append(f"{event} {path}")

    def take(self) -> list[str]:
        """The escapes recorded since the last call, each once, in order."""
        with self._lock:
            taken, self._escapes = list(dict.fromkeys(self._escapes)), []
        return taken


def _paths(event: str, args: tuple) -> Iterator[str]:
    """The absolute paths an audited event names (never raises: the hook must not break the call)."""
    if event == "subprocess.Popen":
        executable, argv, cwd, _env = args
        argv = [argv] if isinstance(argv, (str, bytes, os.PathLike)) else list(argv or ())
        candidates = [executable, cwd, *argv]
    elif event == "open" and args[1] is None and isinstance(args[0], (str, bytes)) and not os.path.isabs(args[0]):
        return  # os.open of a bare name: maybe relative to a dir_fd (shutil.rmtree), not to the working folder
    else:
        candidates = [args[0]] if args else []
    for candidate in candidates:
        if isinstance(candidate, (str, bytes, os.PathLike)):
            try:
                yield os.path.abspath(os.fsdecode(candidate))
            except (OSError, ValueError, TypeError):  # e.g. the working folder was deleted
                continue


def exempt_folders(config: pytest.Config) -> list[str]:
    """Folders a test may read although they may lie beside the checkout."""
    folders = [sys.prefix, sys.base_prefix, sys.exec_prefix, tempfile.gettempdir(), *site.getsitepackages()]
    folders += [site.getusersitepackages(), str(Path.home()), *SYSTEM_FOLDERS]
    if config.option.basetemp:
        folders.append(str(config.option.basetemp))
    return folders


_guard: CheckoutGuard | None = None
_unattributed: list[str] = []  # touched outside any collection or test phase: failed at the end


def pytest_configure(config: pytest.Config) -> None:
    global _guard
    if _guard is None:  # one hook per process: audit hooks cannot be removed
        _guard = CheckoutGuard(config.rootpath, exempt_folders(config))
        sys.addaudithook(_guard.audit)


def _failure(escapes: list[str]) -> str:
    lines = "\n".join(f"  {escape}" for escape in escapes)
    return f"touched paths outside the checkout {_guard.checkout} (ship what tests need in tests/data):\n{lines}"


def _fail_report(report: pytest.TestReport | pytest.CollectReport, escapes: list[str]) -> None:
    before = f"\n\n{report.longreprtext}" if report.failed else ""
    report.outcome = "failed"
    report.longrepr = _failure(escapes) + before


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    _unattributed.extend(_guard.take())
    report = (yield).get_result()
    escapes = _guard.take()
    if escapes:
        _fail_report(report, escapes)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = (yield).get_result()
    escapes = _guard.take()
    if escapes:
        _fail_report(report, escapes)


def pytest_sessionfinish(session: pytest.Session) -> None:
    escapes = list(dict.fromkeys(_unattributed + _guard.take()))
    if escapes:
        sys.stderr.write(_failure(escapes) + "\n")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
