"""Train/eval leakage: training records that carry evaluation items (plain Python + numpy).

Two findings, each naming the training record and the evaluation item:

* n-gram leakage (``find_ngram_leaks``): the training text shares word n-grams with an
  evaluation item (its prompt or its reference answer). Texts are compared after
  ``tdm_dagster.gate.minhash.normalize_text`` (NFKC, case folded, punctuation dropped), so a
  copy that only changes case, spacing or punctuation shares every n-gram.
* answer leakage (``find_answer_leaks``): a prompt contains a reference answer, its own
  (an evaluation item, or a training record, that gives its answer away) or an
  evaluation item's (the training prompt hands the model the eval answer).
* prompt leakage (``find_prompt_leaks``): a training prompt that is an evaluation
  item's prompt, after normalisation. Short prompts ("1011 + 110") have no n-gram to
  share, so only this finding keeps them out of training.
* problem leakage (``find_problem_leaks``): for generated skills, whose records carry a
  problem key (``EvalItem.problem``), a training record of the same problem as an
  evaluation item, however worded. For such pairs (both sides keyed, same skill) the key
  is the whole verdict: ``without_keyed_pairs`` drops their n-gram and answer evidence,
  since a generated skill's prompts are templates over a small vocabulary (a SYLLO
  clue is fixed text for its word) and different problems share text by chance.

Candidates are found by joining 32-bit n-gram ids with numpy (sort + searchsorted, no
loop over pairs); each candidate pair is then checked on the actual words, which both
removes the rare 32-bit hash collisions and gives the matched n-gram as evidence.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tdm_dagster.gate.minhash import normalize_text, shingle_sets

DEFAULT_NGRAM = 12
"""Word n-gram length for ``find_ngram_leaks``, measured on GSM8K.

500 held-out GSM8K items as the eval set; against them, (a) the other 6,973 training
items (question and answer: unrelated problems) and (b) the 500 held-out *questions
alone* with 3 words or numbers changed (the hardest light edit: no answer to help),
flagging on one shared distinctive n-gram:

    n                    8      9     10     11     12     13
    (a) flagged        113     73     48     27      9      7   of 6,973
    (b) caught        98.6%  96.2%  92.8%  88.8%  85.6%  83.2%

At n <= 11 the flags on (a) are mostly stock solution phrasing ("substituting the
second equation into the first equation we get"); at n = 12 most of the 9 left are
GSM8K's own near-duplicate problems (e.g. the same butterflies or trumpet problem with
other numbers), which are real overlaps. Held-out items put back whole (question and
answer) are caught at 100% / 99.6% / 98.6% with 2 / 3 / 4 words changed at n = 12.
"""
DEFAULT_MIN_ANSWER_WORDS = 5
"""Shortest reference answer (in normalized words) that ``find_answer_leaks`` looks for.

A short answer ("4", "yes", "Paris", a GSM8K final number) turns up inside unrelated
prompts by chance, so finding it there says nothing; five words in a row of someone
else's answer do not appear by chance. Short answers are still covered when the
prompt and answer are leaked together, by ``find_ngram_leaks``.
"""


Problem = tuple[str, str]
"""``(skill, problem key)`` of a generated skill's item (see ``tdm_dagster.generate.generators.problem_of``)."""


@dataclass(frozen=True)
class EvalItem:
    key: str
    prompt: str
    answer: str
    problem: Problem | None = None
    """Its generated skill and problem key, when it carries them: such an item is judged
    by problem against training records of the same skill, not by shared wording."""


@dataclass(frozen=True)
class Leak:
    """``train_key`` leaks ``eval_key``; ``evidence`` is a matched n-gram or the leaked answer."""

    train_key: str
    eval_key: str
    kind: str
    """"ngram", "answer_in_prompt" (an eval answer inside a training prompt), "own_answer_in_prompt",
    "eval_prompt" (the training prompt is an eval item's prompt) or "eval_problem" (the same
    problem as an eval item; ``evidence`` is the problem key)."""
    overlap: int
    """Shared distinctive n-grams ("ngram"); the answer's length in words (answer leaks)."""
    fraction: float
    """Shared n-grams over the eval item's distinctive n-grams; 1.0 for answer leaks."""
    evidence: str


