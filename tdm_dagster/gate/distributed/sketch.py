"""Map step: one shard in, the keys the whole-batch findings group by out.

Three findings of the gate look across the whole batch: the diversity suite's exact
duplicates (roles and contents) and share of distinct responses, and, at level deep,
the dedup exact key and the MinHash LSH bands of each record. Each schema-valid record
of a shard gives one *entry* per such key: ``(group, key_hi, key_lo, row, nonempty)``,
routed to partition ``key_lo % partitions`` so that every entry of one key (one LSH
bucket) meets the others in one reduce task (:mod:`.shuffle`).

``row`` numbers records across shards: ``shard << 32 | schema-valid row in the shard``,
so sorting rows sorts them in batch order, as the in-process gate sees them. Keys,
shingles, signatures and bands come from the same functions the in-process gate uses.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np

from tdm_dagster.config.settings import TdmConfig
from tdm_dagster.gate.dedup import NearDuplicateIndex, exact_key
from tdm_dagster.gate.deep import conversation_text
from tdm_dagster.gate.distributed.shards import load_shard
from tdm_dagster.gate.minhash import ShingleSets
from tdm_dagster.gate.quality.features import compute_features, example_identity
from tdm_dagster.gate.reading_view import conversation_views
from tdm_dagster.gate.schemas import schema_gate
from tdm_dagster.gate.semantic.findings import shard_embeddings
from tdm_dagster.gate.semantic.index import Embeddings

EXACT, EXAMPLE, RESPONSE, FIRST_BAND = 0, 1, 2, 3
"""Entry groups: the dedup exact key, the diversity suite's example identity, the
response hash, then one group per LSH band."""
COLUMNS = 5
ROW_BITS = 32


@dataclass(frozen=True)
class ShardSketch:
    """What other shards need to know of this one's records: their names, and (level deep)
    their shingle sets, to verify near-duplicate candidates."""

    keys: list[str]
    """The name of each schema-valid record, by row."""
    sets: ShingleSets | None
    embeddings: Embeddings | None = None
    """(level deep, ``[semantic]`` extra) Their conversations' embeddings (zero rows for
    generated skills' problems), to find semantic near-duplicates."""


def global_rows(shard: int, rows: np.ndarray) -> np.ndarray:
    return (np.uint64(shard) << np.uint64(ROW_BITS)) | rows.astype(np.uint64)


def shard_of(rows: np.ndarray) -> np.ndarray:
    return (rows >> np.uint64(ROW_BITS)).astype(np.int64)


def local_rows(rows: np.ndarray) -> np.ndarray:
    return (rows & np.uint64((1 << ROW_BITS) - 1)).astype(np.int64)


def _digest_halves(digests: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    both = np.frombuffer(b"".join(digests), dtype=">u8").reshape(-1, 2).astype(np.uint64) if digests else np.empty((0, 2), np.uint64)
    return both[:, 0], both[:, 1]


def _entries(group: np.ndarray | int, hi: np.ndarray, lo: np.ndarray, rows: np.ndarray, nonempty: np.ndarray) -> np.ndarray:
    out = np.empty((lo.size, COLUMNS), np.uint64)
    out[:, 0], out[:, 1], out[:, 2], out[:, 3], out[:, 4] = group, hi, lo, rows, nonempty
    return out


def _example_entries(conversations: list, rows: np.ndarray) -> np.ndarray:
    identities = [example_identity(messages) for messages in conversations]
    wellformed = np.fromiter((identity is not None for identity in identities), bool, len(identities))
    digests = [
        hashlib.blake2b(json.dumps(identity).encode("utf-8"), digest_size=16).digest()
        for identity in identities
        if identity is not None
    ]
    hi, lo = _digest_halves(digests)
    return _entries(EXAMPLE, hi, lo, rows[wellformed], np.ones(lo.size, bool))


def sketch_shard(
    shard: int, path: str, batch_id: str, config: TdmConfig, level: str, partitions: int
) -> tuple[int, ShardSketch, list[np.ndarray]]:
    """The shard's number of schema-valid records, its sketch, and its entries split into
    ``partitions`` arrays."""
    gate_input = load_shard(path, batch_id, config.gate.max_record_bytes)
    schema = schema_gate(gate_input.records, gate_input.specs)
    conversations = conversation_views(schema.conversations)  # as the in-process gate judges them
    rows = global_rows(shard, np.arange(len(conversations)))
    parts = []
    if level != "quick":
        features = compute_features(conversations, config.quality, None, names=("format", "diversity"))
        responses = features["response_hash"].to_numpy(np.uint64) if len(conversations) else np.empty(0, np.uint64)
        parts.append(_example_entries(conversations, rows))
        parts.append(_entries(RESPONSE, np.zeros_like(responses), responses, rows, np.ones(rows.size, bool)))
    sets = embeddings = None
    if level == "deep":
        texts = [conversation_text(messages) for messages in conversations]
        hi, lo = _digest_halves([exact_key(text) for text in texts])
        parts.append(_entries(EXACT, hi, lo, rows, np.ones(rows.size, bool)))
        sets, bands = NearDuplicateIndex(config.gate.near_duplicate_threshold).sketch(texts)
        for band in range(bands.shape[1]):
            parts.append(_entries(FIRST_BAND + band, np.zeros(rows.size, np.uint64), bands[:, band], rows, sets.sizes > 0))
        embeddings = shard_embeddings([gate_input.records[p] for p in schema.valid_indices], conversations)
    entries = np.concatenate(parts) if parts else np.empty((0, COLUMNS), np.uint64)
    target = (entries[:, 2] % np.uint64(partitions)).astype(np.int64)
    order = np.argsort(target, kind="stable")
    bounds = np.searchsorted(target[order], np.arange(partitions + 1))
    split = [entries[order[bounds[p] : bounds[p + 1]]] for p in range(partitions)]
    keys = [gate_input.keys[position] for position in schema.valid_indices]
    return len(conversations), ShardSketch(keys, sets, embeddings), split
