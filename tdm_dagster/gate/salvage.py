"""Salvage: keeping the records of a failed batch that pass on their own.

A batch fails as a whole when it fails a quality suite or its metrics fall under their
thresholds (more than 5 % of its records rejected, duplicates, mixed shapes), and
:func:`tdm_dagster.gate.outcome.decide` then rejects every record in it. Whether that is
right depends on where the batch came from, so each source has its own choice,
``gate.on_batch_failure.<source>``: ``reject`` (the batch, whole) or ``salvage`` (the
records without an ERROR of their own; the batch's failure does not take them down).

- ``generated`` and ``skill_api`` (generators, local or behind the skill API): ``reject``.
  A generator that breaks 5 % of its output is suspect in the rest too, and the batch's
  recommendation is what tells the generator's owner; a new batch is cheap.
- ``inbox`` and ``import`` (data a person hands in, often not to be had again):
  ``salvage``. A few duplicates or broken lines in a real data set must not cost it the
  thousands of records that passed every check of their own.

A salvaged record carries the WARNING ``batch.salvaged`` naming the batch's failure, so
its score drops one tier (``scoring.WARNING_PENALTY``) as any warning's does: a verified
reply is silver, never gold, an unverified one bronze. The batch's failure is evidence
about its source that a record's own checks cannot clear. The batch report still fails
(``overall_pass`` false) and says why, and how many records were salvaged and rejected.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from tdm_dagster.config.sections import BATCH_SOURCES
from tdm_dagster.gate.outcome import BATCH_REJECTED, GateOutcome, report_counts
from tdm_dagster.gate.scoring import example_score, tier_counts
from tdm_dagster.records.issues import RecordIssue

if TYPE_CHECKING:
    from tdm_dagster.home import TdmHome

SALVAGED = "batch.salvaged"
_SOURCE_OF_PLAN = {"inbox": "inbox", "skill_api": "skill_api"}
"""``BatchPlan.source`` -> policy source; every other plan source is a local generator."""


def batch_source(plan_source: str) -> str:
    """The ``gate.on_batch_failure`` source of a batch whose plan says ``plan_source``
    (``builtin``, ``inference``, ``skill_api``, ``inbox``)."""
    return _SOURCE_OF_PLAN.get(plan_source, "generated")


def queued_source(home: TdmHome, batch_id: str) -> str:
    """The policy source of a queued batch, from its plan; ``generated`` (the strict
    default) when its folder is gone."""
    from tdm_dagster.records.batches import BatchStore

    try:
        return batch_source(BatchStore(home).load_plan(batch_id).source)
    except (FileNotFoundError, ValueError, TypeError):
        return "generated"


def own_issues(found: Sequence[RecordIssue]) -> list[RecordIssue]:
    """A record's issues without the one its batch's rejection gave it."""
    return [issue for issue in found if issue.code != BATCH_REJECTED]


def salvaged(outcome: GateOutcome, records: Sequence[Any], source: str = "") -> GateOutcome:
    """``outcome`` with the records that pass on their own approved, each marked
    ``batch.salvaged``, when its batch failed; else (or when none passes) ``outcome``
    unchanged. ``records`` are the records the gate judged (their provenance counts in
    the score); ``source`` names the policy that chose this, for the report. The
    rejected records keep every issue, the batch's included."""
    if outcome.batch_approved:
        return outcome
    failure = outcome.report.get("batch_failure", "")
    mark = RecordIssue(suite="batch", code=SALVAGED, severity="WARNING", field="",
                       message=f"kept from a rejected batch ({failure}): it passes every check of its own")  # fmt: skip
    issues = {position: own_issues(found) for position, found in outcome.issues.items()}
    rejected = {position: outcome.issues[position] for position, found in issues.items() if any(i.rejects for i in found)}
    kept = [position for position in range(outcome.total) if position not in rejected]
    if not kept:
        return outcome
    issues.update(rejected)
    for position in kept:
        issues[position] = [*issues.get(position, []), mark]
    scores = {p: example_score(records[p], issues[p], outcome.answers.get(p), p in outcome.model_judged) for p in kept}
    report = dict(outcome.report)
    report.update(
        recommendation=f"salvage: {len(kept)} of {outcome.total} records kept, {len(rejected)} rejected; the batch failed: {failure}",
        records={**report_counts(outcome.total, len(kept), len(rejected), report["records"]["schema_rejected"]), "salvaged": len(kept)},
        tiers=tier_counts(list(scores.values())),
        warnings=dict(Counter(i.code for found in issues.values() for i in found if i.severity == "WARNING")),
        salvage={"policy": f"gate.on_batch_failure.{source}: salvage" if source else "salvage",
                 "batch_failure": failure, "salvaged": len(kept), "rejected": len(rejected)},
    )  # fmt: skip
    return replace(outcome, approved_indices=kept, rejected=rejected, report=report, issues=issues, scores=scores, salvaged=kept)


def on_batch_failure(outcome: GateOutcome, records: Sequence[Any], source: str, policy: str) -> GateOutcome:
    """``outcome`` as ``policy`` (``reject`` or ``salvage``, the choice for ``source``)
    has it: a failed batch rejected whole, or its passing records salvaged."""
    if source not in BATCH_SOURCES:
        raise ValueError(f"batch source {source!r} is not one of {', '.join(BATCH_SOURCES)}")
    return salvaged(outcome, records, source) if policy == "salvage" else outcome


def has_queueable_records(report: dict[str, Any]) -> bool:
    """True when a batch's report lets its approved records go on: it passed, or its
    records were salvaged."""
    return bool(report.get("overall_pass") or report.get("salvage"))
