"""``tdm datasets add`` keeps out the records that break their own spec.

``add`` appends approved batch files without running the gate, but a record that maps to
one of our specs (``ingest.shapes``) and breaks it (a labelled example with empty text or
a span that does not cover its entity, an unknown label) would otherwise sit in the
dataset until an export or the trainer trips on it. Such a record goes to ``rejected/``
with the schema gate's reason, located in its file; a record of no known shape is added
as before (a dataset may hold records the gate never reads).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from tdm_dagster.records.issues import RecordIssue

if TYPE_CHECKING:
    from tdm_dagster.config.sections import LabelsConfig
    from tdm_dagster.formats.imported import ImportResult


def refuse_nonconforming(read: ImportResult, labels: LabelsConfig) -> None:
    """Move every record of ``read`` that maps to a spec and breaks it (or uses a label
    outside ``labels``) to its rejected records, with the reason."""
    from tdm_dagster.gate.labelled import label_set_issues
    from tdm_dagster.gate.schemas import get_spec
    from tdm_dagster.ingest.shapes import map_record

    reasons: dict[int, list[RecordIssue]] = {}
    for index, (record, source) in enumerate(zip(read.records, read.sources)):
        mapped = map_record(record)
        if isinstance(mapped, RecordIssue):
            continue
        for part in mapped:
            problem = get_spec(part.spec).check(part.record)
            found = [problem] if problem else label_set_issues([part.record], [0], labels).get(0, [])
            if found:
                reasons[index] = [replace(issue, message=f"{source.where(part.sub_index)}: {issue.message}") for issue in found]
                break
    if reasons:
        read.keep_only([index not in reasons for index in range(len(read.records))], reasons)
