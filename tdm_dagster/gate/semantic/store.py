"""The queued records' embeddings in a tdm home: ``state/semantic_index/`` (a
:class:`~tdm_dagster.gate.semantic.index.VectorStore`), added to when a batch is queued,
under the same file lock as the lexical index."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tdm_dagster.gate.semantic.index import VectorStore, empty_store


def _folder(home: Any) -> Path:
    return home.state_file("semantic_index")


def load_queued_vectors(home: Any) -> VectorStore | None:
    return VectorStore.load(_folder(home))


def remember_queued_vectors(home: Any, keys: Sequence[str], conversations: Sequence[Sequence[Mapping[str, Any]]]) -> int:
    """Append a queued batch's embeddings (call under the queue's dedup lock); returns the
    store's size, 0 without the ``[semantic]`` extra."""
    from tdm_dagster.gate.reading_view import conversation_views
    from tdm_dagster.gate.semantic.embedding import embed_conversations, load_embedder

    model = load_embedder()
    if model is None:
        return 0
    embeddings = embed_conversations(model, conversation_views(conversations)).whole
    store = VectorStore.load(_folder(home)) or empty_store(embeddings.vectors.shape[1])
    store = store.appended(keys, embeddings)
    store.save(_folder(home))
    return len(store)
