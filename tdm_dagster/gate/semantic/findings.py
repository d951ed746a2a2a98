"""Semantic near-duplicates, semantic copies of evaluation items, and reply relevance.

The gate's deep level finds duplicates by exact key and word-3-gram Jaccard
(:mod:`tdm_dagster.gate.dedup`); a reworded copy (synonyms, facts in another order, a
lead-in sentence) keeps its meaning with a Jaccard near 0.5 and passes that. Here each
record's reading view is embedded with the static model (:mod:`.model`) and compared by
cosine (:mod:`.index`):

- ``dedup.semantic_duplicate`` (WARNING): the conversation is within
  ``gate.semantic_duplicate_threshold`` cosine of an earlier record of the batch;
  ``dedup.semantic_duplicate_of_queued`` (WARNING): of a queued record. Each names its
  partner, the cosine, and which kind matched: ``semantic`` (the pair's word-3-gram
  Jaccard is under the lexical threshold: only the meaning repeats) or ``both`` (over
  it: a pair the lexical pass's LSH sampling missed). A record the lexical pass flagged
  (exact or near copy, ``dedup.exact_*``/``dedup.near_*``: matched lexically) gets no
  second duplicate finding.
- ``leakage.semantic_eval_item`` (ERROR): the prompt is within
  ``gate.semantic_leakage_threshold`` cosine of an evaluation item's prompt: the item in
  other words, which a model trained on it has seen.
- ``relevance.semantic_off_topic`` / ``relevance.semantic_restates_prompt`` (WARNING):
  the reply's embedding is far from its prompt's (it answers something else), or nearly
  the prompt's own with no new facts (it only restates the question): :data:`OFF_TOPIC_BELOW`,
  :data:`RESTATES_ABOVE`.

Records of a generated skill (they carry a problem key) are left out of all of this: their
prompts are templates that embed alike whatever the problem, and their identity is the
problem key, which :mod:`tdm_dagster.gate.leakage` already compares.

Without the ``[semantic]`` extra nothing here runs: :func:`load_embedder` says once per
process that semantic duplicates are not checked, and the gate goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tdm_dagster.gate.minhash import jaccard, normalize_text, shingle_sets
from tdm_dagster.gate.semantic.chunks import EarlierChunks
from tdm_dagster.gate.semantic.index import Embeddings, VectorStore, facts_keys, nearest_across, nearest_in, nearest_within
from tdm_dagster.gate.semantic.embedding import Embedded, embed_conversations, load_embedder
from tdm_dagster.gate.semantic.model import StaticEmbedder, embedder
from tdm_dagster.gate.turns import problems_of, prompt_and_answer
from tdm_dagster.records.issues import RecordIssue

OFF_TOPIC_BELOW = 0.5
"""A reply whose cosine with its prompt is under this answers something else. Measured on
the 10,794 questions of GSM8K, GPTeacher roleplay and the seed tasks
(``bench/bench_semantic_dup.py``): 0.3 % of real replies fall under it, and 21 % of
replies paired with another record's prompt (a static model places replies of one domain
near each other, so only a reply far off its prompt's subject is caught: a WARNING)."""
RESTATES_ABOVE = 0.95
"""A reply whose cosine with its prompt is over this, and that states no number the
prompt does not (a worked answer brings results), only restates it: 94 % of prompts
reworded as their own reply are over the cosine, and 0.5 % of real replies, which their
new numbers then clear (GSM8K solutions repeat the question's words)."""
_SHINGLE_SIZE = 3


def shard_embeddings(records: Sequence[Any], conversations: Sequence[Sequence[Mapping[str, Any]]]) -> Embeddings | None:
    """The whole-conversation embeddings of one shard's schema-valid records, as the
    in-process gate computes them (None without the ``[semantic]`` extra)."""
    model = load_embedder()
    if model is None:
        return None
    keyed = [problem is not None for problem in problems_of(records, conversations)]
    return embed_conversations(model, conversations, keyed).whole


def shard_issues(
    own: Embeddings, own_sets: Any, shard: int, partner: Callable[[int], Any], lexical_rows: set[int], threshold: float, lexical_threshold: float
) -> dict[int, list[RecordIssue]]:
    """Within-batch semantic duplicates of one shard's rows (the sharded gate): the most
    similar earlier record of this or an earlier shard, as :func:`within_batch_issues`
    finds it in one process. ``partner(s)``: shard ``s``'s sketch (keys, sets, embeddings)."""
    rows, shards, partner_rows, cosines = nearest_across(own, shard, lambda s: partner(s).embeddings, threshold)
    found: dict[int, list[RecordIssue]] = {}
    for row, partner_shard, partner_row, cosine in zip(rows.tolist(), shards.tolist(), partner_rows.tolist(), cosines.tolist()):
        if row in lexical_rows:
            continue
        sketch = partner(partner_shard)
        similarity = float(jaccard(own_sets, np.array([row]), sketch.sets, np.array([partner_row]))[0])
        found[row] = [semantic_duplicate_issue(float(cosine), similarity, lexical_threshold, sketch.keys[partner_row])]
    return found


