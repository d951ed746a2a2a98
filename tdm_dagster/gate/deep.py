"""The gate's deep level: duplicates and train/eval leakage, as record issues.

- exact duplicate of an earlier record of the batch, or of data already queued: ERROR
  (the copy is dropped, the first kept);
- near-duplicate (Jaccard >= threshold) of either: WARNING (kept, scored lower);
- n-gram overlap with an evaluation item, or an evaluation answer (or the record's own
  answer) inside the prompt: ERROR;
- for generated skills (a record and an evaluation item that both carry a problem key
  of the same skill, see ``tdm_dagster.generate.generators.problem_of``): the same
  problem, however worded, is an ERROR (``leakage.eval_problem``), and a different
  problem is no leak whatever text the two share (template prompts over a small
  vocabulary share 12-word runs by chance).

Each finding names both records: ``file:line`` (or batch:position) on our side, the
evaluation file and item (``name:index``) or the queued batch and line on the other.
The index of queued data lives in ``state/dedup_index.npz``; it is updated under a
file lock when a batch is queued, so concurrent runs never lose each other's records.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tdm_dagster.gate.batch_index import FirstSeen, NearDuplicateStream
from tdm_dagster.gate.dedup import NearDuplicateIndex, exact_key
from tdm_dagster.home import TdmHome
from tdm_dagster.gate.leakage import (
    EvalSet,
    Problem,
    find_answer_leaks,
    find_ngram_leaks,
    find_own_answer_leaks,
    find_problem_leaks,
    find_prompt_leaks,
    without_keyed_pairs,
)
from tdm_dagster.gate.turns import Messages, conversation_text, problems_of, prompt_and_answer
from tdm_dagster.records.issues import RecordIssue

if TYPE_CHECKING:
    from tdm_dagster.gate.semantic.findings import SemanticCheck


def _issue(suite: str, code: str, message: str, severity: str = "ERROR") -> RecordIssue:
    """Suggestions come from the code's entry in :mod:`tdm_dagster.records.issue_codes`."""
    return RecordIssue(suite, code, message, "messages", severity=severity)


def exact_duplicate_issue(first_key: str) -> RecordIssue:
    return _issue("dedup", "dedup.exact_duplicate", f"exact duplicate of {first_key}")


def near_duplicate_issue(similarity: float, earliest_key: str) -> RecordIssue:
    return _issue("dedup", "dedup.near_duplicate", f"near duplicate (Jaccard {similarity:.2f}) of {earliest_key}", "WARNING")


class DuplicateSearch:
    """A batch's exact and near-duplicate search, fed chunk by chunk in batch order
    (:mod:`tdm_dagster.gate.batch_index`): each record is compared with every earlier
    record of the batch, and with the queued index, as when the batch is searched whole.
    What it keeps of earlier records is a digest and a few numbers each in memory, their
    shingles and keys on disk. Close it (or use it as a context manager) when done."""

    def __init__(self, threshold: float, queued: NearDuplicateIndex | None = None) -> None:
        self._exact = FirstSeen()
        self._near = NearDuplicateStream(threshold)
        self._queued = queued if queued is not None and len(queued) else None

    def __enter__(self) -> DuplicateSearch:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._near.close()

    def issues(self, keys: Sequence[str], texts: Sequence[str]) -> dict[int, list[RecordIssue]]:
        """Duplicates of the next records (``keys``, ``texts``) among the earlier ones and in
        the queued index, by position in ``keys``."""
        start = self._near.rows
        near = self._near.find(keys, texts)
        rows = np.arange(start, start + len(texts), dtype=np.int64)
        firsts = self._exact.first_rows([exact_key(text) for text in texts], rows)
        copies = np.flatnonzero(firsts != rows)
        found: dict[int, list[RecordIssue]] = {}
        for position, first_key in zip(copies.tolist(), self._near.keys_of(firsts[copies].tolist())):
            found[position] = [exact_duplicate_issue(first_key)]
        position_of = {key: position for position, key in enumerate(keys)}
        for match in near:
            later = position_of[match.key_a]
            if later not in found:
                found[later] = [near_duplicate_issue(match.similarity, match.key_b)]
        if self._queued is not None:
            for match in self._queued.query(keys, texts):
                exact = match.similarity >= 1.0
                code = "dedup.exact_duplicate_of_queued" if exact else "dedup.near_duplicate_of_queued"
                found.setdefault(position_of[match.key_a], []).append(
                    _issue("dedup", code, f"{'exact' if exact else f'near (Jaccard {match.similarity:.2f})'} duplicate of queued {match.key_b}",
                           "ERROR" if exact else "WARNING")  # fmt: skip
                )
        return found


