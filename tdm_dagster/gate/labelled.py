"""Labelled examples (spec ``labelled_v1``): a text with the intent, sentiment, entities
and optionally the persona a model should find in it, and how sure the labeller was.

::

    {"text": "Book a table at Nopa in San Francisco",
     "expected_intent": "book_restaurant", "expected_sentiment": "neutral",
     "expected_entities": [["Nopa", "ORG", 16, 20], ["San Francisco", "GPE", 24, 37]],
     "expected_persona": "diner", "confidence": 0.9}

An entity is ``[text, label, start, end]`` or ``{"text", "label", "start", "end"}``:
character offsets into ``text``. What a record must hold, so that no bad span waits
until ``export --format spacy`` to fail: a text that is not blank; spans inside the text,
on the token boundaries of spaCy's English tokenizer (what the spaCy export and
``spacy train`` cut the text with), not overlapping, each naming the text it covers; a
confidence from 0 to 1. Labels are checked against the sets declared in config
(``labels.intents``, ``labels.sentiments``, ``labels.entity_labels``, ``labels.personas``;
an empty set allows any label), and the batch's class balance goes into the balance
suite's report (``class_balance``).
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from tdm_dagster.records.issues import RecordIssue

if TYPE_CHECKING:
    from tdm_dagster.config.sections import LabelsConfig

SPEC = "labelled_v1"
ENTITY_KEYS = ("text", "label", "start", "end")
LABEL_FIELDS = {"expected_intent": "intents", "expected_sentiment": "sentiments", "expected_persona": "personas"}
"""Record field -> the ``labels`` config key that declares its allowed values."""


class Entity(NamedTuple):
    text: str
    label: str
    start: int
    end: int


def _issue(code: str, message: str, field: str) -> RecordIssue:
    return RecordIssue(suite="schema", code=f"schema.{code}", message=message, field=field)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_entity(item: Any) -> Entity | None:
    """``item`` as an Entity, when it has the four parts with the right types; else None."""
    if isinstance(item, Mapping) and set(item) == set(ENTITY_KEYS):
        item = [item[key] for key in ENTITY_KEYS]
    if not (isinstance(item, list | tuple) and len(item) == 4):
        return None
    text, label, start, end = item
    if isinstance(text, str) and isinstance(label, str) and label.strip() and _is_int(start) and _is_int(end):
        return Entity(text, label, start, end)
    return None


def entities(record: Mapping[str, Any]) -> list[Entity]:
    """The record's entities (for a record that passed ``check_record``)."""
    return [entity for entity in map(parse_entity, record.get("expected_entities") or ()) if entity is not None]


@functools.lru_cache(maxsize=1)
def _tokenizer():
    import spacy  # only when a record has entities to check

    return spacy.blank("en").tokenizer


def token_boundaries(text: str) -> tuple[frozenset[int], frozenset[int]]:
    """Character offsets where spaCy's English tokenizer starts and ends a token in ``text``."""
    doc = _tokenizer()(text)
    return frozenset(token.idx for token in doc), frozenset(token.idx + len(token) for token in doc)


def check_record(record: dict[str, Any]) -> RecordIssue | None:
    """The first way a ``labelled_v1`` record (types already checked) is wrong, or None."""
    text = record["text"]
    if not text.strip():
        return _issue("bad_value", "text: empty; a labelled example needs the text its labels describe", "text")
    for field in ("expected_intent", "expected_sentiment", "expected_persona"):
        if field in record and not record[field].strip():
            return _issue("bad_value", f"{field}: empty label", field)
    confidence = record["confidence"]
    if not 0.0 <= confidence <= 1.0:
        return _issue("bad_value", f"confidence: {confidence} is outside 0-1", "confidence")
    return _span_problem(text, record["expected_entities"])


