"""One shape for every problem found with a record, whichever gate found it.

``ERROR`` rejects the record; ``WARNING`` keeps it and lowers its quality score;
``INFO`` is a note. ``code`` is stable (scripts and dashboards match on it), ``message``
says what was wrong and where, ``field`` points into the record, ``suggestion`` says
how to fix it: an issue built without one gets the suggestion the code's entry in
:mod:`tdm_dagster.records.issue_codes` gives, so every issue a user sees says what to do.
"""

from __future__ import annotations

from dataclasses import dataclass

from tdm_dagster.records.issue_codes import issue_code

SEVERITIES = ("ERROR", "WARNING", "INFO")


@dataclass(frozen=True)
class RecordIssue:
    suite: str
    code: str
    message: str
    field: str
    severity: str = "ERROR"
    suggestion: str = ""

    def __post_init__(self) -> None:
        if not self.suggestion and (entry := issue_code(self.code)) is not None:
            object.__setattr__(self, "suggestion", entry.suggestion)

    @property
    def rejects(self) -> bool:
        return self.severity == "ERROR"