class EvalSet:
    """Evaluation items (prompt, reference answer) that training data must not contain."""

    def __init__(self, items: Iterable[EvalItem]) -> None:
        self.items = list(items)
        keys = [item.key for item in self.items]
        if len(set(keys)) != len(keys):
            raise ValueError("evaluation item keys must be unique")
        self._distinctive: dict[int, list[set[tuple[str, ...]]]] = {}

    def __len__(self) -> int:
        return len(self.items)

    def distinctive_ngrams(self, n: int) -> list[set[tuple[str, ...]]]:
        """Each item's word n-grams (prompt and answer) that no other item has.

        An n-gram several eval items share is stock phrasing ("multiply by 100 to express
        the answer as a percentage"), which unrelated training text shares too: it points
        at no item, so it is no evidence of a leak. So is an n-gram that is stock phrasing
        but for its first or last word (its (n-1)-word head or tail is in several items):
        generated prompts are templates, and "... every tile is used exactly once tiles
        et" is only the template plus one syllable, which half the training puzzles share
        by chance (measured: 99 of 200 SYLLO puzzles flagged against 100 held-out ones
        before this rule).
        """
        if n not in self._distinctive:
            per_item = [_ngrams(item.prompt, n) | _ngrams(item.answer, n) for item in self.items]
            items_with = Counter(ngram for ngrams in per_item for ngram in ngrams)
            edges_with = Counter(edge for ngrams in per_item for edge in {e for g in ngrams for e in (g[:-1], g[1:])})
            self._distinctive[n] = [
                {g for g in ngrams if items_with[g] == 1 and edges_with[g[:-1]] == 1 and edges_with[g[1:]] == 1}
                for ngrams in per_item
            ]
        return self._distinctive[n]

    @classmethod
    def from_alpaca(cls, records: Iterable[Mapping[str, Any]], name: str) -> EvalSet:
        """Prompt: instruction and input; answer: output. Keys ``"<name>:<index>"``."""
        return cls(
            EvalItem(f"{name}:{index}", _joined(record.get("instruction"), record.get("input")), str(record["output"]))
            for index, record in enumerate(records)
        )

    @classmethod
    def from_chats(
        cls, records: Iterable[Mapping[str, Any]], name: str, problem_of: Callable[[Mapping[str, Any]], Problem | None] | None = None
    ) -> EvalSet:
        """Prompt: every message before the last assistant turn; answer: that turn. Keys as in
        ``from_alpaca``; ``problem_of`` gives an item's problem from its record."""
        items = []
        for index, record in enumerate(records):
            messages = list(record["messages"])
            last = max((i for i, message in enumerate(messages) if message["role"] == "assistant"), default=None)
            if last is None:
                raise ValueError(f"{name}:{index} has no assistant message to take as the reference answer")
            prompt = _joined(*(message["content"] for message in messages[:last]))
            problem = problem_of(record) if problem_of is not None else None
            items.append(EvalItem(f"{name}:{index}", prompt, messages[last]["content"], problem))
        return cls(items)


def _joined(*parts: Any) -> str:
    return "\n".join(str(part) for part in parts if part)


def find_ngram_leaks(
    eval_set: EvalSet, keys: Sequence[str], texts: Sequence[str], n: int = DEFAULT_NGRAM, min_shared: int = 1
) -> list[Leak]:
    """Training records sharing at least ``min_shared`` of an eval item's distinctive word ``n``-grams.

    Distinctive: found in that eval item only (``EvalSet.distinctive_ngrams``).
    Texts shorter than ``n`` words have no n-gram and are never flagged here (a short
    copy of an eval item is an exact or near-duplicate question for ``tdm_dagster.gate.dedup``).
    """
    if not 8 <= n <= 13:
        raise ValueError(f"n must be between 8 and 13, got {n}")
    if len(keys) != len(texts):
        raise ValueError(f"{len(keys)} keys for {len(texts)} texts")
    if not eval_set.items or not texts:
        return []
    eval_ngram_ids, eval_item_of_id = _ngram_ids(
        [i.prompt for i in eval_set.items] + [i.answer for i in eval_set.items], n
    )
    eval_item_of_id %= len(eval_set)
    train_ids, record_of_id = _ngram_ids(texts, n)
    records, items = _shared_id_pairs(train_ids, record_of_id, eval_ngram_ids, eval_item_of_id)
    leaks = []
    distinctive = eval_set.distinctive_ngrams(n)
    for record, item in zip(records.tolist(), items.tolist()):
        shared = _ngrams(texts[record], n) & distinctive[item]
        if len(shared) >= min_shared:
            fraction = len(shared) / len(distinctive[item])
            leaks.append(
                Leak(keys[record], eval_set.items[item].key, "ngram", len(shared), fraction, " ".join(min(shared)))
            )
    return leaks


def find_prompt_leaks(eval_set: EvalSet, keys: Sequence[str], prompts: Sequence[str]) -> list[Leak]:
    """Training records whose normalised prompt is an evaluation item's prompt."""
    item_of = {normalize_text(item.prompt): item for item in eval_set.items if normalize_text(item.prompt)}
    leaks = []
    for key, prompt in zip(keys, prompts, strict=True):
        item = item_of.get(normalize_text(prompt))
        if item is not None:
            leaks.append(Leak(key, item.key, "eval_prompt", len(prompt.split()), 1.0, prompt[:80]))
    return leaks