def _span_problem(text: str, items: list[Any]) -> RecordIssue | None:
    starts, ends = token_boundaries(text) if items else (frozenset(), frozenset())
    taken: list[tuple[int, int, int]] = []
    for position, item in enumerate(items):
        where = f"expected_entities[{position}]"
        entity = parse_entity(item)
        if entity is None:
            return _issue("bad_span", f"{where}: expected [text, label, start, end] (or an object with those keys), got {json.dumps(item)[:120]}", where)
        shown = f"{where} {entity.text!r} [{entity.start}, {entity.end})"
        if not 0 <= entity.start < entity.end <= len(text):
            return _issue("bad_span", f"{shown}: outside the text of {len(text)} characters", where)
        covered = text[entity.start:entity.end]
        if covered != entity.text:
            return _issue("bad_span", f"{shown}: the span covers {covered!r}, not the entity's text", where)
        if entity.start not in starts or entity.end not in ends:
            return _issue("bad_span", f"{shown}: not on token boundaries (spaCy's English tokenizer cuts {text!r} elsewhere)", where)
        for start, end, other in taken:
            if entity.start < end and start < entity.end:
                return _issue("bad_span", f"{shown}: overlaps expected_entities[{other}] [{start}, {end})", where)
        taken.append((entity.start, entity.end, position))
    return None


def to_messages(record: Mapping[str, Any]) -> list[dict[str, str]]:
    """The example as a chat for the content suites: the text, then its labels as a reply."""
    parts = [f"intent: {record['expected_intent']}", f"sentiment: {record['expected_sentiment']}"]
    if "expected_persona" in record:
        parts.append(f"persona: {record['expected_persona']}")
    found = "; ".join(f"{entity.text} ({entity.label})" for entity in entities(record))
    parts.append(f"entities: {found or 'none'}")
    return [{"role": "user", "content": record["text"]}, {"role": "assistant", "content": "\n".join(parts)}]


def label_set_issues(records: Sequence[Any], indices: Sequence[int], labels: LabelsConfig) -> dict[int, list[RecordIssue]]:
    """A labelled record whose intent, sentiment, persona or entity label is outside the set
    ``labels`` declares for it (an empty set allows any)."""
    found: dict[int, list[RecordIssue]] = {}
    for position in indices:
        record = records[position]
        if not is_labelled(record):
            continue
        problems = [
            _unknown(field, record[field], getattr(labels, key))
            for field, key in LABEL_FIELDS.items()
            if field in record and getattr(labels, key) and record[field] not in getattr(labels, key)
        ]
        problems += [
            _unknown(f"expected_entities[{index}].label", entity.label, labels.entity_labels)
            for index, entity in enumerate(entities(record))
            if labels.entity_labels and entity.label not in labels.entity_labels
        ]
        if problems:
            found[position] = problems
    return found


def _unknown(field: str, value: str, allowed: Sequence[str]) -> RecordIssue:
    return _issue("unknown_label", f"{field}: {value!r} is not a declared label (labels: {', '.join(allowed)})", field)


def is_labelled(record: Any) -> bool:
    return isinstance(record, Mapping) and "expected_intent" in record and "text" in record


class ClassCounts:
    """How many labelled records carry each value of each label field, added chunk by
    chunk in batch order (a batch judged in chunks reports the whole batch's balance)."""

    def __init__(self) -> None:
        self.counts: dict[str, Counter] = {field: Counter() for field in (*LABEL_FIELDS, "entity_labels")}

    def add(self, records: Sequence[Any], indices: Sequence[int]) -> None:
        for position in indices:
            record = records[position]
            if is_labelled(record):
                for field in LABEL_FIELDS:
                    if field in record:
                        self.counts[field][record[field]] += 1
                self.counts["entity_labels"].update(entity.label for entity in entities(record))

    def balance(self) -> dict[str, Any]:
        """Per label field, its counts and the ratio of the largest class to the smallest
        (1.0 is perfectly balanced); empty when no record is labelled."""
        return {
            field: {"counts": dict(counter.most_common()), "imbalance": max(counter.values()) / min(counter.values())}
            for field, counter in self.counts.items()
            if counter
        }


def report_class_balance(suites: Mapping[str, Any], found: Mapping[str, Any]) -> None:
    """Add the labelled records' class balance (:meth:`ClassCounts.balance`) to the
    balance suite's observed values and report (when that suite ran and the batch has
    labelled records): reported, not judged."""
    balance = suites.get("balance")
    if balance is not None and found:
        balance.observed["class_balance"] = found
        balance.details.setdefault("observed", {})["class_balance"] = found
