"""One row of measurements per record: everything the five suites validate.

The per-record Python work is one tight pass that flattens the batch into turn arrays
(and checks structure); everything after that is numpy/pandas over those arrays, one
regex pass over all turns (see ``heuristics``), and exact tokenization only for the few
conversations whose byte-length token bounds straddle a limit (see ``tokens``).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from tdm_dagster.gate.margins import keep_nearest
from tdm_dagster.gate.quality.heuristics import Measured, turn_issues
from tdm_dagster.gate.quality.results import SUITE_NAMES
from tdm_dagster.config.quality import QualitySettings
from tdm_dagster.gate.quality.tokens import TokenCounter, needs_exact_count

ROLES = ("system", "user", "assistant")
_ROLE_CODE = {role: code for code, role in enumerate(ROLES)}
SYSTEM, USER, ASSISTANT = range(3)
FEATURE_COLUMNS = (
    "format_error", "format_code", "tokens_low", "tokens_high", "exact_token_count_known",
    "response_hash", "is_duplicate_example", "duplicate_of", "user_turns", "assistant_turns",
    "turn_ratio", "content_issue", "content_issue_field",
)  # fmt: skip


@dataclass
class _FlatBatch:
    """The batch as parallel turn arrays (string contents only) plus per-record structure."""

    size: int
    texts: list[str] = field(default_factory=list)
    record: list[int] = field(default_factory=list)
    position: list[int] = field(default_factory=list)
    role: list[int] = field(default_factory=list)
    format_error: list[str | None] = field(default_factory=list)
    format_code: list[str | None] = field(default_factory=list)
    duplicate_of: list[int] = field(default_factory=list)
    """Index of the earlier identical record, or -1."""


def compute_features(
    conversations: Sequence[Any],
    settings: QualitySettings,
    counter: TokenCounter | None,
    names: Collection[str] = SUITE_NAMES,
    first_of: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Feature frame (index 0..n-1, columns ``FEATURE_COLUMNS``) of ``conversations``.

    A conversation is a list of ``{"role", "content"}`` messages, or a record holding one
    under ``"messages"``. Token length is that of all contents joined by newlines. Only
    the columns the suites in ``names`` read are computed (the quick level needs the
    structure alone; ``counter`` may then be None). ``first_of`` (row of the first
    identical record, -1 for none) replaces the batch's own exact-duplicate search when
    the batch is one shard of a larger one (rows then count across all shards).
    """
    timings: dict[str, float] = {}
    with _stage(timings, "flatten_and_format"):
        batch = _flatten(conversations)
    n = batch.size
    record = np.asarray(batch.record, dtype=np.int64)
    role = np.asarray(batch.role, dtype=np.int64)
    frame = pd.DataFrame(
        {"format_error": pd.Series(batch.format_error, dtype=object),
         "format_code": pd.Series(batch.format_code, dtype=object)},
        index=pd.RangeIndex(n),
    )  # fmt: skip
    if "length" in names:
        with _stage(timings, "token_bounds_and_refinement"):
            _add_token_bounds(frame, batch, record, settings, counter, timings)
    if "diversity" in names:
        with _stage(timings, "diversity"):
            _add_diversity(frame, batch, record, role, first_of)
    user = np.bincount(record[role == USER], minlength=n)
    assistant = np.bincount(record[role == ASSISTANT], minlength=n)
    frame["user_turns"] = user
    frame["assistant_turns"] = assistant
    with np.errstate(divide="ignore", invalid="ignore"):
        # No user turn: infinite ratio (or 0 with no turns at all), never a silent NaN.
        frame["turn_ratio"] = np.where(user > 0, assistant / np.maximum(user, 1), np.where(assistant > 0, np.inf, 0.0))
    if "content" in names:
        with _stage(timings, "content_heuristics"):
            _add_content_issues(frame, batch, settings)
    frame = frame[[column for column in FEATURE_COLUMNS if column in frame]]
    frame.attrs["timings_s"] = timings
    return frame


