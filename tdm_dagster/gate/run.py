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

import sys
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tdm_dagster.gate.batch_memory import BatchMemory
from tdm_dagster.gate.labelled import ClassCounts, label_set_issues, report_class_balance
from tdm_dagster.gate.outcome import Findings, GateOutcome, capped_response_words, decide
from tdm_dagster.gate.quality import SUITE_NAMES, quality_features
from tdm_dagster.gate.reading_view import conversation_views, hidden_character_issues
from tdm_dagster.gate.record_checks import record_check_issues
from tdm_dagster.gate.schemas import (
    SchemaGateResult,
    UnknownSpecError,
    first_problem,
    get_spec,
    no_record_matches,
    schema_gate,
)
from tdm_dagster.gate.scoring import source_of
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
CHUNK_RECORDS = 20_000
"""Records judged at a time: what the gate holds is one chunk's records, views and
temporaries, plus a few numbers per record judged before (``bench/bench_gate_memory.py``)."""


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

    def chunks(self, size: int) -> Iterator[GateInput]:
        """The input as consecutive chunks of ``size`` positions (positions, and the read
        issues, counted from 0 within each): what :func:`gate_chunks` takes."""
        if size < 1:
            raise ValueError(f"chunk size must be at least 1, got {size}")
        if len(self.records) <= size:
            yield self
            return
        for start in range(0, len(self.records), size):
            end = start + size
            yield GateInput(
                self.batch_id, self.records[start:end], self.specs if isinstance(self.specs, str) else self.specs[start:end],
                self.keys[start:end], {p - start: found for p, found in self.read_issues.items() if start <= p < end},
                self.sources[start:end] if self.sources is not None else None,
            )  # fmt: skip

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


def _merge(into: dict[int, list], findings: Findings, offset: int = 0) -> None:
    for position, found in findings.items():
        into.setdefault(offset + position, []).extend(found)


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


def _chunk_findings(chunk: GateInput, config: TdmConfig, level: str, memory: BatchMemory) -> tuple[GateFindings, Any]:
    """Schema gate -> the level's suite features -> answer verification and is-it-language
    rules (standard, deep) -> eval prompts -> deep findings (level ``deep``), for one chunk:
    its findings (positions the chunk's; no suites yet) and the feature rows the suites
    validate (one per schema-valid record)."""
    schema = schema_gate(chunk.records, chunk.specs, chunk.read_issues)
    views = conversation_views(schema.conversations)  # what is judged: invisible characters hide nothing
    features = quality_features(views, config.quality, suites_for(level), first_of=memory.first_of(views))
    extra = {position: list(found) for position, found in chunk.read_issues.items()}
    _merge(extra, label_set_issues(chunk.records, schema.valid_indices, config.labels))
    answers = AnswerResults()
    model_judged: set[int] = set()
    if level in VERIFY_LEVELS:
        answers = verify_answers(chunk.records, schema.valid_indices, views, config.gate.verifiers)
    _merge(extra, answers.findings)
    if level in VERIFY_LEVELS:  # is each reply language? Where a verifier decided, its verdict stands
        _merge(extra, text_quality_issues(schema.valid_indices, views, config.quality, skip=answers.verdicts, model_judged=model_judged))
        _merge(extra, hidden_character_issues(schema.valid_indices, schema.conversations))
        _merge(extra, record_check_issues(chunk.records, schema.valid_indices, views, config.gate.quality_checks))
    eval_prompts: Findings = {}
    if memory.eval_sets:
        from tdm_dagster.gate.deep import eval_prompt_issues

        eval_prompts = eval_prompt_issues(schema.valid_indices, views, chunk.keys, memory.eval_sets)
    deep: dict[str, Findings] = {}
    if level == "deep":
        from tdm_dagster.gate.deep import deep_findings

        deep = deep_findings(
            schema.valid_indices, views, chunk.keys, eval_sets=memory.eval_sets, threshold=config.gate.near_duplicate_threshold,
            duplicates=memory.shard.duplicates if memory.shard else None, records=chunk.records, search=memory.duplicates, semantic=memory.semantic,
        )  # fmt: skip
    _merge(deep["leakage"] if "leakage" in deep else extra, eval_prompts)  # the leakage check shows them at deep
    for findings in deep.values():
        _merge(extra, findings)
    memory.valid_rows += len(schema.valid_indices)
    return GateFindings(schema, {}, extra, answers, deep, model_judged), features


def gate_findings(
    gate_input: GateInput, config: TdmConfig, level: str, queued_in: TdmHome | None = None, shard: ShardFacts | None = None
) -> GateFindings:
    """Schema gate -> the level's quality suites -> answer verification and is-it-language
    rules (standard, deep) -> eval prompts -> deep findings (level ``deep``), over
    ``gate_input`` as one chunk (a shard of a larger batch: ``shard``)."""
    with BatchMemory(config, suites_for(level), level, _eval_set_paths(config, queued_in), queued_in, shard) as memory:
        found, features = _chunk_findings(gate_input, config, level, memory)
    from tdm_dagster.gate.quality.suites import run_suites  # pandas and GX load here

    suites = run_suites(features, config.quality, suites_for(level))
    labels = ClassCounts()
    labels.add(gate_input.records, found.schema.valid_indices)
    report_class_balance(suites, labels.balance())
    return replace(found, suites=suites)


class _ScoredSources(Sequence):
    """Each position's record as its quality score reads it (its source:
    :func:`tdm_dagster.gate.scoring.source_of`): what a batch judged in chunks keeps of
    its records for :func:`~tdm_dagster.gate.outcome.decide`."""

    def __init__(self, sources: list[str]) -> None:
        self._sources = sources

    def __len__(self) -> int:
        return len(self._sources)

    def __getitem__(self, position):  # type: ignore[override]
        return {"metadata": {"source": self._sources[position]}}


