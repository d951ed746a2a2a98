"""Benchmark: semantic near-duplicates, measured three ways on real public questions.

    python bench/bench_semantic_dup.py [--n 100000] [--seed 7] [--data DIR] [--skip-speed]

1. **Thresholds** (the labelled set): every public question of ``--data`` (GSM8K,
   GPTeacher roleplay, the seed tasks; default the subsets in tests/data) and a reworded
   copy of each, made by deterministic transformations (``tests/support/paraphrase.py``:
   synonyms, facts reversed, a lead-in sentence; the answer kept), after all originals.
   Per cosine threshold: recall (copies reported with their original as partner) and
   precision (of every reported pair, the share that is a copy and its original; two
   originals reported together count against it). The same for the leakage threshold:
   reworded prompts of the first half of the questions, and the second half's prompts
   unchanged, searched against the first half's prompts as an evaluation set.
2. **Relevance**: cosine of each real reply with its own prompt, and with another
   record's prompt (the share under ``OFF_TOPIC_BELOW``, over ``RESTATES_ABOVE``).
3. **Speed**, on ``--n`` texts (the public records, then records made of one record's
   prompt and another's reply, each pair once) with 5 % reworded copies injected, in one
   run: the lexical pass (``NearDuplicateIndex.find_within``), ours (embed + search, the
   gate's functions) and semhash at its README's defaults (``SemHash.from_records`` then
   ``self_deduplicate()``, threshold 0.9, its vicinity/usearch index), with our distilled
   model as semhash's encoder (its default, potion-base-8M, is a download, which this
   project never does at run time): the same embeddings, so the comparison is of the
   search. Recall of each: injected copies reported.

Prints one JSON object and writes bench/results/semantic_dup.json. The machine is shared:
the load average is recorded before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import numpy as np

from bench.data_option import add_data_option
from tdm_dagster.gate.dedup import NearDuplicateIndex
from tdm_dagster.gate.semantic.findings import OFF_TOPIC_BELOW, RESTATES_ABOVE
from tdm_dagster.gate.semantic.index import Embeddings, facts_keys, nearest_in, nearest_within
from tdm_dagster.gate.semantic.model import cache_path, embedder
from tests.support.paraphrase import public_questions, reword

THRESHOLDS = (0.85, 0.88, 0.9, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97, 0.98)
INJECTED_SHARE = 0.05


def text_of(record: dict[str, str]) -> str:
    return f"{record['instruction']}\n{record['output']}"


def duplicate_thresholds(records: list[dict[str, str]]) -> list[dict[str, float]]:
    model = embedder()
    n = len(records)
    copies = [{**r, "instruction": reword(r["instruction"], i)} for i, r in enumerate(records)]
    texts = [text_of(r) for r in records + copies]
    vectors = Embeddings(model.encode(texts).astype(np.float16), facts_keys(texts))
    table = []
    for threshold in THRESHOLDS:
        rows, partners, _ = nearest_within(vectors, threshold)
        true = (rows >= n) & (partners == rows - n)
        table.append({"threshold": threshold, "recall": round(float(true.sum() / n), 4),
                      "precision": round(float(true.mean()) if rows.size else 1.0, 4), "reported": int(rows.size)})  # fmt: skip
    return table


def leakage_thresholds(records: list[dict[str, str]]) -> list[dict[str, float]]:
    model = embedder()
    half = len(records) // 2
    prompts = [r["instruction"] for r in records[:half]]
    evaluation = Embeddings(model.encode(prompts).astype(np.float16), facts_keys(prompts))
    batch = [reword(r["instruction"], i) for i, r in enumerate(records[:half])] + [r["instruction"] for r in records[half:]]
    queries = Embeddings(model.encode(batch).astype(np.float16), facts_keys(batch))
    table = []
    for threshold in THRESHOLDS:
        rows, partners, _ = nearest_in(queries, evaluation, threshold)
        true = (rows < half) & (partners == rows)
        table.append({"threshold": threshold, "recall": round(float(true.sum() / half), 4),
                      "precision": round(float(true.mean()) if rows.size else 1.0, 4), "reported": int(rows.size)})  # fmt: skip
    return table


def relevance(records: list[dict[str, str]]) -> dict[str, Any]:
    model = embedder()
    prompts = model.encode([r["instruction"] for r in records])
    replies = model.encode([r["output"] for r in records])
    own = np.einsum("ij,ij->i", prompts, replies)
    other = np.einsum("ij,ij->i", np.roll(prompts, len(records) // 2, axis=0), replies)
    new_facts = facts_keys([r["output"] for r in records])
    new_facts = (new_facts != 0) & (new_facts != facts_keys([r["instruction"] for r in records]))
    return {
        "own_prompt_cosine_percentiles_1_5_50": np.percentile(own, [1, 5, 50]).round(3).tolist(),
        "other_prompt_cosine_percentiles_50_80_95": np.percentile(other, [50, 80, 95]).round(3).tolist(),
        "own_under_off_topic": round(float((own < OFF_TOPIC_BELOW).mean()), 4),
        "other_under_off_topic": round(float((other < OFF_TOPIC_BELOW).mean()), 4),
        "own_over_restates_cosine": round(float((own > RESTATES_ABOVE).mean()), 4),
        "own_flagged_restating": round(float(((own > RESTATES_ABOVE) & ~new_facts).mean()), 4),
    }


def speed_texts(records: list[dict[str, str]], n: int, seed: int) -> tuple[list[str], list[tuple[int, int]]]:
    """``n`` texts in random order and the (original, copy) positions of the injected copies."""
    rng = random.Random(seed)
    injected = int(n * INJECTED_SHARE)
    base = [text_of(r) for r in records]
    pairs = set()
    while len(base) + len(pairs) < n - injected:
        pairs.add((rng.randrange(len(records)), rng.randrange(len(records))))
    base += [f"{records[a]['instruction']}\n{records[b]['output']}" for a, b in sorted(pairs) if a != b]
    base = base[: n - injected]
    originals = rng.sample(range(len(records)), min(injected, len(records)))
    originals += rng.sample(range(len(records), len(base)), injected - len(originals))
    copies = []
    for number, original in enumerate(originals):
        prompt, _, reply = base[original].partition("\n")
        copies.append(f"{reword(prompt, number)}\n{reply}")
    texts = base + copies
    order = list(range(len(texts)))
    rng.shuffle(order)
    place = {record: position for position, record in enumerate(order)}
    truth = [(place[o], place[len(base) + k]) for k, o in enumerate(originals)]
    return [texts[i] for i in order], truth


def recall_of(reported: set[tuple[int, int]], truth: list[tuple[int, int]]) -> float:
    """Injected copies reported together with their original (either order)."""
    return sum((max(a, b), min(a, b)) in reported for a, b in truth) / len(truth)


def timed(action, label: str = ""):
    """``(value, seconds)``; the time is also printed to stderr with ``label`` (a long run shows its progress)."""
    started = time.perf_counter()
    value = action()
    seconds = round(time.perf_counter() - started, 2)
    if label:
        print(f"{label}: {seconds} s (load {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)
    return value, seconds


def speed(records: list[dict[str, str]], n: int, seed: int, threshold: float) -> dict[str, Any]:
    texts, truth = speed_texts(records, n, seed)
    keys = [str(i) for i in range(len(texts))]
    model = embedder()
    lexical, lexical_s = timed(lambda: NearDuplicateIndex(0.8).find_within(keys, texts), "lexical pass")
    vectors, embed_s = timed(lambda: Embeddings(model.encode(texts).astype(np.float16), facts_keys(texts)), "ours: embed")
    (rows, partners, _), search_s = timed(lambda: nearest_within(vectors, threshold), "ours: search")
    ours = set(zip(rows.tolist(), partners.tolist()))

    from model2vec import StaticModel
    from semhash import SemHash
    from tokenizers import Tokenizer

    from tdm_dagster.gate.semantic.model import source_model_dir

    encoder = StaticModel(model.vectors, Tokenizer.from_file(str(source_model_dir() / "tokenizer.json")), normalize=True)

    def semhash_run():
        deduplicated = SemHash.from_records(records=texts, model=encoder).self_deduplicate()
        return deduplicated

    result, semhash_s = timed(semhash_run, "semhash")
    position = {text: i for i, text in enumerate(texts)}
    semhash_pairs = set()
    for item in result.filtered:
        later = position[item.record]
        for duplicate, _score in item.duplicates:
            semhash_pairs.add((max(later, position[duplicate]), min(later, position[duplicate])))
    return {
        "n": len(texts),
        "injected_copies": len(truth),
        "lexical": {"seconds": lexical_s, "recall": recall_of({(int(m.key_a), int(m.key_b)) for m in lexical}, truth)},
        "ours": {"threshold": threshold, "seconds": round(embed_s + search_s, 2), "embed_s": embed_s, "search_s": search_s,
                 "recall": recall_of(ours, truth), "reported": len(ours)},
        "semhash": {"threshold": 0.9, "seconds": semhash_s, "recall": recall_of(semhash_pairs, truth), "reported": len(result.filtered)},
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threshold", type=float, default=None, help="cosine for the speed run (default: the gate's)")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-thresholds", action="store_true", help="only the speed run")
    add_data_option(parser)
    args = parser.parse_args()
    from tdm_dagster.config.settings import TdmConfig

    threshold = args.threshold or TdmConfig().gate.semantic_duplicate_threshold
    load_before = os.getloadavg()
    _, model_s = timed(embedder)
    records = public_questions(args.data)
    results: dict[str, Any] = {"data": str(args.data.folder), "questions": len(records), "model": str(cache_path()), "model_load_s": model_s}
    if not args.skip_thresholds:
        results["duplicates_by_threshold"] = duplicate_thresholds(records)
        results["leakage_by_threshold"] = leakage_thresholds(records)
        results["relevance"] = relevance(records)
    if not args.skip_speed:
        results["speed"] = speed(records, args.n, args.seed, threshold)
    results["machine"] = {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "load_average_before": [round(x, 2) for x in load_before],
                          "load_average_after": [round(x, 2) for x in os.getloadavg()]}  # fmt: skip
    out = REPO_ROOT / "bench" / "results" / ("semantic_dup_speed.json" if args.skip_thresholds else "semantic_dup.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
