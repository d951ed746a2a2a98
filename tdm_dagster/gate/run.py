"""The test step in one call: schema gate, content gate at one of three depths, one decision per record.

Levels:
- ``quick``: structure only (schema gate and the format suite); replies are not judged;
- ``standard``: adds token lengths, balance, diversity and the content heuristics (all
  five suites), the record checks (structure, and the users' own:
  :mod:`tdm_dagster.gate.record_checks`), hidden characters
  (:mod:`tdm_dagster.gate.reading_view`), and answer verification: a record that carries a reference answer is
  checked against it by its skill's verifier (:mod:`tdm_dagster.gate.verify`), and
  rule margins: a reply that passes a content rule narrowly gets a WARNING
  (:mod:`tdm_dagster.gate.margins`);
- ``deep``: adds exact and near-duplicate detection (within the batch and, when asked,
  against data already queued) and train/eval leakage against the configured
  evaluation sets.

:func:`run_gate` is the only place that assembles these steps. The batch asset, ``tdm
validate``, the queue re-check and the benchmarks all call it with a :class:`GateInput`,
whose constructors name each record the one way deep findings cite it, so adding a
finding is one edit here (or in :mod:`tdm_dagster.gate.deep`). Every step judges the
records' reading views (:func:`tdm_dagster.gate.reading_view.conversation_views`), never
changing the records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tdm_dagster.gate.labelled import label_set_issues, report_class_balance
from tdm_dagster.gate.outcome import Findings, GateOutcome, decide
from tdm_dagster.gate.quality import SUITE_NAMES, run_quality
from tdm_dagster.gate.reading_view import conversation_views, hidden_character_issues
from tdm_dagster.gate.record_checks import record_check_issues
from tdm_dagster.gate.schemas import SchemaGateResult, schema_gate
from tdm_dagster.gate.text_quality import text_quality_issues
from tdm_dagster.gate.verify import AnswerResults, verify_answers
from tdm_dagster.records.issues import RecordIssue

if TYPE_CHECKING:
    from tdm_dagster.config.settings import TdmConfig
    from tdm_dagster.home import TdmHome
    from tdm_dagster.ingest.load import LoadedFile
    from tdm_dagster.records.batches import BatchStore

LEVELS = ("quick", "standard", "deep")
LEVEL_SUITES = {"quick": ("format",), "standard": SUITE_NAMES, "deep": SUITE_NAMES}
VERIFY_LEVELS = ("standard", "deep")
"""Levels that check replies against reference answers (quick stays structure only)."""


def suites_for(level: str) -> tuple[str, ...]:
    if level not in LEVEL_SUITES:
        raise ValueError(f"gate level {level!r} is not one of {', '.join(LEVELS)}")
    return LEVEL_SUITES[level]


def _source_key(source: Mapping[str, Any], position: int, fallback_file: str) -> str:
    return f"{Path(str(source.get('file', fallback_file))).name}:{source.get('line', position + 1)}"


@dataclass(frozen=True)
class GateInput:
    """What the gate judges: the records by position (``None`` where one could not be
    read), their spec (one for all, or one each), the problems found while reading them,
    and one key per position that names the record in deep findings: ``file:line`` for
    records read from a file, ``batch:line`` otherwise."""

    batch_id: str
    records: Sequence[Any]
    specs: str | Sequence[str | None]
    keys: Sequence[str]
    read_issues: Mapping[int, Sequence[RecordIssue]] = field(default_factory=dict)
    sources: Sequence[dict[str, Any]] | None = None
    """Where each record came from, with its bytes (records read from a file)."""

    @classmethod
    def from_records(
        cls,
        records: Sequence[Any],
        spec: str | Sequence[str | None],
        batch_id: str = "",
        read_issues: Mapping[int, Sequence[RecordIssue]] | None = None,
    ) -> GateInput:
        """Records in memory, keyed ``batch:line`` (a generated batch, a queue file)."""
        keys = [f"{batch_id}:{i + 1}" for i in range(len(records))]
        return cls(batch_id, records, spec, keys, read_issues or {})

    @classmethod
    def from_loaded(cls, loaded: LoadedFile, batch_id: str) -> GateInput:
        """A file as read by :func:`tdm_dagster.ingest.load.load_file`, keyed ``file:line``."""
        keys = [_source_key(source, i, loaded.path) for i, source in enumerate(loaded.sources)]
        return cls(batch_id, loaded.records, loaded.specs, keys, loaded.issues, loaded.sources)

    @classmethod
    def from_batch(cls, store: BatchStore, batch_id: str) -> GateInput:
        """A batch as kept under ``batches/<id>/``: an inbox file as ingested, or a generated batch."""
        records = store.load_generated(batch_id)
        ingest = store.load_ingest(batch_id)
        if ingest is None:
            return cls.from_records(records, store.load_plan(batch_id).spec, batch_id)
        keys = [_source_key(source, i, batch_id) for i, source in enumerate(ingest["sources"])]
        return cls(batch_id, records, ingest["specs"], keys, ingest["issues"], ingest["sources"])


def _eval_set_paths(config: TdmConfig, home: TdmHome | None) -> list[str]:
    """The configured evaluation sets, and those the evaluation registered in ``home``."""
    registered = [str(path) for path in home.registered_eval_sets()] if home is not None else []
    return [*config.gate.eval_sets, *registered]


def _eval_prompt_findings(
    gate_input: GateInput, schema: SchemaGateResult, views: list, config: TdmConfig, home: TdmHome | None
) -> tuple[list, Findings]:
    """The evaluation sets, and the records whose prompt is one of theirs. At every level:
    a held-out item must never be queued."""
    paths = _eval_set_paths(config, home)
    if not paths:
        return [], {}
    from tdm_dagster.gate.deep import eval_prompt_issues, load_eval_sets  # numpy loads here

    eval_sets = load_eval_sets(paths, config.gate.max_record_bytes)
    return eval_sets, eval_prompt_issues(schema.valid_indices, views, gate_input.keys, eval_sets)


def _merge(into: dict[int, list], findings: Findings) -> None:
    for position, found in findings.items():
        into.setdefault(position, []).extend(found)


@dataclass(frozen=True)
class ShardFacts:
    """What the gate of one shard of a larger batch takes from all the shards
    (:mod:`tdm_dagster.gate.distributed`): the row of each schema-valid record's first
    identical example across the shards (-1 for none), and the duplicate findings by
    schema-valid row. Without them the batch is its own whole."""

    first_of: Sequence[int] | None
    duplicates: Mapping[int, list[RecordIssue]] | None


@dataclass
class GateFindings:
    """Everything the gate found, before the decision."""

    schema: SchemaGateResult
    suites: dict
    extra: dict[int, list[RecordIssue]]
    answers: AnswerResults
    deep: dict[str, Findings]
    model_judged: set[int] = field(default_factory=set)
    """Positions whose every reply the reply model judged fluent (their tier, :mod:`tdm_dagster.gate.scoring`)."""


def _deep_findings(
    gate_input: GateInput, schema: SchemaGateResult, views: list, config: TdmConfig, queued_in: TdmHome | None,
    eval_sets: list, duplicates: Mapping[int, list[RecordIssue]] | None,
) -> dict[str, Findings]:
    from tdm_dagster.gate.deep import deep_findings, load_queued_index  # numpy loads here
    from tdm_dagster.gate.semantic.findings import SemanticCheck

    gate = config.gate
    return deep_findings(
        schema.valid_indices, views, gate_input.keys,
        eval_sets=eval_sets,
        threshold=gate.near_duplicate_threshold,
        queued=load_queued_index(queued_in, gate.near_duplicate_threshold) if queued_in is not None else None,
        duplicates=duplicates,
        records=gate_input.records,
        semantic=SemanticCheck.of(gate, queued_in),
    )  # fmt: skip


def gate_findings(
    gate_input: GateInput, config: TdmConfig, level: str, queued_in: TdmHome | None = None, shard: ShardFacts | None = None
) -> GateFindings:
    """Schema gate -> the level's quality suites -> answer verification and is-it-language
    rules (standard, deep) -> eval prompts -> deep findings (level ``deep``)."""
    names = suites_for(level)
    schema = schema_gate(gate_input.records, gate_input.specs, gate_input.read_issues)
    views = conversation_views(schema.conversations)  # what is judged: invisible characters hide nothing
    suites = run_quality(views, config.quality, names=names, first_of=shard.first_of if shard else None)
    extra = {position: list(found) for position, found in gate_input.read_issues.items()}
    _merge(extra, label_set_issues(gate_input.records, schema.valid_indices, config.labels))
    report_class_balance(suites, gate_input.records, schema.valid_indices)
    answers = AnswerResults()
    model_judged: set[int] = set()
    if level in VERIFY_LEVELS:
        answers = verify_answers(gate_input.records, schema.valid_indices, views, config.gate.verifiers)
    _merge(extra, answers.findings)
    if level in VERIFY_LEVELS:  # is each reply language? Where a verifier decided, its verdict stands
        _merge(extra, text_quality_issues(schema.valid_indices, views, config.quality, skip=answers.verdicts, model_judged=model_judged))
        _merge(extra, hidden_character_issues(schema.valid_indices, schema.conversations))
        _merge(extra, record_check_issues(gate_input.records, schema.valid_indices, views, config.gate.quality_checks))
    eval_sets, eval_prompts = _eval_prompt_findings(gate_input, schema, views, config, queued_in)
    deep = {}
    if level == "deep":
        deep = _deep_findings(gate_input, schema, views, config, queued_in, eval_sets, shard.duplicates if shard else None)
    _merge(deep["leakage"] if "leakage" in deep else extra, eval_prompts)  # the leakage check shows them at deep
    for findings in deep.values():
        _merge(extra, findings)
    return GateFindings(schema, suites, extra, answers, deep, model_judged)


def run_gate(gate_input: GateInput, config: TdmConfig, *, level: str | None = None, queued_in: TdmHome | None = None) -> GateOutcome:
    """Schema gate -> the level's quality suites -> answer verification and is-it-language
    rules (standard, deep) -> deep findings (level ``deep``) -> decision.

    ``level`` defaults to ``config.gate.level``. The evaluation sets (``config.gate.eval_sets``
    and, with ``queued_in``, the held-out sets registered in that home) are read at every
    level: a record whose prompt is one of theirs is rejected. At level deep they are also
    searched for shared text and answers, and with ``queued_in`` the index of the data
    already queued there is searched for duplicates (off for a file that is itself
    queued). Writes nothing."""
    level = level or config.gate.level
    found = gate_findings(gate_input, config, level, queued_in)
    outcome = decide(
        found.schema, found.suites, gate_input.batch_id, records=gate_input.records, extra_issues=found.extra, level=level,
        thresholds=config.gate.thresholds(), specs=None if isinstance(gate_input.specs, str) else list(gate_input.specs),
        answers=found.answers.verdicts, model_judged=found.model_judged,
    )  # fmt: skip
    if level in VERIFY_LEVELS:
        outcome.report["answers"] = found.answers.summary()
    return replace(outcome, deep=found.deep)
