"""A number a config key accepts, from its minimum to its maximum.

Every count, size, duration and seed of config.yaml has a maximum (docs/reference/config.md:
"Maxima"): a value no real user needs, that keeps memory and time bounded, so that a
typo (or ``count: 1e30``) is refused at load instead of exhausting the machine later.
A ``Bounded`` check names what it expects, and the maximum when the value is above it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Bounded:
    """The check of one numeric key: None for a good value, else what is expected."""

    what: str
    """What a good value is, e.g. "a positive integer" (said for a wrong type or a value too small)."""
    maximum: int
    minimum: int = 0
    whole: bool = True
    """Integers only; else any finite int or float."""
    minimum_excluded: bool = False
    nullable: bool = False
    range_named: bool = False
    """``what`` already names the maximum ("between 0 and 1"), so it is not said twice."""

    def __call__(self, value: Any) -> str | None:
        if value is None and self.nullable:
            return None
        problem = self._problem(value)
        return None if problem is None else problem + (" or null" if self.nullable else "")

    def _problem(self, value: Any) -> str | None:
        kinds = int if self.whole else (int, float)
        if not isinstance(value, kinds) or isinstance(value, bool) or not self.minimum <= value:  # NaN: not <=
            return self.what
        if self.minimum_excluded and value == self.minimum:
            return self.what
        if value > self.maximum:
            return self.what if self.range_named else f"{self.what}, at most {self.maximum}"
        return None

    def or_null(self) -> Bounded:
        return replace(self, nullable=True)


def count(maximum: int) -> Bounded:
    """A whole number from 1 to ``maximum``."""
    return Bounded("a positive integer", maximum, minimum=1)


def count_from_zero(maximum: int) -> Bounded:
    return Bounded("an integer >= 0", maximum)


def positive_number(maximum: int) -> Bounded:
    """Any number above 0 up to ``maximum`` (a duration, a rate)."""
    return Bounded("a positive number", maximum, whole=False, minimum_excluded=True)


def non_negative_number(what: str, maximum: int) -> Bounded:
    return Bounded(f"{what} >= 0", maximum, whole=False)


FRACTION = Bounded("a number between 0 and 1", 1, whole=False, range_named=True)
PORT = Bounded("an integer port between 1 and 65535", 65535, minimum=1, range_named=True)

MAX_SEED = 2**32 - 1
"""Every random generator tdm seeds takes it (numpy's legacy one takes nothing larger)."""
DAY_SEC = 24 * 3600
"""The longest timeout, cooldown or settling time: longer is a typo, not a wish."""
MAX_BATCH_RECORDS = 1_000_000
"""One batch is held in memory while it is generated and gated; a million chat records
is a few GB. ``auto_generate.count``, ``gate.max_batch_records`` and ``tdm generate
--count`` share it: a batch cannot be larger than what one batch may hold."""
