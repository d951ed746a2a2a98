"""Chat-template-ready JSONL for trainers: one ``{"messages": [...]}`` a line.

Any record the schema specs know becomes a chat through its spec's ``to_messages``. With
a tokenizer folder that has a chat template, each line also gets ``text``: the chat
rendered by that template, which trainers that take plain text can use as is.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tdm_dagster.formats.errors import FormatError
from tdm_dagster.formats.text_files import write_jsonl
from tdm_dagster.gate.schemas import SPECS, Messages, UnknownSpecError, get_spec


def record_messages(record: dict[str, Any], spec_name: str | None = None) -> Messages:
    """The record as a chat: by ``spec_name``, or by the first spec it conforms to.

    Raises ``ValueError`` saying why when the record fits no spec (or not the one named).
    """
    specs = [get_spec(spec_name)] if spec_name else list(SPECS.values())
    problems = []
    for spec in specs:
        issue = spec.check(record)
        if issue is None:
            return spec.to_messages(record)
        problems.append(f"{spec.name}: {issue.message}")
    raise ValueError("fits no record spec (" + "; ".join(problems) + ")")


def _load_chat_tokenizer(tokenizer_path: str | os.PathLike[str]) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(os.fspath(tokenizer_path))
    except (OSError, ValueError) as exc:
        raise FormatError(tokenizer_path, f"cannot load a tokenizer from here: {exc}") from exc
    if not tokenizer.chat_template:
        raise FormatError(tokenizer_path, "this tokenizer has no chat template to render text with")
    return tokenizer


def write_chat_jsonl(
    records: list[dict[str, Any]],
    path: Path,
    *,
    spec: str | None = None,
    tokenizer_path: str | os.PathLike[str] | None = None,
) -> int:
    if spec is not None:
        try:
            get_spec(spec)
        except UnknownSpecError as exc:
            raise FormatError(path, str(exc)) from exc
    tokenizer = _load_chat_tokenizer(tokenizer_path) if tokenizer_path is not None else None
    lines = []
    for position, record in enumerate(records):
        try:
            line: dict[str, Any] = {"messages": record_messages(record, spec)}
        except ValueError as exc:
            raise FormatError(path, f"record {position} {exc}") from exc
        if tokenizer is not None:
            line["text"] = tokenizer.apply_chat_template(line["messages"], tokenize=False)
        lines.append(line)
    return write_jsonl(lines, path)
