"""Evaluate a checkpoint folder: the model's answers and its held-out loss, as the two
callables ``tdm_dagster.evaluate.comparison.evaluate`` takes (torch loads here, lazily)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from tdm_dagster.evaluate.comparison import EvaluationResult, HeldOutSet, evaluate

ANSWER_TOKENS = 96
LOSS_BATCH = 16


def evaluate_checkpoint(
    path: str | os.PathLike[str], sets: Sequence[HeldOutSet], max_length: int = 512, probes: Sequence[HeldOutSet] = (),
    progress: Callable[[int], None] | None = None,
) -> EvaluationResult:
    """``progress`` is told of each answer the model gives (the slow part)."""
    from tdm_dagster.serving.model import PromptTooLong, load_checkpoint

    loaded = load_checkpoint(path)

    def answer(messages: list[dict[str, str]]) -> str:
        """Greedy reply; a prompt that leaves too little room for one is a wrong answer."""
        try:
            return loaded.generate(messages, max_tokens=ANSWER_TOKENS, temperature=0.0)["content"]
        except PromptTooLong as too_long:
            room = too_long.limit - too_long.prompt_tokens
            return loaded.generate(messages, max_tokens=room, temperature=0.0)["content"] if room > 0 else ""
        finally:
            if progress:
                progress(1)

    def held_out_loss(examples: list[dict[str, Any]]) -> float:
        return mean_assistant_loss(loaded.model, loaded.tokenizer, examples, max_length, loaded.device)

    return evaluate(str(path), sets, answer, held_out_loss, probes=probes)


def mean_assistant_loss(model: Any, tokenizer: Any, examples: Sequence[dict[str, Any]], max_length: int, device: str) -> float:
    """Token-weighted mean cross-entropy on assistant tokens, as in training."""
    import torch

    from tdm_dagster.training.data import collate, tokenize_examples
    from tdm_dagster.training.loss import assistant_loss, takes_logit_mask

    data = tokenize_examples(examples, tokenizer, max_length).examples
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    total_loss = 0.0
    total_tokens = 0
    masked = takes_logit_mask(model)
    with torch.inference_mode():
        for start in range(0, len(data), LOSS_BATCH):
            batch = data[start : start + LOSS_BATCH]
            tensors = {key: value.to(device) for key, value in collate(batch, pad).items()}
            tokens = sum(example.label_tokens for example in batch)
            total_loss += float(assistant_loss(model, tensors, masked)) * tokens
            total_tokens += tokens
    return total_loss / total_tokens if total_tokens else float("nan")
