"""Judge step: one shard through the in-process gate, with what only the whole batch knows.

The shard runs :func:`tdm_dagster.gate.run.gate_findings` (schema, suites, answers,
language, leakage) with two facts from the reduce step: each record's first identical
example across the shards (the diversity suite's duplicates) and its duplicate findings
(exact copies, and near-duplicate candidates verified here by exact Jaccard, the earliest
passing partner kept, as :class:`tdm_dagster.gate.dedup.NearDuplicateIndex` does). What
the batch verdict needs comes back as small :class:`ShardTotals`; the per-record
decisions as :class:`ShardDecisions`, which the driver reads one shard at a time.

Partner shards' sketches are fetched one at a time (``sketch_of``), so a judge holds its
own shard and one other shard's shingle sets at most.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tdm_dagster.config.settings import TdmConfig
from tdm_dagster.gate.dedup import earliest_verified
from tdm_dagster.gate.deep import exact_duplicate_issue, near_duplicate_issue
from tdm_dagster.gate.distributed.shards import load_shard
from tdm_dagster.gate.distributed.shuffle import EXACT_COPY, EXAMPLE_COPY, NEAR_CANDIDATE
from tdm_dagster.gate.distributed.sketch import ShardSketch, local_rows, shard_of
from tdm_dagster.gate.minhash import jaccard
from tdm_dagster.gate.outcome import capped_response_words, is_incomplete, issues_by_position
from tdm_dagster.gate.run import VERIFY_LEVELS, ShardFacts, gate_findings
from tdm_dagster.gate.schemas import first_problem
from tdm_dagster.gate.semantic.findings import shard_issues
from tdm_dagster.gate.scoring import example_score, tier_counts
from tdm_dagster.records.issues import RecordIssue


@dataclass
class ShardTotals:
    """One shard's share of the batch verdict: counts that add up across shards."""

    records: int
    valid: int
    schema_rejected: int
    rejected: int
    """Records an issue of their own rejects."""
    complete: int
    spec_counts: Counter
    capped_response_words: int
    first_problem: str | None
    suites: dict[str, dict[str, Any]]
    """Per suite: rows, failed rows, failing rows per per-record rule, turn sums (balance)."""
    warnings: Counter
    tiers: dict[str, int]
    answers: dict[str, Any] | None


@dataclass
class ShardDecisions:
    keys: list[str]
    issues: dict[int, list[RecordIssue]]
    rejected: list[int]
    scores: dict[int, float] = field(default_factory=dict)


def _suite_totals(suites: dict) -> dict[str, dict[str, Any]]:
    out = {}
    for name, result in suites.items():
        observed = result.observed
        out[name] = {
            "rows": int(observed.get("records", 0)),
            "failed": len(result.failed_records),
            "unexpected": {rule: value["failing_records"] for rule, value in observed.items() if isinstance(value, dict) and "failing_records" in value},
            "turns": observed.get("turns"),
        }  # fmt: skip
    return out


class _Partners:
    """Other shards' sketches, one held at a time."""

    def __init__(self, sketch_of: Callable[[int], ShardSketch]) -> None:
        self._sketch_of = sketch_of
        self._held: tuple[int, ShardSketch] | None = None

    def get(self, shard: int) -> ShardSketch:
        if self._held is None or self._held[0] != shard:
            self._held = (shard, self._sketch_of(shard))
        return self._held[1]


def _duplicates(pairs: np.ndarray, own: ShardSketch, partners: _Partners, threshold: float) -> dict[int, list[RecordIssue]]:
    """Dedup findings by schema-valid row: exact copies name their first, the others their
    earliest verified near duplicate."""
    exact = pairs[pairs[:, 0] == EXACT_COPY]
    exact_rows, first_shards, first_rows = local_rows(exact[:, 1]), shard_of(exact[:, 2]), local_rows(exact[:, 2])
    near = np.unique(pairs[pairs[:, 0] == NEAR_CANDIDATE][:, 1:], axis=0)
    later_rows, partner_shards, partner_rows = local_rows(near[:, 0]), shard_of(near[:, 1]), local_rows(near[:, 1])
    similarity = np.zeros(near.shape[0])
    first_key: dict[int, str] = {}
    partner_key: dict[int, str] = {}
    for shard in sorted(set(first_shards.tolist()) | set(partner_shards.tolist())):
        sketch = partners.get(shard)
        here = first_shards == shard
        first_key.update(zip(exact_rows[here].tolist(), (sketch.keys[row] for row in first_rows[here].tolist())))
        with_shard = np.flatnonzero(partner_shards == shard)
        if with_shard.size:
            similarity[with_shard] = jaccard(own.sets, later_rows[with_shard], sketch.sets, partner_rows[with_shard])
            passing = with_shard[similarity[with_shard] >= threshold]
            partner_key.update(zip(passing.tolist(), (sketch.keys[row] for row in partner_rows[passing].tolist())))
    found = {row: [exact_duplicate_issue(key)] for row, key in first_key.items()}
    for pair in earliest_verified(near[:, 0], near[:, 1], similarity, threshold).tolist():
        found.setdefault(int(later_rows[pair]), [near_duplicate_issue(float(similarity[pair]), partner_key[pair])])
    return dict(sorted(found.items()))


