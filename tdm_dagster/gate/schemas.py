"""The schema gate: deny by default.

A batch declares one spec. A record passes only if it has exactly the fields its spec
allows, with the right types; anything else (an unknown spec, a missing or unknown
field, a wrong type) is rejected with a reason *before* any content check runs. Each
spec also says how its records read as a chat, so the content suites see one shape.

Specs:
- ``chat_sft_v1``: ``{"messages": [{"role", "content"}, ...], "metadata"?: {...}, "id"?}``
- ``syllo_v1``: a chat whose metadata carries a SYLLO puzzle's skill, level, seed, answer
- ``completion_v1``: ``{"prompt", "completion", "metadata"?, "id"?}``
- ``instruction_v1``: alpaca ``{"instruction", "input", "output", "metadata"?, "id"?}``
- ``labelled_v1``: ``{"text", "expected_intent", "expected_sentiment", "expected_entities",
  "expected_persona"?, "confidence", "metadata"?, "id"?}`` (see :mod:`tdm_dagster.gate.labelled`)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tdm_dagster.gate import labelled
from tdm_dagster.records.issues import RecordIssue

Messages = list[dict[str, str]]
_MESSAGE_KEYS = frozenset({"role", "content"})
_ID_TYPES = (str, int)


def _issue(code: str, message: str, field: str) -> RecordIssue:
    return RecordIssue(suite="schema", code=f"schema.{code}", message=message, field=field)


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


@dataclass(frozen=True)
class Spec:
    name: str
    required: dict[str, tuple[type, ...]]
    optional: dict[str, tuple[type, ...]]
    to_messages: Callable[[dict[str, Any]], Messages]
    extra_check: Callable[[dict[str, Any]], RecordIssue | None] | None = None
    description: str = ""

    def check(self, record: Any) -> RecordIssue | None:
        """The first way ``record`` breaks this spec, or None if it conforms."""
        if not isinstance(record, dict):
            return _issue("not_an_object", f"record is a {_type_name(record)}, not a JSON object", "")
        for key in record:
            if key not in self.required and key not in self.optional:
                allowed = ", ".join([*self.required, *self.optional])
                return _issue("unknown_field", f"{key}: field not allowed by {self.name} (allowed: {allowed})", key)
        for key, types in self.required.items():
            if key not in record:
                return _issue("missing_field", f"{key}: required by {self.name} but missing", key)
            if not isinstance(record[key], types) or isinstance(record[key], bool):
                return _wrong_type(key, record[key], types)
        for key, types in self.optional.items():
            if key in record and (not isinstance(record[key], types) or isinstance(record[key], bool)):
                return _wrong_type(key, record[key], types)
        return self.extra_check(record) if self.extra_check else None


def _wrong_type(key: str, value: Any, types: tuple[type, ...]) -> RecordIssue:
    expected = " or ".join(_JSON_NAMES.get(t, t.__name__) for t in types)
    return _issue("wrong_type", f"{key}: expected {expected}, got {_type_name(value)}", key)


_JSON_NAMES = {str: "string", int: "integer", float: "number", list: "array", dict: "object"}


def _check_messages(record: dict[str, Any]) -> RecordIssue | None:
    for position, message in enumerate(record["messages"]):
        where = f"messages[{position}]"
        if not isinstance(message, dict):
            return _issue("wrong_type", f"{where}: expected object, got {_type_name(message)}", where)
        if message.keys() != _MESSAGE_KEYS:
            extra = sorted(message.keys() - _MESSAGE_KEYS)
            missing = sorted(_MESSAGE_KEYS - message.keys())
            problem = f"unknown keys {extra}" if extra else f"missing keys {missing}"
            return _issue("bad_message", f"{where}: {problem} (a message has exactly role and content)", where)
        for key in ("role", "content"):
            if not isinstance(message[key], str):
                return _issue("wrong_type", f"{where}.{key}: expected string, got {_type_name(message[key])}", f"{where}.{key}")
    return None


def _check_syllo(record: dict[str, Any]) -> RecordIssue | None:
    problem = _check_messages(record)
    if problem:
        return problem
    metadata = record["metadata"]
    if metadata.get("skill") != "syllo":
        return _issue("bad_value", f"metadata.skill: expected 'syllo', got {metadata.get('skill')!r}", "metadata.skill")
    level = metadata.get("level")
    if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= 5:
        return _issue("bad_value", f"metadata.level: expected an integer 1-5, got {level!r}", "metadata.level")
    seed = metadata.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool):
        return _issue("bad_value", f"metadata.seed: expected an integer, got {_type_name(seed)}", "metadata.seed")
    answer = metadata.get("answer")
    if not (isinstance(answer, list) and answer and all(isinstance(w, str) and w for w in answer)):
        return _issue("bad_value", "metadata.answer: expected a non-empty list of words", "metadata.answer")
    return None


def _chat_messages(record: dict[str, Any]) -> Messages:
    return record["messages"]


def _completion_messages(record: dict[str, Any]) -> Messages:
    return [
        {"role": "user", "content": record["prompt"]},
        {"role": "assistant", "content": record["completion"]},
    ]


def _instruction_messages(record: dict[str, Any]) -> Messages:
    prompt = record["instruction"]
    if record["input"].strip():
        prompt = f"{prompt}\n\n{record['input']}"
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": record["output"]}]


_COMMON_OPTIONAL = {"metadata": (dict,), "id": _ID_TYPES}

SPECS: dict[str, Spec] = {
    spec.name: spec
    for spec in (
        Spec(
            "chat_sft_v1",
            required={"messages": (list,)},
            optional=_COMMON_OPTIONAL,
            to_messages=_chat_messages,
            extra_check=_check_messages,
            description="chat messages for supervised fine-tuning",
        ),
        Spec(
            "syllo_v1",
            required={"messages": (list,), "metadata": (dict,)},
            optional={"id": _ID_TYPES},
            to_messages=_chat_messages,
            extra_check=_check_syllo,
            description="SYLLO word puzzle as chat, with its answer in metadata",
        ),
        Spec(
            "completion_v1",
            required={"prompt": (str,), "completion": (str,)},
            optional=_COMMON_OPTIONAL,
            to_messages=_completion_messages,
            description="prompt/completion pairs",
        ),
        Spec(
            "instruction_v1",
            required={"instruction": (str,), "input": (str,), "output": (str,)},
            optional=_COMMON_OPTIONAL,
            to_messages=_instruction_messages,
            description="alpaca instruction/input/output",
        ),
        Spec(
            labelled.SPEC,
            required={"text": (str,), "expected_intent": (str,), "expected_sentiment": (str,), "expected_entities": (list,),
                      "confidence": (int, float)},  # fmt: skip
            optional={"expected_persona": (str,), **_COMMON_OPTIONAL},
            to_messages=labelled.to_messages,
            extra_check=labelled.check_record,
            description="a text labelled with intent, sentiment, entity spans, persona? and confidence",
        ),
    )
}


class UnknownSpecError(KeyError):
    def __str__(self) -> str:
        return f"unknown schema spec {self.args[0]!r}; known specs: {', '.join(SPECS)}"


def get_spec(name: str) -> Spec:
    try:
        return SPECS[name]
    except KeyError:
        raise UnknownSpecError(name) from None


@dataclass
class SchemaGateResult:
    spec: str
    total: int
    valid_indices: list[int]
    """Positions (0-based) of the records that conform, in input order."""
    conversations: list[Messages]
    """The conforming records read as chats, aligned with ``valid_indices``."""
    rejected: dict[int, list[RecordIssue]]
    batch_error: str | None = None
    """Set when the batch as a whole is refused: unknown spec, or no record conforms."""


def schema_gate(
    records: Sequence[Any], spec_names: str | Sequence[str | None], held: Mapping[int, Sequence[RecordIssue]] | None = None
) -> SchemaGateResult:
    """Check every record against its spec; deny anything not explicitly allowed.

    ``spec_names`` is one spec for the whole batch, or one per record (an inbox file
    whose records came in different shapes; ``None`` for a record that could not be
    read). A record that is ``None`` could not be read, or was refused before (a shape
    other than the spec ``tdm validate --spec`` asks for): ``held`` has its reasons, which
    the caller keeps, and the batch error names the first of them when no record conforms.
    """
    if isinstance(spec_names, str):
        try:
            get_spec(spec_names)
        except UnknownSpecError as exc:
            issue = _issue("unknown_spec", str(exc), "")
            return SchemaGateResult(spec_names, len(records), [], [], {i: [issue] for i in range(len(records))}, str(exc))
        per_record: Sequence[str] = [spec_names] * len(records)
        batch_spec = spec_names
    else:
        if len(spec_names) != len(records):
            raise ValueError(f"{len(spec_names)} spec names for {len(records)} records")
        per_record = spec_names
        named = Counter(name for name in spec_names if name is not None)
        batch_spec = named.most_common(1)[0][0] if named else "none"
    valid: list[int] = []
    conversations: list[Messages] = []
    rejected: dict[int, list[RecordIssue]] = {}
    for position, (record, name) in enumerate(zip(records, per_record)):
        if name is None or record is None:  # not read, or refused: the caller holds the reason
            rejected[position] = []
            continue
        spec = SPECS.get(name)
        problem = spec.check(record) if spec else _issue("unknown_spec", str(UnknownSpecError(name)), "")
        if problem is None:
            valid.append(position)
            conversations.append(spec.to_messages(record))
        else:
            rejected[position] = [problem]
    batch_error = None
    if records and not valid:
        batch_error = no_record_matches(batch_spec, first_problem(rejected, held or {}))
    return SchemaGateResult(batch_spec, len(records), valid, conversations, rejected, batch_error)


def first_problem(*found_by_position: Mapping[int, Sequence[RecordIssue]]) -> str | None:
    """The reason of the first record (by position) with one in any of ``found_by_position``
    (the schema gate's rejections, and the reasons the caller holds for records it could
    not read)."""
    reasons = sorted((position, found[0].message) for by_position in found_by_position for position, found in by_position.items() if found)
    return reasons[0][1] if reasons else None


def no_record_matches(batch_spec: str, first: str | None) -> str:
    """Why a batch in which no record conforms is refused."""
    return f"no record matches spec {batch_spec} (first problem: {first or 'no record could be read'})"


def as_chat_record(record: dict[str, Any], spec_name: str) -> dict[str, Any]:
    """Any conforming record as a ``chat_sft_v1`` record, what the trainer reads; the
    original spec is kept in ``metadata.spec`` when it was not a chat already."""
    spec = get_spec(spec_name)
    if spec.to_messages is _chat_messages:
        return record
    out: dict[str, Any] = {"messages": spec.to_messages(record), "metadata": {**record.get("metadata", {}), "spec": spec_name}}
    if "id" in record:
        out["id"] = record["id"]
    return out
