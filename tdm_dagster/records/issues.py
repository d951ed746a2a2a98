"""One shape for every problem found with a record, whichever gate found it.

``ERROR`` rejects the record; ``WARNING`` keeps it and lowers its quality score;
``INFO`` is a note. ``code`` is stable (scripts and dashboards match on it), ``message``
says what was wrong and where, ``field`` points into the record, ``suggestion`` says
how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass

SEVERITIES = ("ERROR", "WARNING", "INFO")


@dataclass(frozen=True)
class RecordIssue:
    suite: str
    code: str
    message: str
    field: str
    severity: str = "ERROR"
    suggestion: str = ""

    @property
    def rejects(self) -> bool:
        return self.severity == "ERROR"
