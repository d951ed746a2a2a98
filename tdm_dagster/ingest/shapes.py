"""Recognise a source record's shape and map it to one of our specs (``tdm_dagster.gate.schemas``).

Public datasets come in a handful of shapes. Each record is recognised by the keys it
has and converted on its own, so a file mixing shapes still maps record by record (its
records then land in more than one spec: batch them by ``MappedRecord.spec``;
``common_spec`` says whether a file's records share one). Deny by default, like the
schema gate: a key that is neither part of the shape nor provenance (``id``, ``source``,
``metadata``) rejects the record rather than being dropped. Provenance moves into
``metadata``, which every spec we map to allows.

Field *types* are left to the schema gate: a mapping copies values through, and only
fails where it must look inside a value to convert it (ShareGPT turns, seed-task
instances).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple

from tdm_dagster.records.issues import RecordIssue

if TYPE_CHECKING:
    from tdm_dagster.ingest.source import SourceRecord

PROVENANCE_KEYS = ("id", "source", "metadata", "reference_answer", "answer")
"""Kept, under ``metadata``: where a record came from, and the reference answer the gate checks its reply against."""
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "model": "assistant", "system": "system"}  # fmt: skip
_TURN_KEYS = frozenset({"from", "value"})
_INSTANCE_KEYS = frozenset({"input", "output"})


@dataclass(frozen=True)
class MappedRecord:
    """One record in a spec's form; ``sub_index`` is the seed-task instance it came from, else None."""

    spec: str
    record: dict[str, Any]
    shape: str
    sub_index: int | None = None


class _Example(NamedTuple):
    fields: dict[str, Any]
    metadata: dict[str, Any]
    sub_index: int | None = None


Converted = list[_Example] | RecordIssue


def _issue(code: str, message: str, field: str, suggestion: str) -> RecordIssue:
    return RecordIssue("shape", f"shape.{code}", message, field, severity="ERROR", suggestion=suggestion)


def _text_or_empty(value: Any) -> Any:
    """A missing or null ``input`` means no input (alpaca leaves it empty)."""
    return "" if value is None else value


@dataclass(frozen=True)
class Shape:
    name: str
    spec: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    convert: Callable[[dict[str, Any]], Converted]

    @cached_property
    def allowed(self) -> frozenset[str]:
        return frozenset((*self.required, *self.optional, *PROVENANCE_KEYS))

    @property
    def signature(self) -> str:
        return "{" + ", ".join([*self.required, *(f"{key}?" for key in self.optional)]) + "}"


def _alpaca(value: dict[str, Any]) -> Converted:
    fields = {"instruction": value["instruction"], "input": _text_or_empty(value.get("input")), "output": value["output"]}
    return [_Example(fields, {})]


def _prompt_completion(value: dict[str, Any]) -> Converted:
    return [_Example({"prompt": value["prompt"], "completion": value["completion"]}, {})]


def _chat(value: dict[str, Any]) -> Converted:
    return [_Example({"messages": value["messages"]}, {})]


def _sharegpt(value: dict[str, Any]) -> Converted:
    turns = value["conversations"]
    if not isinstance(turns, list):
        return _issue("wrong_type", f"conversations: expected an array of turns, got {type(turns).__name__}", "conversations",
                      "give conversations as a list of {from, value} turns")  # fmt: skip
    messages = []
    for position, turn in enumerate(turns):
        where = f"conversations[{position}]"
        if not isinstance(turn, dict) or turn.keys() != _TURN_KEYS:
            found = sorted(turn) if isinstance(turn, dict) else type(turn).__name__
            return _issue("bad_turn", f"{where}: a ShareGPT turn has exactly 'from' and 'value', got {found}", where,
                          "keep only from and value in each turn")  # fmt: skip
        role = SHAREGPT_ROLES.get(turn["from"]) if isinstance(turn["from"], str) else None
        if role is None:
            return _issue("unknown_role", f"{where}.from is {turn['from']!r}; expected one of {', '.join(SHAREGPT_ROLES)}",
                          f"{where}.from", "map the speaker to one of those names, or drop the turn")  # fmt: skip
        messages.append({"role": role, "content": turn["value"]})
    return [_Example({"messages": messages}, {})]


def _seed_task(value: dict[str, Any]) -> Converted:
    """One instruction_v1 example per instance, each remembering its task and instance index."""
    instances = value["instances"]
    if not isinstance(instances, list) or not instances:
        return _issue("bad_instances", "instances: expected a non-empty array of {input, output}", "instances",
                      "give the task at least one {input, output} instance, or drop it")  # fmt: skip
    task = {"task_id": value.get("id"), "task_name": value.get("name"), "is_classification": value.get("is_classification")}
    task = {key: item for key, item in task.items() if item is not None}
    examples = []
    for position, instance in enumerate(instances):
        where = f"instances[{position}]"
        if not isinstance(instance, dict) or not instance.keys() <= _INSTANCE_KEYS:
            found = sorted(instance) if isinstance(instance, dict) else type(instance).__name__
            return _issue("bad_instance", f"{where}: an instance has only 'input' and 'output', got {found}", where,
                          "keep only input and output in each instance")  # fmt: skip
        fields = {"instruction": value["instruction"], "input": _text_or_empty(instance.get("input"))}
        if "output" in instance:  # a missing output is the schema gate's to report
            fields["output"] = instance["output"]
        examples.append(_Example(fields, {**task, "instance_index": position}, position))
    return examples


_LABELLED_FIELDS = ("expected_sentiment", "expected_entities", "expected_persona", "confidence")


def _labelled(value: dict[str, Any]) -> Converted:
    """Copied through: what a labelled example must hold is the schema gate's to check."""
    fields = {key: value[key] for key in ("text", "expected_intent", *_LABELLED_FIELDS) if key in value}
    return [_Example(fields, {})]