def find_problem_leaks(
    eval_set: EvalSet, keys: Sequence[str], problems: Sequence[Problem | None], prompts: Sequence[str]
) -> list[Leak]:
    """Training records whose ``(skill, problem key)`` is an evaluation item's (a dict lookup
    each), unless their prompt is that item's prompt: ``find_prompt_leaks`` reports those."""
    item_of: dict[Problem, EvalItem] = {}
    for item in eval_set.items:
        if item.problem is not None:
            item_of.setdefault(item.problem, item)
    leaks = []
    for key, problem, prompt in zip(keys, problems, prompts, strict=True):
        item = item_of.get(problem) if problem is not None else None
        if item is not None and normalize_text(prompt) != normalize_text(item.prompt):
            leaks.append(Leak(key, item.key, "eval_problem", 1, 1.0, problem[1]))
    return leaks


def without_keyed_pairs(eval_set: EvalSet, leaks: Iterable[Leak], problem_of: Mapping[str, Problem | None]) -> list[Leak]:
    """``leaks`` less the pairs judged by problem key (``find_problem_leaks``): the training
    record (``problem_of[train_key]``) and the eval item both keyed, in the same skill."""
    skill_of_item = {item.key: item.problem[0] for item in eval_set.items if item.problem is not None}
    kept = []
    for leak in leaks:
        problem = problem_of.get(leak.train_key)
        if problem is None or skill_of_item.get(leak.eval_key) != problem[0]:
            kept.append(leak)
    return kept


def find_answer_leaks(
    eval_set: EvalSet,
    keys: Sequence[str],
    prompts: Sequence[str],
    min_answer_words: int = DEFAULT_MIN_ANSWER_WORDS,
) -> list[Leak]:
    """Training prompts that contain an eval item's reference answer, and eval items whose
    prompt contains their own answer (reported with the item's key on both sides).

    "Contains" means the answer's normalized words appear in a row in the normalized
    prompt; answers shorter than ``min_answer_words`` words are not looked for.
    """
    if len(keys) != len(prompts):
        raise ValueError(f"{len(keys)} keys for {len(prompts)} prompts")
    items = eval_set.items
    leaks = find_own_answer_leaks(
        [i.key for i in items], [i.prompt for i in items], [i.answer for i in items], min_answer_words
    )
    answers = [normalize_text(item.answer) for item in items]
    distinctive = [i for i, answer in enumerate(answers) if len(answer.split()) >= min_answer_words]
    if not distinctive or not prompts:
        return leaks
    openings = [" ".join(answers[i].split()[:min_answer_words]) for i in distinctive]
    opening_ids, opening_of_id = _ngram_ids(openings, min_answer_words)
    prompt_ids, prompt_of_id = _ngram_ids(prompts, min_answer_words)
    records, openings_found = _shared_id_pairs(prompt_ids, prompt_of_id, opening_ids, opening_of_id)
    for record, opening in zip(records.tolist(), openings_found.tolist()):
        item = distinctive[opening]
        if _contains_words(normalize_text(prompts[record]), answers[item]):
            leaks.append(_answer_leak(keys[record], items[item].key, "answer_in_prompt", answers[item]))
    return leaks


def find_own_answer_leaks(
    keys: Sequence[str],
    prompts: Sequence[str],
    answers: Sequence[str],
    min_answer_words: int = DEFAULT_MIN_ANSWER_WORDS,
) -> list[Leak]:
    """Records (eval items or training records) whose prompt contains their own answer."""
    leaks = []
    for key, prompt, answer in zip(keys, prompts, answers, strict=True):
        normalized = normalize_text(answer)
        if len(normalized.split()) >= min_answer_words and _contains_words(normalize_text(prompt), normalized):
            leaks.append(_answer_leak(key, key, "own_answer_in_prompt", normalized))
    return leaks


def _answer_leak(train_key: str, eval_key: str, kind: str, answer: str) -> Leak:
    return Leak(train_key, eval_key, kind, len(answer.split()), 1.0, answer)


def _contains_words(text: str, words: str) -> bool:
    return f" {words} " in f" {text} "


def _ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    words = normalize_text(text).split()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def _ngram_ids(texts: Sequence[str], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct word n-gram ids of every text, and the text of each id.

    A text shorter than n words gets one id for all its words, which can only collide
    with an n-gram by hash accident; the word-level check of each candidate drops it.
    """
    sets = shingle_sets(texts, n)
    return sets.ids, np.repeat(np.arange(len(texts)), sets.sizes)


def _shared_id_pairs(
    left_ids: np.ndarray, left_owner: np.ndarray, right_ids: np.ndarray, right_owner: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (left owner, right owner) pairs that share at least one id, by one sort-join."""
    order = np.argsort(right_ids, kind="stable")
    right_ids, right_owner = right_ids[order], right_owner[order]
    first = np.searchsorted(right_ids, left_ids, side="left")
    last = np.searchsorted(right_ids, left_ids, side="right")
    counts = last - first
    left = np.repeat(left_owner, counts)
    within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    right = right_owner[np.repeat(first, counts) + within]
    packed = np.unique((left.astype(np.int64) << 32) | right.astype(np.int64))
    return packed >> 32, packed & 0xFFFFFFFF