def semantic_matches(texts: Sequence[str], threshold: float, required: bool = True) -> list[tuple[int, int]]:
    """(later, nearest earlier) positions of semantic near-duplicate pairs of ``texts``
    (their reading views), for the dataset steps and splits. Without the extra: raises
    :class:`~tdm_dagster.gate.semantic.model.SemanticUnavailable` when ``required``, else
    says so once and finds none."""
    from tdm_dagster.gate.reading_view import reading_view

    model = embedder() if required else load_embedder()
    if model is None:
        return []
    views = [reading_view(text) for text in texts]
    rows, partners, _ = nearest_within(Embeddings(model.encode(views).astype(np.float16), facts_keys(views)), threshold)
    return list(zip(rows.tolist(), partners.tolist()))


def matched_kind(jaccard_value: float, lexical_threshold: float) -> str:
    return "both" if jaccard_value >= lexical_threshold else "semantic"


def pair_jaccard(texts_a: Sequence[str], texts_b: Sequence[str]) -> np.ndarray:
    """Word-3-gram Jaccard of each (a, b) pair, as the lexical pass computes it."""
    rows = np.arange(len(texts_a))
    return jaccard(shingle_sets(texts_a, _SHINGLE_SIZE), rows, shingle_sets(texts_b, _SHINGLE_SIZE), rows)


def semantic_duplicate_issue(cosine: float, jaccard_value: float, lexical_threshold: float, partner: str, queued: bool = False) -> RecordIssue:
    kind = matched_kind(jaccard_value, lexical_threshold)
    code = "dedup.semantic_duplicate_of_queued" if queued else "dedup.semantic_duplicate"
    message = (f"semantic near duplicate (cosine {cosine:.3f}, matched: {kind}, Jaccard {jaccard_value:.2f}) "
               f"of {'queued ' if queued else ''}{partner}")  # fmt: skip
    return RecordIssue("dedup", code, message, "messages", severity="WARNING")


def within_batch_issues(
    keys: Sequence[str], embedded: Embedded, threshold: float, lexical_threshold: float, skip_rows: set[int] = frozenset(),  # type: ignore[assignment]
    earlier: EarlierChunks | None = None,
) -> dict[int, list[RecordIssue]]:
    """Each record's most similar earlier record of the batch within ``threshold`` cosine
    (``earlier``: the batch's chunks before this one, searched too; this one joins them)."""
    if earlier is None:
        rows, partners, cosines = nearest_within(embedded.whole, threshold)
        partner_keys, partner_texts = [keys[p] for p in partners.tolist()], [embedded.texts[p] for p in partners.tolist()]
    else:
        rows, partner_keys, partner_texts, cosines = earlier.nearest(embedded.whole, keys, embedded.texts, threshold)
        earlier.add(embedded.whole, keys, embedded.texts)
    keep = [i for i, row in enumerate(rows.tolist()) if row not in skip_rows]
    similarity = pair_jaccard([embedded.texts[rows[i]] for i in keep], [partner_texts[i] for i in keep])
    return {
        int(rows[i]): [semantic_duplicate_issue(float(cosines[i]), float(j), lexical_threshold, partner_keys[i])]
        for i, j in zip(keep, similarity)
    }


def queued_issues(
    keys: Sequence[str], embedded: Embedded, store: VectorStore, threshold: float
) -> dict[int, list[RecordIssue]]:
    """Records within ``threshold`` cosine of a queued record (the store keeps vectors,
    not texts: the message gives the cosine and the queued record's name)."""
    rows, partners, cosines = nearest_in(embedded.whole, store.embeddings, threshold)
    found: dict[int, list[RecordIssue]] = {}
    for row, partner, cosine in zip(rows.tolist(), partners.tolist(), cosines.tolist()):
        message = f"semantic near duplicate (cosine {cosine:.3f}, matched: semantic) of queued {store.keys[partner]}"
        found[row] = [RecordIssue("dedup", "dedup.semantic_duplicate_of_queued", message, "messages", severity="WARNING")]
    return found