@contextmanager
def _stage(timings: dict[str, float], name: str) -> Iterator[None]:
    """Record a stage's wall time (the benchmark's breakdown; cheap enough to keep always)."""
    started = time.perf_counter()
    yield
    timings[name] = timings.get(name, 0.0) + time.perf_counter() - started


def _roles_and_contents(messages: Any) -> tuple[tuple[Any, ...], tuple[Any, ...], bool]:
    """Roles, contents and whether the record is well formed (empty when not a list of messages)."""
    try:
        signature = tuple(message["role"] for message in messages)
        contents = tuple(message["content"] for message in messages)
        return signature, contents, _role_sequence_error(signature) is None and all(type(c) is str and c for c in contents)
    except (TypeError, KeyError, AttributeError):  # not a list of dicts, or unhashable roles
        return (), (), False


def example_identity(messages: Any) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """What makes two well-formed examples the same (roles and contents), or None for a
    malformed one: the key of the diversity suite's exact-duplicate search."""
    signature, contents, well_formed = _roles_and_contents(messages)
    return (signature, contents) if well_formed else None


def example_digest(messages: Any) -> bytes | None:
    """16-byte digest of :func:`example_identity` (None for a malformed example): what a
    batch judged in chunks remembers of each example to find its copies in later chunks."""
    identity = example_identity(messages)
    return None if identity is None else hashlib.blake2b(json.dumps(identity).encode("utf-8"), digest_size=16).digest()


def _flatten(conversations: Sequence[Any]) -> _FlatBatch:
    batch = _FlatBatch(size=len(conversations))
    first_seen: dict[tuple[tuple[str, ...], tuple[str, ...]], int] = {}
    texts, records, positions, roles = batch.texts, batch.record, batch.position, batch.role
    for index, conversation in enumerate(conversations):
        messages = conversation.get("messages") if isinstance(conversation, Mapping) else conversation
        error = code = None
        signature, contents, well_formed = _roles_and_contents(messages)
        if not well_formed:
            code, error = describe_format_error(messages)
        batch.format_error.append(error)
        batch.format_code.append(code)
        first = first_seen.setdefault((signature, contents), index) if error is None else index
        batch.duplicate_of.append(first if first != index else -1)
        for position, (name, content) in enumerate(zip(signature, contents)):
            if type(content) is str:
                texts.append(content)
                records.append(index)
                positions.append(position)
                roles.append(_ROLE_CODE.get(name, -1) if type(name) is str else -1)
    return batch


@lru_cache(maxsize=1024)
def _role_sequence_error(signature: tuple[Any, ...]) -> tuple[str, str] | None:
    """(code, message) for the first structural role problem; memoised per role sequence."""
    for position, name in enumerate(signature):
        if name not in _ROLE_CODE:
            allowed = ", ".join(ROLES)
            return "format.bad_role", f"messages[{position}].role: {name!r} is not one of {allowed}"
    if not signature:
        return "format.no_messages", "messages: no messages"
    start = 1 if signature[0] == "system" else 0
    for position in range(start, len(signature)):
        expected = "user" if (position - start) % 2 == 0 else "assistant"
        if signature[position] != expected:
            return (
                "format.not_alternating",
                f"messages[{position}].role: {signature[position]!r} where {expected!r} was expected "
                "(optional system first, then user/assistant alternating)",
            )
    if len(signature) == start or signature[-1] != "assistant":
        return "format.no_final_assistant", f"messages[{len(signature) - 1}]: the conversation does not end with an assistant turn"
    return None


def describe_format_error(messages: Any) -> tuple[str, str]:
    """(code, 'field: problem') for the first structural problem of a malformed record."""
    if not isinstance(messages, list):
        return "format.not_a_list", f"messages: {type(messages).__name__} is not a list of messages"
    for position, message in enumerate(messages):
        where = f"messages[{position}]"
        if not isinstance(message, Mapping):
            return "format.bad_message", f"{where}: {type(message).__name__} is not a message object"
        for key in ("role", "content"):
            if key not in message:
                return "format.missing_field", f"{where}.{key}: missing"
        if not isinstance(message["role"], str):
            return "format.bad_role", f"{where}.role: {message['role']!r} is not one of {', '.join(ROLES)}"
        content = message["content"]
        if not isinstance(content, str):
            return "format.bad_content", f"{where}.content: {type(content).__name__} is not a string"
        if not content:
            return "format.empty_content", f"{where}.content: empty string"
    roles_error = _role_sequence_error(tuple(message["role"] for message in messages))
    assert roles_error is not None, "describe_format_error called on a well-formed record"
    return roles_error