def duplicate_issues(
    keys: Sequence[str], texts: Sequence[str], threshold: float, queued: NearDuplicateIndex | None = None
) -> dict[int, list[RecordIssue]]:
    """Duplicates inside the batch and against the queued index, by position in ``keys``."""
    with DuplicateSearch(threshold, queued) as search:
        return search.issues(keys, texts)


_LISTING_ORDER = {
    code: rank
    for rank, code in enumerate((
        "dedup.exact_duplicate", "dedup.near_duplicate", "dedup.exact_duplicate_of_queued", "dedup.near_duplicate_of_queued",
        "leakage.own_answer_in_prompt", "leakage.ngram", "leakage.answer_in_prompt", "leakage.eval_problem", "leakage.eval_prompt",
    ))
}  # fmt: skip


def in_listing_order(findings: Mapping[int, list[RecordIssue]]) -> dict[int, list[RecordIssue]]:
    """A detector's findings in the order it lists them (the samples the checks show): by
    the kind of each record's first finding (copies within the batch, then near
    duplicates, then repeats of queued data; leaks as the leakage check finds them), then
    by position, however many chunks the batch was judged in."""
    return dict(sorted(findings.items(), key=lambda item: (_LISTING_ORDER.get(item[1][0].code, len(_LISTING_ORDER)), item[0])))


def leakage_issues(
    keys: Sequence[str],
    conversations: Sequence[Messages],
    eval_sets: Sequence[EvalSet],
    problems: Sequence[Problem | None] | None = None,
) -> dict[int, list[RecordIssue]]:
    """``problems``: each record's ``(skill, problem key)`` or None (``problems_of``); None: no record has one."""
    found: dict[int, list[RecordIssue]] = {}
    position_of = {key: position for position, key in enumerate(keys)}
    texts = [conversation_text(m) for m in conversations]
    prompts, answers = zip(*(prompt_and_answer(m) for m in conversations)) if conversations else ((), ())
    problems = list(problems) if problems is not None else [None] * len(keys)
    problem_by_key = dict(zip(keys, problems, strict=True))
    leaks = find_own_answer_leaks(keys, prompts, answers)
    for eval_set in eval_sets:
        by_text = find_ngram_leaks(eval_set, keys, texts) + find_answer_leaks(eval_set, keys, prompts)
        leaks += without_keyed_pairs(eval_set, [leak for leak in by_text if leak.train_key in position_of], problem_by_key)
        leaks += find_problem_leaks(eval_set, keys, problems, prompts)
    for leak in leaks:
        if leak.train_key not in position_of:
            continue
        if leak.kind == "ngram":
            message = f"overlaps evaluation item {leak.eval_key}: {leak.overlap} shared n-grams ({leak.fraction:.0%}), e.g. '{leak.evidence}'"
        elif leak.kind == "eval_problem":
            skill = problem_by_key[leak.train_key][0]  # type: ignore[index]
            message = f"is the same {skill} problem as evaluation item {leak.eval_key} (problem key '{leak.evidence}'), in other words"
        elif leak.kind == "own_answer_in_prompt":
            message = f"the prompt contains its own answer: '{leak.evidence[:80]}'"
        else:
            message = f"the prompt contains the answer of evaluation item {leak.eval_key}: '{leak.evidence[:80]}'"
        found.setdefault(position_of[leak.train_key], []).append(
            _issue("leakage", f"leakage.{leak.kind}", message)
        )
    return found


def eval_prompt_issues(
    valid_indices: Sequence[int], conversations: Sequence[Messages], keys: Sequence[str], eval_sets: Sequence[EvalSet]
) -> dict[int, list[RecordIssue]]:
    """Records whose prompt is an evaluation item's prompt, by batch position: checked at
    every level (a set lookup), since a held-out item trained on makes accuracy a memory test."""
    valid_keys = [keys[p] for p in valid_indices]
    row_of = {key: row for row, key in enumerate(valid_keys)}
    prompts = [prompt_and_answer(m)[0] for m in conversations]
    found: dict[int, list[RecordIssue]] = {}
    for eval_set in eval_sets:
        for leak in find_prompt_leaks(eval_set, valid_keys, prompts):
            row = row_of[leak.train_key]
            message = f"the prompt is the prompt of evaluation item {leak.eval_key}: '{leak.evidence}'"
            found.setdefault(valid_indices[row], []).append(
                _issue("leakage", "leakage.eval_prompt", message)
            )
    return found


