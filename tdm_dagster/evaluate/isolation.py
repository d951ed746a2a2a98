"""Keep evaluation items out of training, by construction and by check.

- By construction: held-out items and probes (the items whose failures become
  corrections) are drawn with seeds from ranges no training batch uses; a probe whose
  prompt is a held-out prompt is dropped, and the built-in generators draw training
  batches around registered held-out prompts (small problem spaces repeat).
- By check: the held-out sets are registered under ``$TDM_HOME/eval_sets/``, each item
  with its metadata and problem key, where the gate reads them and rejects any record
  whose prompt is one of theirs (``leakage.eval_prompt``, every level) or, at deep, that
  is one of their problems (``leakage.eval_problem``: a generated skill's record, judged
  by problem key) or carries their text (``leakage.ngram``: records without a key).
- Measured: every evaluation counts its held-out items found, by prompt or by problem,
  in anything queued, claimed or trained (``seen_in_training``); anything but 0 means
  accuracy measures memory.

Files registered before problem keys were stored (``messages`` only) still load: their
items are judged by prompt and text, as then.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from tdm_dagster.files.atomic import atomic_write_jsonl
from tdm_dagster.gate.deep import load_eval_sets, prompt_and_answer
from tdm_dagster.gate.minhash import normalize_text
from tdm_dagster.generate.generators import problem_of
from tdm_dagster.home import TdmHome


def prompt_key(example: dict[str, Any]) -> str:
    """The normalised prompt of a chat example (what the gate's ``eval_prompt`` compares)."""
    return normalize_text(prompt_and_answer(example["messages"])[0])


def without_prompts_of(examples: Sequence[dict[str, Any]], others: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``examples`` less any whose prompt is the prompt of one of ``others``."""
    taken = {prompt_key(example) for example in others}
    return [example for example in examples if prompt_key(example) not in taken]


def held_out_filter(home: TdmHome, max_record_bytes: int) -> Callable[[dict[str, Any]], bool] | None:
    """True for an example whose prompt is a registered held-out prompt, or whose problem
    is a registered held-out problem (what the built-in generators draw around), read as
    the gate reads them; None when nothing is registered."""
    paths = [str(path) for path in home.registered_eval_sets()]
    items = [item for eval_set in load_eval_sets(paths, max_record_bytes) for item in eval_set.items]
    keys = {normalize_text(item.prompt) for item in items}
    problems = {item.problem for item in items if item.problem is not None}
    if not keys:
        return None
    return lambda example: prompt_key(example) in keys or problem_of(example) in problems


def register_held_out(home: TdmHome, sets: Sequence[Any]) -> list[Path]:
    """Write each held-out set to ``eval_sets/heldout_<skill>_level<level>.jsonl``, so the
    gate keeps its items out of training: each item's messages and metadata, with
    ``metadata.problem_key`` where its skill has one (the gate recomputes it from the
    metadata; the stored copy is for people and other tools reading the file)."""
    written = []
    for held_out in sets:
        path = home.eval_sets_dir / f"heldout_{held_out.skill}_level{held_out.level}.jsonl"
        atomic_write_jsonl(path, [_registered(example, held_out) for example in held_out.examples])
        written.append(path)
    return written


def _registered(example: dict[str, Any], held_out: Any) -> dict[str, Any]:
    metadata = {"skill": held_out.skill, "level": held_out.level, **(example.get("metadata") or {})}
    problem = problem_of({"messages": example["messages"], "metadata": metadata})
    if problem is not None:
        metadata["problem_key"] = problem[1]
    return {"messages": example["messages"], "metadata": metadata}


def _training_files(home: TdmHome) -> list[Path]:
    """Queue files waiting, claimed or being re-checked, and those already trained on."""
    return sorted([*home.queue_root.rglob("*.jsonl"), *home.trained_archive_dir.rglob("*.jsonl")])


def seen_in_training(home: TdmHome, sets: Sequence[Any]) -> int:
    """How many held-out items have their prompt, or (generated skills) their problem, in
    anything queued, claimed or trained."""
    identities = [(prompt_key(example), problem_of(example)) for held_out in sets for example in held_out.examples]
    wanted: set[Any] = {identity for pair in identities for identity in pair if identity is not None}
    seen: set[Any] = set()
    for path in _training_files(home):
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                    found = {prompt_key(record), problem_of(record)}
                except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
                    continue  # not a chat record: it cannot carry a held-out prompt as one
                seen |= found & wanted
    return sum(1 for prompt, problem in identities if prompt in seen or problem in seen)
