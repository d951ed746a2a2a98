"""Chat examples -> token ids with assistant-only labels, and length-grouped batches.

Rendering is plain ChatML, one segment per message::

    <|im_start|>{role}\n{content}<|im_end|>\n

Labels are the token ids for the assistant's content and its closing ``<|im_end|>``
(so the model learns to stop); every other position (system/user turns, the
``<|im_start|>assistant\n`` header, the trailing newline, padding) is ``IGNORE_INDEX``.

Batches are *length-grouped*: indices are shuffled (by seed and epoch), cut into windows
of ``batch_size * window_batches`` examples, sorted by length inside each window, split
into batches, and the batch order is shuffled again. Each batch is padded only to its own
longest example, never to ``max_length``. Everything here is deterministic by seed.
Only :func:`collate` needs torch (imported lazily).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

IGNORE_INDEX = -100
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"


@dataclass(frozen=True)
class TokenizedExample:
    input_ids: list[int]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def label_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE_INDEX)


@dataclass(frozen=True)
class TokenizedData:
    examples: list[TokenizedExample]
    truncated: int
    """Examples cut at ``max_length``."""
    dropped: int
    """Examples with no assistant token left (none in the messages, or all cut off)."""


def _encode_many(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:  # fast path: one Rust batch call
        return [enc.ids for enc in backend.encode_batch(texts, add_special_tokens=False)]
    return [list(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in texts]


def tokenize_examples(examples: Sequence[dict[str, Any]], tokenizer: Any, max_length: int) -> TokenizedData:
    """Render each example as ChatML and tokenize it; labels only on assistant tokens.

    Each message is split into an unlabelled header ``<|im_start|>role\\n``, a body
    ``content<|im_end|>`` (labelled when the role is ``assistant``) and an unlabelled
    ``\\n``; the pieces are tokenized separately so label boundaries are exact.
    """
    if max_length < 2:
        raise ValueError(f"max_length must be >= 2, got {max_length}")
    pieces: list[str] = []
    spans: list[tuple[int, list[bool]]] = []  # (first piece index, labelled flags) per example
    for example in examples:
        messages = example.get("messages") if isinstance(example, dict) else None
        if not isinstance(messages, list):
            raise TypeError("every training example needs a 'messages' list of {role, content}")
        start = len(pieces)
        flags: list[bool] = []
        for message in messages:
            role = str(message.get("role", ""))
            content = message.get("content")
            content = "" if content is None else str(content)
            pieces += [f"{IM_START}{role}\n", f"{content}{IM_END}", "\n"]
            flags += [False, role == "assistant", False]
        spans.append((start, flags))
    encoded = _encode_many(tokenizer, pieces) if pieces else []
    out: list[TokenizedExample] = []
    truncated = dropped = 0
    for start, flags in spans:
        ids: list[int] = []
        labels: list[int] = []
        for offset, labelled in enumerate(flags):
            piece = encoded[start + offset]
            ids.extend(piece)
            labels.extend(piece if labelled else [IGNORE_INDEX] * len(piece))
        if len(ids) > max_length:
            truncated += 1
            ids, labels = ids[:max_length], labels[:max_length]
        # the model predicts labels[t] from tokens < t: a label at position 0 is never used
        if not any(label != IGNORE_INDEX for label in labels[1:]):
            dropped += 1
            continue
        out.append(TokenizedExample(ids, labels))
    return TokenizedData(out, truncated, dropped)


def length_grouped_batches(
    lengths: Sequence[int], batch_size: int, seed: int, epoch: int = 0, window_batches: int = 50
) -> list[list[int]]:
    """Index batches of similar length; deterministic for (lengths, batch_size, seed, epoch)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    rng = random.Random(f"{seed}:{epoch}")
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = max(batch_size, batch_size * window_batches)
    batches: list[list[int]] = []
    for begin in range(0, len(order), window):
        chunk = sorted(order[begin : begin + window], key=lambda i: (-lengths[i], i))
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(batch: Sequence[TokenizedExample], pad_id: int) -> dict[str, Any]:
    """Right-pad to the batch's own longest example: input_ids, attention_mask, labels."""
    import torch

    width = max(len(example) for example in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, example in enumerate(batch):
        n = len(example)
        input_ids[row, :n] = torch.tensor(example.input_ids, dtype=torch.long)
        labels[row, :n] = torch.tensor(example.labels, dtype=torch.long)
        attention_mask[row, :n] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
