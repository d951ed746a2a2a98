"""Outcome benchmark: does a model trained on what the gate approves beat one trained on everything?

    python bench/bench_outcome.py [--seeds 0 1 2] [--steps 600] [--eval-every 150] [--batches 40]

The task is SYLLO at level 1 (four hidden words per puzzle) over a small lexicon
(``--lexicon``, default 20 words): the tiny CPU model has to learn each clue's word and
to answer in clue order. Measured on clean data: with 20 words it goes from 0 % to about
65 % exact answers between steps 200 and 400; with 40 words it was still at 0-2 % after
300 steps, and the packaged 523-word lexicon is out of reach in minutes.

Per seed, in one run:
1. A training set arrives the way generation makes it: ``--batches`` batches of
   ``--batch-records`` puzzles. Most come from a healthy generator, yet each of those
   carries a few records that should not be trained on (exact duplicates and
   evaluation items leaked into generation). ``--failing-batches`` come from a failing
   one, a kind each in turn: a weak model's answers (the right words in the wrong
   order, or one wrong word), replies cut short by a token limit, and an undertrained
   model's gibberish. The reference answer the generator wrote stays in the metadata.
   With the defaults 24 % of the records are bad.
2. The gate (at its default level, standard, with the leaked evaluation set registered
   as the evaluation registers its held-out sets) judges every batch; (b) keeps what it
   approves, (a) keeps everything.
3. The same tiny model (same config, seed, steps, batch size, learning rate and
   schedule) trains on (a) and on (b): the same budget of examples seen.
4. Both are scored by exact answer (the generator's own ``check_answer``) on a
   held-out set that shares no puzzle (word set) with any training record, at every
   ``--eval-every`` steps (one budget can fall either side of the step where the model
   starts to solve the task, so the curve is the result) and on the leaked items.

Goal (issue 12): gated >= ungated + 10 points on the held-out set, mean over >= 3 seeds,
on CPU in about 20 minutes. What it finds is in the README's benchmark list: gated data
learns the task in far fewer steps, and a run trained to convergence catches up, since
most of these bad records still carry right clue-word pairs. Writes bench/results/outcome.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tdm_dagster.config.settings import TdmConfig  # noqa: E402
from tdm_dagster.config.training import LR_SCHEDULES, TrainingConfig  # noqa: E402
from tdm_dagster.evaluate.checkpoint import evaluate_checkpoint  # noqa: E402
from tdm_dagster.evaluate.comparison import HeldOutSet  # noqa: E402
from tdm_dagster.evaluate.isolation import register_held_out  # noqa: E402
from tdm_dagster.gate.run import GateInput, run_gate  # noqa: E402
from tdm_dagster.generate.generators.syllo import SylloGenerator, load_lexicon  # noqa: E402
from tdm_dagster.home import TdmHome  # noqa: E402
from tdm_dagster.training.trainer import train  # noqa: E402
from tests.support.gibberish import tiny_model_gibberish  # noqa: E402

LEVEL = 1
FAILURE_KINDS = ("weak_model", "truncated", "gibberish")
WEAK_MODEL_WRONG_SHARE = 0.7
"""A weak model still gets some puzzles right."""
DUPLICATES_PER_HEALTHY_BATCH = 2
LEAKS_PER_HEALTHY_BATCH = 1
HELD_OUT_SEED = 2**40
LEAK_SEED = 2**41
TRAIN_SEED = 2**20


def puzzle_key(example: dict) -> frozenset[str]:
    return frozenset(example["metadata"]["answer"])


def reply(example: dict, text: str) -> dict:
    """The example with its assistant turn replaced; the reference answer stays."""
    user = example["messages"][0]
    return {**example, "messages": [user, {"role": "assistant", "content": text}]}


def weak_model_answer(example: dict, rng: random.Random, lexicon_words: list[str]) -> dict:
    """The right words in another order, or one of them swapped for another word."""
    words = list(example["metadata"]["answer"])
    if rng.random() < 0.5:
        while words == example["metadata"]["answer"]:
            rng.shuffle(words)
    else:
        words[rng.randrange(len(words))] = rng.choice([w for w in lexicon_words if w not in words])
    return reply(example, "\n".join(f"{n}. {word}" for n, word in enumerate(words, start=1)))


def truncated(example: dict, rng: random.Random) -> dict:
    """Cut by a token limit: somewhere in the first half of the reply."""
    text = example["messages"][1]["content"]
    return reply(example, text[: rng.randint(3, len(text) // 2)])


@dataclass
class Batch:
    kind: str
    records: list[dict]
    bad: set[int] = field(default_factory=set)
    """Positions of records that should not be trained on."""


@dataclass
class Task:
    generator: SylloGenerator
    lexicon_words: list[str]
    held_out: list[dict]
    leak_pool: list[dict]


def make_task(lexicon_size: int, held_out_size: int, leak_set_size: int, seed: int) -> Task:
    lexicon = random.Random(seed).sample(load_lexicon(), lexicon_size)
    generator = SylloGenerator(lexicon)
    held_out = generator.generate(LEVEL, held_out_size, HELD_OUT_SEED + seed)
    taken = {puzzle_key(e) for e in held_out}
    leak_pool = [e for e in generator.generate(LEVEL, leak_set_size, LEAK_SEED + seed) if puzzle_key(e) not in taken]
    return Task(generator, [entry.word for entry in lexicon], held_out, leak_pool)


def make_batches(task: Task, batches: int, per_batch: int, failing: int, seed: int) -> list[Batch]:
    """Healthy batches with a few duplicates and leaks, and ``failing`` whole failed ones,
    spread evenly; no training puzzle shares its word set with a held-out one."""
    rng = random.Random(seed)
    excluded = {puzzle_key(e) for e in task.held_out + task.leak_pool}
    failing_at = {round(i * batches / failing) for i in range(failing)} if failing else set()
    leaks = itertools.cycle(task.leak_pool)  # a generator that reproduces evaluation items keeps doing it
    made: list[Batch] = []
    for number in range(batches):
        drawn = task.generator.generate(LEVEL, per_batch * 2, TRAIN_SEED * (seed + 1) + number * per_batch * 2)
        clean = [e for e in drawn if puzzle_key(e) not in excluded][:per_batch]
        if number in failing_at:
            kind = FAILURE_KINDS[len([b for b in made if b.kind != "healthy"]) % len(FAILURE_KINDS)]
            made.append(failed_batch(kind, clean, rng, task.lexicon_words))
            continue
        batch = Batch("healthy", clean)
        for _ in range(LEAKS_PER_HEALTHY_BATCH):
            position = rng.choice([p for p in range(per_batch) if p not in batch.bad])
            batch.records[position] = next(leaks)
            batch.bad.add(position)
        for _ in range(DUPLICATES_PER_HEALTHY_BATCH):
            position = rng.choice([p for p in range(1, per_batch) if p not in batch.bad])
            source = rng.choice([p for p in range(position) if p not in batch.bad] or [position])
            if source != position:
                batch.records[position] = dict(batch.records[source])
                batch.bad.add(position)
        made.append(batch)
    return made


def failed_batch(kind: str, clean: list[dict], rng: random.Random, lexicon_words: list[str]) -> Batch:
    if kind == "weak_model":
        bad = {p for p in range(len(clean)) if rng.random() < WEAK_MODEL_WRONG_SHARE}
        records = [weak_model_answer(e, rng, lexicon_words) if p in bad else e for p, e in enumerate(clean)]
        return Batch(kind, records, bad)
    if kind == "truncated":
        return Batch(kind, [truncated(e, rng) for e in clean], set(range(len(clean))))
    return Batch(kind, [reply(e, tiny_model_gibberish(rng)) for e in clean], set(range(len(clean))))


@dataclass
class GateResult:
    approved: list[dict]
    bad_total: int
    bad_approved: int
    good_total: int
    good_rejected: int
    batches_rejected: int


def gate(batches: list[Batch], task: Task, home: TdmHome, spec: str) -> GateResult:
    register_held_out(home, [HeldOutSet("syllo", LEVEL, task.leak_pool)])
    config = TdmConfig()
    approved: list[dict] = []
    bad_approved = good_rejected = batches_rejected = 0
    for number, batch in enumerate(batches):
        outcome = run_gate(GateInput.from_records(batch.records, spec, f"batch{number}"), config, queued_in=home)
        kept = set(outcome.approved_indices)
        approved += [batch.records[p] for p in sorted(kept)]
        bad_approved += len(kept & batch.bad)
        good_rejected += len(batch.records) - len(batch.bad) - len(kept - batch.bad)
        batches_rejected += not kept
    bad_total = sum(len(b.bad) for b in batches)
    return GateResult(approved, bad_total, bad_approved, sum(len(b.records) for b in batches) - bad_total, good_rejected, batches_rejected)


def held_out_accuracy(checkpoint: str | Path, examples: list[dict], max_length: int) -> float:
    return evaluate_checkpoint(str(checkpoint), [HeldOutSet("syllo", LEVEL, examples)], max_length).overall_accuracy


def train_and_score(examples: list[dict], task: Task, leaked: list[dict], config: TrainingConfig, out: Path) -> dict:
    """Train, then score the final checkpoint (and, with ``save_every``, each earlier one:
    the learning curve, since one budget can fall either side of the step where the
    model starts to solve the task)."""
    result = train(examples, config, out)
    curve = {
        int(path.name.split("-")[1]): held_out_accuracy(path, task.held_out, config.max_length)
        for path in (out / "checkpoints").iterdir()
        if path.name != Path(result.checkpoint_path).name
    }
    curve[result.steps] = held_out_accuracy(result.checkpoint_path, task.held_out, config.max_length)
    return {
        "examples": len(examples),
        "accuracy": curve[result.steps],
        "curve": dict(sorted(curve.items())),
        "leaked_accuracy": held_out_accuracy(result.checkpoint_path, leaked, config.max_length) if leaked else None,
        "train_seconds": round(result.seconds, 1),
    }


def run_seed(seed: int, args: argparse.Namespace, workdir: Path) -> dict:
    task = make_task(args.lexicon, args.held_out, args.leak_set, seed)
    batches = make_batches(task, args.batches, args.batch_records, args.failing_batches, seed)
    everything = [r for b in batches for r in b.records]
    leaked = [r for b in batches if b.kind == "healthy" for r in b.records if r in task.leak_pool]
    gated = gate(batches, task, TdmHome(workdir / f"home{seed}"), task.generator.spec)
    config = TrainingConfig(
        learning_rate=args.learning_rate, batch_size=args.batch_size, max_steps=args.steps, min_examples=1,
        seed=seed, max_length=384, device="cpu", tiny_model=json.loads(args.tiny_model), save_every=args.eval_every or None,
        lr_schedule=args.lr_schedule, warmup_steps=args.warmup_steps,
    )  # fmt: skip
    row = {
        "seed": seed,
        "records": len(everything),
        "bad_records": gated.bad_total,
        "bad_share": round(gated.bad_total / len(everything), 3),
        "gate": {
            "bad_rejected": gated.bad_total - gated.bad_approved,
            "bad_approved": gated.bad_approved,
            "good_rejected": gated.good_rejected,
            "good_total": gated.good_total,
            "batches_rejected": gated.batches_rejected,
        },
        "ungated": train_and_score(everything, task, leaked, config, workdir / f"ungated{seed}"),
        "gated": train_and_score(gated.approved, task, leaked, config, workdir / f"gated{seed}"),
    }
    row["difference_points"] = round(100 * (row["gated"]["accuracy"] - row["ungated"]["accuracy"]), 1)
    return row


def _sd(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def print_row(row: dict) -> None:
    u, g, gate_row = row["ungated"], row["gated"], row["gate"]
    print(
        f"{row['seed']:>4} {row['records']:>6} {row['bad_share']:>5.0%} "
        f"{gate_row['bad_rejected']:>4}/{row['bad_records']:<4} {gate_row['good_rejected']:>4} "
        f"{u['examples']:>6} {g['examples']:>6} {u['accuracy']:>8.1%} {g['accuracy']:>8.1%} {row['difference_points']:>+6.1f} "
        f"{u['leaked_accuracy'] or 0:>9.1%} {g['leaked_accuracy'] or 0:>9.1%}",
        flush=True,
    )
    if len(u["curve"]) > 1:
        for arm, scored in (("(a)", u), ("(b)", g)):
            print(f"{'':>4} {arm} held-out accuracy by step: " + ", ".join(f"{step}: {acc:.1%}" for step, acc in scored["curve"].items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--lexicon", type=int, default=20, help="words in the task's lexicon")
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-records", type=int, default=100)
    parser.add_argument("--failing-batches", type=int, default=10)
    parser.add_argument("--held-out", type=int, default=200, help="puzzles scored (shares none with training)")
    parser.add_argument(
        "--leak-set", type=int, default=20,
        help="puzzles of a registered evaluation set (the evaluation's default size per level) that leak into generation",
    )  # fmt: skip
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--eval-every", type=int, default=150, help="also score every N steps (a learning curve per arm); 0: only the end")
    parser.add_argument("--lr-schedule", choices=LR_SCHEDULES, default="cosine")
    parser.add_argument("--warmup-steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument(
        "--tiny-model", default='{"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2, '
        '"num_attention_heads": 4, "num_key_value_heads": 4}', help="LlamaConfig fields of the model (JSON)",
    )  # fmt: skip
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"{'seed':>4} {'recs':>6} {'bad':>5} {'gate rej':>9} {'lost':>4} {'n(a)':>6} {'n(b)':>6} "
          f"{'acc(a)':>8} {'acc(b)':>8} {'diff':>6} {'leak(a)':>9} {'leak(b)':>9}")  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            rows.append(run_seed(seed, args, Path(tmp)))
            print_row(rows[-1])
    by_step = {step: [100 * (row["gated"]["curve"][step] - row["ungated"]["curve"][step]) for row in rows] for step in rows[0]["ungated"]["curve"]}
    print("(a) everything, (b) gated. Held-out accuracy, mean over seeds, by training step:")
    print(f"{'step':>6} {'acc(a)':>8} {'acc(b)':>8} {'diff':>6} {'sd':>5} {'min':>6} {'max':>6}")
    for step, differences in by_step.items():
        means = [statistics.mean(row[arm]["curve"][step] for row in rows) for arm in ("ungated", "gated")]
        print(f"{step:>6} {means[0]:>8.1%} {means[1]:>8.1%} {statistics.mean(differences):>+6.1f} {_sd(differences):>5.1f} "
              f"{min(differences):>+6.1f} {max(differences):>+6.1f}")  # fmt: skip
    final = by_step[args.steps]
    mean = statistics.mean(final)
    seconds = time.perf_counter() - started
    print(
        f"At the full budget ({args.steps} steps): {mean:+.1f} points (sd {_sd(final):.1f}) over {len(rows)} seeds; "
        f"goal >= +10: {'met' if mean >= 10 else 'NOT met'}. {seconds / 60:.1f} min."
    )
    results = REPO_ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    summary = {
        "args": vars(args), "rows": rows, "difference_mean": mean, "difference_sd": _sd(final),
        "difference_by_step": {step: {"mean": statistics.mean(d), "sd": _sd(d)} for step, d in by_step.items()},
        "minutes": round(seconds / 60, 1),
    }  # fmt: skip
    (results / "outcome.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