def eval_leak_issues(
    keys: Sequence[str], embedded: Embedded, model: StaticEmbedder, eval_sets: Sequence[Any], threshold: float, skip_rows: set[int] = frozenset()  # type: ignore[assignment]
) -> dict[int, list[RecordIssue]]:
    """Records whose prompt is within ``threshold`` cosine of an evaluation item's prompt
    (items of generated skills left out: their problem keys decide). ``skip_rows``: rows
    already found leaking by their words; a prompt that *is* the item's (normalised) is
    ``leakage.eval_prompt``'s, not this one's."""
    found: dict[int, list[RecordIssue]] = {}
    for eval_set in eval_sets:
        items = [item for item in eval_set.items if item.problem is None]
        if not items:
            continue
        prompts = [item.prompt for item in items]
        item_prompts = Embeddings(model.encode(prompts).astype(np.float16), facts_keys(prompts))
        rows, partners, cosines = nearest_in(embedded.prompt, item_prompts, threshold)
        for row, partner, cosine in zip(rows.tolist(), partners.tolist(), cosines.tolist()):
            if row in found or row in skip_rows:
                continue
            if normalize_text(prompt_and_answer(embedded.conversations[row])[0]) == normalize_text(items[partner].prompt):
                continue
            message = (f"the prompt is evaluation item {items[partner].key} in other words (cosine {cosine:.3f} "
                       f"between the two prompts): '{items[partner].prompt[:80]}'")  # fmt: skip
            found[row] = [RecordIssue("leakage", "leakage.semantic_eval_item", message, "messages")]
    return found


def relevance_issues(embedded: Embedded, skip: Sequence[bool] = ()) -> dict[int, list[RecordIssue]]:
    """Replies far from their prompt's meaning, or only restating it."""
    prompt, reply = embedded.prompt.vectors.astype(np.float32), embedded.reply.vectors
    cosine = np.einsum("ij,ij->i", prompt, reply)
    has_both = (np.abs(prompt).sum(axis=1) > 0) & (np.abs(reply).sum(axis=1) > 0)
    new_facts = (embedded.reply.facts != 0) & (embedded.reply.facts != embedded.prompt.facts)
    found: dict[int, list[RecordIssue]] = {}
    for row in np.flatnonzero(has_both & (cosine < OFF_TOPIC_BELOW)).tolist():
        message = f"the reply's meaning is far from its prompt's (cosine {cosine[row]:.2f}, under {OFF_TOPIC_BELOW}): it may answer something else"
        found[row] = [RecordIssue("relevance", "relevance.semantic_off_topic", message, "messages", severity="WARNING")]
    for row in np.flatnonzero(has_both & (cosine > RESTATES_ABOVE) & ~new_facts).tolist():
        message = f"the reply only restates its prompt (cosine {cosine[row]:.3f}, over {RESTATES_ABOVE})"
        found[row] = [RecordIssue("relevance", "relevance.semantic_restates_prompt", message, "messages", severity="WARNING")]
    return found


@dataclass(frozen=True)
class SemanticCheck:
    """What the deep level's semantic findings need: the thresholds, and the queued
    records' vectors (None: not searched)."""

    duplicate_threshold: float
    leakage_threshold: float
    lexical_threshold: float
    queued: VectorStore | None = None
    earlier: EarlierChunks | None = None
    """The batch's chunks judged before (a batch judged in chunks): searched with each chunk."""

    @classmethod
    def of(cls, gate: Any, queued_in: Any = None, earlier: EarlierChunks | None = None) -> SemanticCheck:
        """From ``config.gate``, and the store of the home whose queued data is searched."""
        from tdm_dagster.gate.semantic.store import load_queued_vectors

        queued = load_queued_vectors(queued_in) if queued_in is not None else None
        return cls(gate.semantic_duplicate_threshold, gate.semantic_leakage_threshold, gate.near_duplicate_threshold, queued, earlier)


def semantic_findings(
    keys: Sequence[str],
    conversations: Sequence[Sequence[Mapping[str, Any]]],
    check: SemanticCheck,
    *,
    eval_sets: Sequence[Any],
    keyed: Sequence[bool],
    lexical_rows: set[int],
    within: bool,
    leaking_rows: set[int] = frozenset(),  # type: ignore[assignment]
) -> dict[str, dict[int, list[RecordIssue]]]:
    """By row: ``duplicates`` (within the batch when ``within``, and against the queued
    store), ``leakage`` (evaluation items) and ``relevance``. ``keyed``: rows of generated
    skills' problems (left out); ``lexical_rows``: rows the lexical pass already flagged
    (exact or near copies: one duplicate finding per row, the lexical one);
    ``leaking_rows``: rows already found leaking by their words."""
    model = load_embedder()
    if model is None or not len(conversations):
        return {}
    embedded = embed_conversations(model, conversations, keyed)
    duplicates: dict[int, list[RecordIssue]] = {}
    if within:
        duplicates.update(within_batch_issues(keys, embedded, check.duplicate_threshold, check.lexical_threshold, lexical_rows, check.earlier))
    if check.queued is not None and len(check.queued):
        for row, found in queued_issues(keys, embedded, check.queued, check.duplicate_threshold).items():
            if row not in lexical_rows:
                duplicates.setdefault(row, []).extend(found)
    return {
        "duplicates": duplicates,
        "leakage": eval_leak_issues(keys, embedded, model, eval_sets, check.leakage_threshold, leaking_rows),
        "relevance": relevance_issues(embedded),
    }