SHAPES: tuple[Shape, ...] = (
    Shape("alpaca", "instruction_v1", ("instruction", "output"), ("input",), _alpaca),
    Shape("prompt_completion", "completion_v1", ("prompt", "completion"), (), _prompt_completion),
    Shape("chat_messages", "chat_sft_v1", ("messages",), (), _chat),
    Shape("sharegpt", "chat_sft_v1", ("conversations",), (), _sharegpt),
    Shape("alpaca_seed_task", "instruction_v1", ("instruction", "instances"), ("id", "name", "is_classification"), _seed_task),
    Shape("labelled_example", "labelled_v1", ("text", "expected_intent"), _LABELLED_FIELDS, _labelled),
)
ACCEPTED_SHAPES = "; ".join(f"{shape.name} {shape.signature} -> {shape.spec}" for shape in SHAPES)


def detect_shape(keys: Iterable[str], noun: str = "keys") -> Shape | RecordIssue:
    """The one shape whose required keys ``keys`` has, with no key outside it; else why not.

    Messages start with ``noun`` and the keys found (``columns`` for a table's header).
    """
    keys = set(keys)
    matches = [shape for shape in SHAPES if set(shape.required) <= keys]
    if len(matches) > 1:
        names = " and ".join(shape.name for shape in matches)
        return _issue("ambiguous_shape", f"{noun} {_shown(keys)} fit both {names}; a record has one shape's keys", "",
                      "split the record, or move the other keys under metadata")  # fmt: skip
    if not matches:
        return _issue("unknown_shape", f"{noun} {_shown(keys)} match no shape we accept{_closest(keys)}; we accept: {ACCEPTED_SHAPES}",
                      "", "convert the record to one of the accepted shapes")  # fmt: skip
    [shape] = matches
    unexpected = sorted(keys - shape.allowed)
    if unexpected:
        return _issue("unexpected_key", f"{noun} {_shown(keys)}: {unexpected[0]} is not part of the {shape.name} shape {shape.signature} "
                      f"(provenance keys {', '.join(PROVENANCE_KEYS)} are kept too)", unexpected[0],
                      "drop the key, or move it under metadata")  # fmt: skip
    return shape


def _shown(keys: set[str], most: int = 12) -> str:
    listed = sorted(keys)
    return str(listed) if len(listed) <= most else f"{str(listed[:most])[:-1]}, ... {len(listed) - most} more]"


def _closest(keys: set[str]) -> str:
    best = max(SHAPES, key=lambda shape: len(keys & set(shape.required)))
    missing = [key for key in best.required if key not in keys]
    return f" (closest: {best.name}, missing {', '.join(missing)})" if len(missing) < len(best.required) else ""


def columns_problem(columns: Iterable[str]) -> str | None:
    """Why a table's columns fit no accepted shape, naming the columns found; None if they fit one."""
    shape = detect_shape(columns, noun="columns")
    return shape.message if isinstance(shape, RecordIssue) else None


def _provenance(value: dict[str, Any], shape: Shape) -> dict[str, Any] | RecordIssue:
    """The record's ``metadata`` plus its top-level provenance keys that the shape does not use itself."""
    metadata = value.get("metadata", {})
    if not isinstance(metadata, dict):
        return _issue("wrong_type", f"metadata: expected an object, got {type(metadata).__name__}", "metadata",
                      "make metadata a JSON object, e.g. {\"source\": ...}")  # fmt: skip
    own = {*shape.required, *shape.optional, "metadata"}
    return _merge(metadata, {key: value[key] for key in PROVENANCE_KEYS if key in value and key not in own})


def _merge(metadata: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any] | RecordIssue:
    """``metadata`` plus ``extra``, refusing to overwrite a key with a different value."""
    for key, item in extra.items():
        if key in metadata and metadata[key] != item:
            return _issue("metadata_conflict", f"metadata.{key} is {metadata[key]!r} but the record also carries {key} {item!r}",
                          f"metadata.{key}", "keep one of the two values")  # fmt: skip
    return {**metadata, **extra}


def map_record(value: Any) -> list[MappedRecord] | RecordIssue:
    """The spec records ``value`` maps to (several for a seed task), or why it maps to none."""
    if not isinstance(value, dict):
        return _issue("not_an_object", f"record is a {type(value).__name__}, not a JSON object", "",
                      "each record must be a JSON object")  # fmt: skip
    shape = detect_shape(value)
    if isinstance(shape, RecordIssue):
        return shape
    provenance = _provenance(value, shape)
    if isinstance(provenance, RecordIssue):
        return provenance
    converted = shape.convert(value)
    if isinstance(converted, RecordIssue):
        return converted
    mapped = []
    for example in converted:
        metadata = _merge(provenance, example.metadata)
        if isinstance(metadata, RecordIssue):
            return metadata
        record = {**example.fields, "metadata": metadata} if metadata else example.fields
        mapped.append(MappedRecord(shape.spec, record, shape.name, example.sub_index))
    return mapped


def map_source(source: SourceRecord) -> list[MappedRecord] | RecordIssue:
    """``map_record`` for a record as read: its read issue as is, or its mapping issue located in the file."""
    if source.issue is not None:
        return source.issue
    mapped = map_record(source.value)
    if isinstance(mapped, RecordIssue):
        return replace(mapped, message=f"{source.where()}: {mapped.message}")
    return mapped


def common_spec(mapped: Iterable[MappedRecord]) -> str | None:
    """The one spec all these records map to; None when they mix specs (or there are none)."""
    specs = {record.spec for record in mapped}
    return specs.pop() if len(specs) == 1 else None
