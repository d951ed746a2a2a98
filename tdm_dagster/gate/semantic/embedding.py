"""Records embedded for the semantic finders: the static model loaded once (or None,
said once per process, without the ``[semantic]`` extra), and each conversation, its
prompt and its reply embedded in one pass. Shared by the finders and the queued-vector
store (:mod:`.store`), which embeds what is queued as the gate does."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tdm_dagster.gate.semantic.index import Embeddings, facts_keys
from tdm_dagster.gate.semantic.model import SemanticUnavailable, StaticEmbedder, embedder, unit
from tdm_dagster.gate.turns import conversation_text, prompt_and_answer

logger = logging.getLogger(__name__)
_told_unavailable = False


def load_embedder() -> StaticEmbedder | None:
    """The static model; None (said once per process) without the ``[semantic]`` extra."""
    global _told_unavailable
    try:
        return embedder()
    except SemanticUnavailable as error:
        if not _told_unavailable:
            _told_unavailable = True
            logger.warning("semantic duplicates are not checked: %s", error)
        return None


@dataclass(frozen=True)
class Embedded:
    """Each record's whole conversation and prompt embedded, with their facts keys, and
    its reply's unit vector, by row (zero rows for records left out: generated skills'
    problems)."""

    whole: Embeddings
    prompt: Embeddings
    reply: Embeddings
    texts: list[str]
    conversations: Sequence[Sequence[Mapping[str, Any]]]


def embed_conversations(model: StaticEmbedder, conversations: Sequence[Sequence[Mapping[str, Any]]], skip: Sequence[bool] = ()) -> Embedded:
    """One embedding pass (token sums add up: conversation = prompt + reply)."""
    pairs = [prompt_and_answer(messages) for messages in conversations]
    prompts = model.token_sums([prompt for prompt, _ in pairs])
    replies = model.token_sums([reply for _, reply in pairs])
    left_out = np.asarray(skip, bool) if len(skip) else np.zeros(len(pairs), bool)
    prompts[left_out] = replies[left_out] = 0
    texts = [conversation_text(m) for m in conversations]
    whole = Embeddings(unit(prompts + replies).astype(np.float16), facts_keys(texts))
    prompt = Embeddings(unit(prompts).astype(np.float16), facts_keys([prompt for prompt, _ in pairs]))
    reply = Embeddings(unit(replies), facts_keys([reply for _, reply in pairs]))
    return Embedded(whole, prompt, reply, texts, conversations)