def _add_token_bounds(
    frame: pd.DataFrame,
    batch: _FlatBatch,
    record: np.ndarray,
    settings: QualitySettings,
    counter: TokenCounter,
    timings: dict[str, float],
) -> None:
    n = batch.size
    turn_bytes = np.fromiter(
        (len(t) if t.isascii() else len(t.encode()) for t in batch.texts), np.int64, len(batch.texts)
    )
    non_ascii = np.fromiter((not t.isascii() for t in batch.texts), bool, len(batch.texts))
    turns = np.bincount(record, minlength=n)
    conversation_bytes = np.bincount(record, weights=turn_bytes, minlength=n).astype(np.int64)
    conversation_bytes += np.maximum(turns - 1, 0)  # the joining newlines
    is_ascii = np.bincount(record, weights=non_ascii, minlength=n) == 0
    low, high = counter.bounds.low_high(conversation_bytes, is_ascii)
    refine = np.flatnonzero(needs_exact_count(low, high, settings.min_tokens, settings.max_tokens))
    if refine.size:
        first_turn = np.concatenate(([0], np.cumsum(turns)))
        texts = batch.texts
        joined = ["\n".join(texts[first_turn[i] : first_turn[i + 1]]) for i in refine.tolist()]
        with _stage(timings, "token_refinement"):
            exact = np.asarray(counter.count(joined), dtype=np.int64)
        low[refine] = exact
        high[refine] = exact
    frame["tokens_low"] = low
    frame["tokens_high"] = high
    frame["exact_token_count_known"] = low == high
    frame.attrs["refined_texts"] = int(refine.size)


def _add_diversity(
    frame: pd.DataFrame, batch: _FlatBatch, record: np.ndarray, role: np.ndarray, first_of: Sequence[int] | None
) -> None:
    """Response hash (case- and whitespace-insensitive) and exact-duplicate flags."""
    responses = [""] * batch.size
    texts = batch.texts
    for turn in np.flatnonzero(role == ASSISTANT).tolist():
        owner = record[turn]
        responses[owner] = f"{responses[owner]}\n{texts[turn]}" if responses[owner] else texts[turn]
    normalized = pd.Series([" ".join(text.lower().split()) for text in responses], dtype=object)
    frame["response_hash"] = pd.util.hash_pandas_object(normalized, index=False).to_numpy()
    duplicate_of = np.asarray(batch.duplicate_of if first_of is None else first_of, dtype=np.int64)
    frame["is_duplicate_example"] = duplicate_of >= 0
    frame["duplicate_of"] = duplicate_of


def _add_content_issues(frame: pd.DataFrame, batch: _FlatBatch, settings: QualitySettings) -> None:
    """The first flagged turn of each record names its content issue; the reply of each
    record nearest to a repetition threshold it passes goes in ``frame.attrs["content_near"]``
    (row -> (message index, measured value)) for the rule-margin warnings."""
    issue: list[str | None] = [None] * batch.size
    issue_field: list[str | None] = [None] * batch.size
    nearest: dict[int, tuple[int, Measured]] = {}
    codes, near = turn_issues(batch.texts, settings)
    for turn, code in enumerate(codes):
        if code is not None and issue[batch.record[turn]] is None:
            issue[batch.record[turn]] = code
            issue_field[batch.record[turn]] = f"messages[{batch.position[turn]}].content"
        if near[turn] is not None and batch.role[turn] == ASSISTANT:
            keep_nearest(nearest, batch.record[turn], batch.position[turn], near[turn])
    frame.attrs["content_near"] = nearest
    frame["content_issue"] = pd.Series(issue, dtype=object)
    frame["content_issue_field"] = pd.Series(issue_field, dtype=object)