class _Tally:
    """The chunks' findings put together, positions and rows counted across the batch."""

    def __init__(self, suites: Any) -> None:
        self.suites = suites
        """The suites' :class:`~tdm_dagster.gate.quality.suites.SuiteTally`: each chunk's rows go in as it is judged."""
        self.total = 0
        self.valid_indices = array("q")
        """Positions as machine integers (8 bytes each, not a Python int each)."""
        self.rejected: dict[int, list[RecordIssue]] = {}
        self.first_problem: str | None = None
        self.spec: str | None = None
        """The batch's one spec, when it has one (else ``specs``)."""
        self.specs: list[str | None] = []
        self.extra: dict[int, list[RecordIssue]] = {}
        self.answers = AnswerResults()
        self.deep: dict[str, Findings] = {}
        self.model_judged: set[int] = set()
        self.labels = ClassCounts()
        self.capped_words = 0
        self.sources: list[str] = []

    def add(self, chunk: GateInput, found: GateFindings, features: Any) -> None:
        offset, schema = self.total, found.schema
        self.total += schema.total
        self.valid_indices.extend(offset + position for position in schema.valid_indices)
        _merge(self.rejected, schema.rejected, offset)
        if self.first_problem is None:
            self.first_problem = first_problem(schema.rejected, chunk.read_issues)
        if isinstance(chunk.specs, str):
            self.spec = chunk.specs
        else:
            self.specs.extend(chunk.specs)
        self.suites.add(features)
        _merge(self.extra, found.extra, offset)
        _merge(self.answers.findings, found.answers.findings, offset)
        self.answers.verdicts.update((offset + position, verdict) for position, verdict in found.answers.verdicts.items())
        self.model_judged.update(offset + position for position in found.model_judged)
        self.labels.add(chunk.records, schema.valid_indices)
        for name, findings in found.deep.items():
            _merge(self.deep.setdefault(name, {}), findings, offset)
        self.capped_words += capped_response_words(schema.conversations)
        self.sources.extend(sys.intern(source_of(record)) for record in chunk.records)

    def schema(self) -> SchemaGateResult:
        """The batch's schema verdict (its conversations are not kept: see ``capped_words``)."""
        if self.spec is not None:
            try:
                get_spec(self.spec)
            except UnknownSpecError as exc:
                return SchemaGateResult(self.spec, self.total, [], [], self.rejected, str(exc))
            batch_spec = self.spec
        else:
            named = Counter(name for name in self.specs if name is not None)
            batch_spec = named.most_common(1)[0][0] if named else "none"
        error = no_record_matches(batch_spec, self.first_problem) if self.total and not self.valid_indices else None
        return SchemaGateResult(batch_spec, self.total, self.valid_indices, [], self.rejected, error)


def gate_chunks(
    chunks: Iterable[GateInput],
    config: TdmConfig,
    *,
    level: str | None = None,
    queued_in: TdmHome | None = None,
    progress: Callable[[int], None] | None = None,
) -> GateOutcome:
    """:func:`run_gate` over a batch given as consecutive chunks (same batch id; positions
    within each chunk from 0, read issues by those positions): each chunk is judged and
    let go before the next is read, the suites run once over every chunk's feature rows,
    and the outcome is the one the whole batch would get, positions counted across it.
    ``progress`` is told each chunk's record count once it is judged."""
    from tdm_dagster.gate.quality.suites import SuiteTally  # pandas and GX load here

    level = level or config.gate.level
    tally = _Tally(SuiteTally(config.quality, suites_for(level)))
    batch_id = ""
    with BatchMemory(config, suites_for(level), level, _eval_set_paths(config, queued_in), queued_in, None) as memory:
        for chunk in chunks:
            batch_id = chunk.batch_id
            tally.add(chunk, *_chunk_findings(chunk, config, level, memory))
            if progress:
                progress(len(chunk.records))
    if tally.deep:
        from tdm_dagster.gate.deep import in_listing_order

        tally.deep = {name: in_listing_order(findings) for name, findings in tally.deep.items()}
    schema = tally.schema()
    suites = tally.suites.results()
    report_class_balance(suites, tally.labels.balance())
    outcome = decide(
        schema, suites, batch_id, records=_ScoredSources(tally.sources), extra_issues=dict(sorted(tally.extra.items())),
        level=level, thresholds=config.gate.thresholds(), specs=None if tally.spec is not None else tally.specs,
        answers=tally.answers.verdicts, complexity=(tally.capped_words, len(schema.valid_indices)),
        model_judged=tally.model_judged,
    )  # fmt: skip
    if level in VERIFY_LEVELS:
        outcome.report["answers"] = tally.answers.summary()
    return replace(outcome, deep=tally.deep)


def run_gate(
    gate_input: GateInput,
    config: TdmConfig,
    *,
    level: str | None = None,
    queued_in: TdmHome | None = None,
    chunk_records: int = CHUNK_RECORDS,
) -> GateOutcome:
    """Schema gate -> the level's quality suites -> answer verification and is-it-language
    rules (standard, deep) -> deep findings (level ``deep``) -> decision.

    ``level`` defaults to ``config.gate.level``. The evaluation sets (``config.gate.eval_sets``
    and, with ``queued_in``, the held-out sets registered in that home) are read at every
    level: a record whose prompt is one of theirs is rejected. At level deep they are also
    searched for shared text and answers, and with ``queued_in`` the index of the data
    already queued there is searched for duplicates (off for a file that is itself
    queued). The records are judged ``chunk_records`` at a time (:func:`gate_chunks`):
    the same outcome, in bounded memory. Writes nothing."""
    return gate_chunks(gate_input.chunks(chunk_records), config, level=level, queued_in=queued_in)