def deep_findings(
    valid_indices: Sequence[int],
    conversations: Sequence[Messages],
    keys: Sequence[str],
    *,
    eval_sets: Sequence[EvalSet],
    threshold: float,
    queued: NearDuplicateIndex | None = None,
    duplicates: Mapping[int, list[RecordIssue]] | None = None,
    records: Sequence[Any] | None = None,
    search: DuplicateSearch | None = None,
    semantic: SemanticCheck | None = None,
) -> dict[str, dict[int, list[RecordIssue]]]:
    """Duplicate and leakage findings for the schema-valid records, by batch position.

    ``keys`` name every position of the batch (``file:line`` or ``batch:line``).
    ``duplicates`` (by schema-valid row) replaces the duplicate search when the batch is
    one shard of a larger one whose duplicates were found across all shards; ``search``
    (a chunk of a batch) is the batch's search, which has seen the chunks before (else
    the records are searched among themselves and ``queued``). ``records`` (every
    position, as read) give the generated skills' problem keys. ``semantic``: the
    semantic duplicate, leakage and relevance findings (:mod:`tdm_dagster.gate.semantic`;
    within the batch only when ``duplicates`` is not given: a sharded run brings them in it;
    a chunk's search covers the chunks before it when ``semantic.earlier`` is given)."""
    valid_keys = [keys[p] for p in valid_indices]
    problems = problems_of([records[p] for p in valid_indices], conversations) if records is not None else None
    if duplicates is not None:
        found_duplicates = dict(duplicates)
    else:
        texts = [conversation_text(m) for m in conversations]
        found_duplicates = search.issues(valid_keys, texts) if search is not None else duplicate_issues(valid_keys, texts, threshold, queued)
    by_row = {"duplicates": found_duplicates, "leakage": leakage_issues(valid_keys, conversations, eval_sets, problems)}
    if semantic is not None:
        _merge_semantic(by_row, valid_keys, conversations, semantic, eval_sets, problems, within=duplicates is None)
    return {name: {valid_indices[row]: found for row, found in rows.items()} for name, rows in by_row.items()}


def _merge_semantic(
    by_row: dict[str, dict[int, list[RecordIssue]]], keys: Sequence[str], conversations: Sequence[Messages],
    semantic: SemanticCheck, eval_sets: Sequence[EvalSet], problems: Sequence[Problem | None] | None, within: bool,
) -> None:
    from tdm_dagster.gate.semantic.findings import semantic_findings

    lexical = set(by_row["duplicates"])  # rows the lexical pass flagged: one finding per row
    keyed = [problem is not None for problem in problems] if problems is not None else []
    found = semantic_findings(keys, conversations, semantic, eval_sets=eval_sets, keyed=keyed, lexical_rows=lexical, within=within,
                              leaking_rows=set(by_row["leakage"]))  # fmt: skip
    for name, rows in found.items():
        for row, issues in rows.items():
            by_row.setdefault(name, {}).setdefault(row, []).extend(issues)


def load_eval_sets(paths: Sequence[str], max_record_bytes: int) -> list[EvalSet]:
    """Evaluation files in any format tdm reads; items keyed ``<file name>:<index>``, with
    their problem (``EvalItem.problem``) where their metadata names a built-in skill."""
    from tdm_dagster.generate.generators import problem_of
    from tdm_dagster.ingest.load import load_file
    from tdm_dagster.gate.schemas import get_spec

    sets = []
    for path in paths:
        loaded = load_file(path, max_record_bytes=max_record_bytes)
        if loaded.file_problem and not any(loaded.records):
            raise ValueError(f"evaluation set {path} cannot be read: {loaded.file_problem}")
        chats = [
            {"messages": get_spec(spec).to_messages(record), "metadata": record.get("metadata")}
            for record, spec in zip(loaded.records, loaded.specs)
            if record is not None and spec is not None
        ]
        sets.append(EvalSet.from_chats(chats, Path(path).name, problem_of))
    return sets


def _index_path(home: TdmHome) -> Path:
    return home.state_file("dedup_index")


@contextmanager
def _locked(home: TdmHome) -> Iterator[None]:
    with open(home.state_file("dedup_lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def load_queued_index(home: TdmHome, threshold: float) -> NearDuplicateIndex:
    path = _index_path(home)
    return NearDuplicateIndex.load(path) if path.exists() else NearDuplicateIndex(threshold=threshold)


def remember_queued(home: TdmHome, batch_id: str, conversations: Sequence[Messages], threshold: float) -> int:
    """Add a queued batch's records to the index of queued data; returns the index size."""
    with _locked(home):
        index = load_queued_index(home, threshold)
        index.add([f"{batch_id}:{i + 1}" for i in range(len(conversations))], [conversation_text(m) for m in conversations])
        index.save(_index_path(home))
        from tdm_dagster.gate.semantic.store import remember_queued_vectors

        remember_queued_vectors(home, [f"{batch_id}:{i + 1}" for i in range(len(conversations))], conversations)
        return len(index)
