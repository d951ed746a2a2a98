"""The training loss, cross-entropy on assistant tokens, with logits only where a label follows.

A chat example is labelled on its reply only (``data``: every other label is
``IGNORE_INDEX``), yet ``model(**batch).loss`` first projects every position onto the
vocabulary: for a 190-token SYLLO prompt and a 22-token reply, eight of every nine rows
of the (positions x vocabulary) logits are computed, kept for the backward pass and
ignored. The language-model head is most of a small model's compute, and for a large
vocabulary its logits are most of the activation memory. Transformers (5 and later)
lets a causal LM keep the logits of chosen positions (``logits_to_keep`` as a boolean
mask), so the loss here is the same number, and the same gradient, from only the rows
that count (``bench/bench_trainer_loss.py`` measures the saving).

Models whose ``forward`` takes no ``logits_to_keep`` (some remote-code models) get the
model's own loss, as before.
"""

from __future__ import annotations

import inspect
from typing import Any

from tdm_dagster.training.data import IGNORE_INDEX


def takes_logit_mask(model: Any) -> bool:
    """True when the model (or, for a LoRA model, its base model) can keep chosen logits only."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(base.forward).parameters


def assistant_loss(model: Any, batch: dict[str, Any], masked: bool = True) -> Any:
    """Mean cross-entropy over the labelled tokens of a collated batch (``data.collate``),
    equal to the model's own shifted loss. ``masked=False`` (or a model that cannot keep
    chosen logits) computes it the model's way, over every position."""
    import torch

    labels = batch["labels"]
    if masked:
        predicts = torch.zeros_like(labels, dtype=torch.bool)
        predicts[:, :-1] = labels[:, 1:] != IGNORE_INDEX
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=predicts).logits
        if logits.dim() == 2 and logits.shape[0] == int(predicts.sum()):
            return torch.nn.functional.cross_entropy(logits.float(), labels[:, 1:][predicts[:, :-1]])
    return model(**batch).loss
