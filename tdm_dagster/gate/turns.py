"""A conversation's parts as the gate's finders read them: its whole text, its prompt and
final answer, and the built-in skill problem it poses. Shared by the lexical (deep),
semantic and sharded finders, so each reads a record the same way."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tdm_dagster.gate.leakage import Problem

Messages = Sequence[Mapping[str, Any]]


def conversation_text(messages: Messages) -> str:
    return "\n".join(str(m.get("content", "")) for m in messages)


def prompt_and_answer(messages: Messages) -> tuple[str, str]:
    """Everything before the last assistant turn, and that turn."""
    last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=len(messages))
    prompt = "\n".join(str(m.get("content", "")) for m in messages[:last])
    answer = str(messages[last].get("content", "")) if last < len(messages) else ""
    return prompt, answer


def problems_of(records: Sequence[Any], conversations: Sequence[Messages]) -> list[Problem | None]:
    """Each record's ``(skill, problem key)`` (None for records of no built-in skill), read
    from its metadata and its conversation (records of any shape)."""
    from tdm_dagster.generate.generators import problem_of

    return [
        problem_of({"messages": list(messages), "metadata": record.get("metadata")}) if isinstance(record, Mapping) else None
        for record, messages in zip(records, conversations, strict=True)
    ]
