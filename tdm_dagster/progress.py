"""Progress of long work, shown to people: a bar on stderr when stderr is a terminal, and a
log line every few seconds inside Dagster steps. Callers only report counts.

    with terminal_progress("validating", total=len(records), quiet=as_json) as advance:
        for chunk in chunks:
            ...
            advance(len(chunk))

    advance = SteadyLog(context.log.info, "generated", total=plan.count)  # in a Dagster step
    ...
    advance.finish()

The bars are tqdm's: a plain ``update(n)`` for counts from any thread (the gate's and
the transfers' workers), byte units built in (KiB/MiB/GiB and a rate), and it draws one
line on stderr and touches nothing else, so stdout (the text or the ``--json`` object) and
log lines printed meanwhile stay as they are; rich's live display takes over the terminal
and by default captures what is printed while it runs. tqdm already comes with datasets
and huggingface_hub. The bar is off when stderr is not a terminal (a pipe, a file, CI
logs) and under ``--json``: then nothing is drawn at all.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import IO, TypeVar

T = TypeVar("T")
Advance = Callable[[int], None]
"""Report ``n`` more units done."""
BYTES = "bytes"
"""The ``unit`` of transfers: shown as KiB, MiB, GiB."""
LOG_EVERY_S = 5.0
"""The pace of progress lines in Dagster logs: one per this many seconds at most."""


Bars = Callable[..., AbstractContextManager[Advance]]
"""What a long operation is given to show its parts: :func:`terminal_progress` (bound to the
command's ``quiet``) or :func:`no_progress`; called as ``bars(description, total, unit=...)``."""


def _nothing(_: int = 1) -> None:
    return None


@contextmanager
def no_progress(description: str = "", total: int | None = None, *, unit: str = "records") -> Iterator[Advance]:
    """:data:`Bars` that show nothing."""
    yield _nothing


def shows_progress(stream: IO[str] | None = None, *, quiet: bool = False) -> bool:
    """Whether a bar would be drawn on ``stream`` (default stderr)."""
    stream = stream or sys.stderr
    try:
        return not quiet and stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


@contextmanager
def terminal_progress(description: str, total: int | None = None, *, unit: str = "records", quiet: bool = False) -> Iterator[Advance]:
    """A bar on stderr for the block, or a no-op ``advance`` when stderr is not a terminal
    or ``quiet`` (``--json``). ``total`` None: a count without a percentage."""
    if not shows_progress(quiet=quiet):
        yield _nothing
        return
    from tqdm import tqdm

    in_bytes = unit == BYTES
    size = shutil.get_terminal_size()  # 80x24 where the terminal reports 0x0 (tqdm would then draw nothing)
    bar = tqdm(
        total=total, desc=description, unit="B" if in_bytes else f" {unit}", unit_scale=in_bytes, unit_divisor=1024,
        file=sys.stderr, leave=False, mininterval=0.25, ncols=size.columns, nrows=size.lines,
    )  # fmt: skip
    stop = threading.Event()
    ticking = threading.Thread(target=_tick, args=(bar, stop), name="progress-tick", daemon=True)
    ticking.start()
    try:
        yield bar.update
    finally:
        stop.set()
        ticking.join()
        bar.close()


def _tick(bar, stop: threading.Event) -> None:  # noqa: ANN001 (a tqdm)
    """Redraw every second, so the elapsed time moves while a long step reports nothing."""
    while not stop.wait(1.0):
        bar.refresh()


def counted(items: Iterable[T], advance: Advance) -> Iterator[T]:
    """``items``, telling ``advance`` of each as it is taken (for a writer that consumes an iterator)."""
    for item in items:
        yield item
        advance(1)


class SteadyLog:
    """Progress as log lines at a steady pace (at most one per ``every_s`` seconds, plus
    the last from :meth:`finish`), however many records a step handles: for Dagster steps,
    ``SteadyLog(context.log.info, "generated", total)``."""

    def __init__(self, log: Callable[[str], None], what: str, total: int | None = None, *, every_s: float = LOG_EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.log, self.what, self.total, self.every_s, self.clock = log, what, total, every_s, clock
        self.done = 0
        self.note = ""
        self._started = self._last = clock()
        self._logged_at = -1

    def __call__(self, n: int = 1, note: str = "") -> None:
        """``n`` more done; ``note`` (e.g. the loss) ends the next line."""
        self.done += n
        self.note = note or self.note
        now = self.clock()
        if now - self._last >= self.every_s:
            self._last = now
            self._line(now)

    def reached(self, done: int, total: int | None = None, note: str = "") -> None:
        """Progress as a running count (``done`` of ``total``) rather than increments."""
        self.total = total if total is not None else self.total
        self(done - self.done, note)

    def finish(self) -> None:
        """The last line, unless the last one logged already says it."""
        if self._logged_at != self.done:
            self._line(self.clock())

    def _line(self, now: float) -> None:
        self._logged_at = self.done
        share = f" ({self.done / self.total:.0%})" if self.total else ""
        of = f"/{self.total:,}" if self.total else ""
        rate = self.done / max(now - self._started, 1e-9)
        self.log(f"{self.what}: {self.done:,}{of}{share}, {rate:,.1f}/s" + (f", {self.note}" if self.note else ""))