def _add_semantic(duplicates: dict[int, list[RecordIssue]], own: ShardSketch, shard: int, partners: _Partners, config: TdmConfig) -> None:
    """Semantic near-duplicates across the shards, for rows without a lexical finding (as in process)."""
    lexical = set(duplicates)  # rows the lexical pass flagged: one finding per row
    gate = config.gate
    found = shard_issues(own.embeddings, own.sets, shard, partners.get, lexical, gate.semantic_duplicate_threshold, gate.near_duplicate_threshold)
    for row, issues in found.items():
        duplicates.setdefault(row, []).extend(issues)


def judge_shard(
    shard: int,
    path: str,
    batch_id: str,
    config: TdmConfig,
    level: str,
    valid_offsets: Sequence[int],
    sketch_of: Callable[[int], ShardSketch],
    pairs: Sequence[np.ndarray],
) -> tuple[ShardTotals, ShardDecisions]:
    """The shard's totals and decisions; ``valid_offsets[s]``: schema-valid records before shard ``s``."""
    gate_input = load_shard(path, batch_id, config.gate.max_record_bytes)
    found_pairs = np.concatenate(pairs) if len(pairs) else np.empty((0, 3), np.uint64)
    partners = _Partners(sketch_of)
    own = partners.get(shard)
    first_of = duplicates = None
    if level != "quick":
        first_of = np.full(len(own.keys), -1, np.int64)
        copies = found_pairs[found_pairs[:, 0] == EXAMPLE_COPY]
        first_of[local_rows(copies[:, 1])] = np.asarray(valid_offsets, np.int64)[shard_of(copies[:, 2])] + local_rows(copies[:, 2])
        first_of = first_of.tolist()
    if level == "deep":
        duplicates = _duplicates(found_pairs, own, partners, config.gate.near_duplicate_threshold)
        if own.embeddings is not None:
            _add_semantic(duplicates, own, shard, partners, config)
        partners.get(shard)  # let go of the last partner's sketch
    found = gate_findings(gate_input, config, level, None, ShardFacts(first_of, duplicates))
    schema = found.schema
    issues = issues_by_position(schema, found.suites, found.extra)
    rejected = sorted(i for i, listed in issues.items() if any(issue.rejects for issue in listed))
    rejected_set = set(rejected)
    accepted = [i for i in range(schema.total) if i not in rejected_set]
    verdicts = found.answers.verdicts
    scores = {i: example_score(gate_input.records[i], issues.get(i, []), verdicts.get(i), i in found.model_judged) for i in accepted}
    totals = ShardTotals(
        records=schema.total,
        valid=len(schema.valid_indices),
        schema_rejected=len(schema.rejected),
        rejected=len(rejected),
        complete=sum(1 for i in range(schema.total) if not is_incomplete(issues.get(i, []))),
        spec_counts=Counter(gate_input.specs) if not isinstance(gate_input.specs, str) else Counter({gate_input.specs: schema.total}),
        capped_response_words=capped_response_words(schema.conversations),
        first_problem=first_problem(schema.rejected, gate_input.read_issues),
        suites=_suite_totals(found.suites),
        warnings=Counter(i.code for listed in issues.values() for i in listed if i.severity == "WARNING"),
        tiers=tier_counts(list(scores.values())),
        answers=found.answers.summary() if level in VERIFY_LEVELS else None,
    )
    return totals, ShardDecisions(list(gate_input.keys), issues, rejected, scores)
