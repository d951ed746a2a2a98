"""Outcome benchmark: does a model trained on what the gate approves beat one trained on everything, at convergence?

    python bench/bench_outcome.py [--seeds 0 1 2] [--steps 1200] [--eval-every 150] [--jobs 2]

The task is SYLLO at level 1 (four hidden words per puzzle) over a 20-word lexicon
(``--lexicon``): a tiny CPU model can learn each clue's word and the clue order in
minutes.

Per seed:
1. A training set of ``--batches`` batches of ``--batch-records`` puzzles arrives the way
   generation makes it (bench/outcome_generators.py): ``--teacher-batches`` written by a
   weak teacher, consistently wrong on its blind spots (long words swapped with a
   neighbour, terse clues answered with a look-alike word, long prompts listed in tile
   order) and right elsewhere, confident and well formed; ``--failing-batches`` broken
   batches (a random weak model, replies cut by a token limit, an undertrained model's
   gibberish, in turn); the rest from a healthy generator, with a few exact duplicates
   and leaked evaluation items each. The reference answer stays in the metadata.
2. The gate (level standard, the leaked evaluation set registered as the evaluation
   registers its held-out sets) judges every batch. (b) keeps what it approves, with
   salvage (``--policy``: records that pass on their own are kept from a rejected batch)
   or with batch rejection; (a) keeps everything. The good records (right and clean)
   each policy lost are counted.
3. The same tiny model (config, seed, steps, batch size, learning rate, cosine schedule)
   trains on (a) and on (b), ``--jobs`` arms at a time, each in its own process.
4. Both are scored by exact answer (the generator's own ``check_answer``) on held-out
   puzzles sharing no word set with training, every ``--eval-every`` steps: the learning
   curves, whose last quarter is the convergence evidence ((a) must move < 2 points).

Goal (issue 20): gated >= ungated + 10 points at the last step, mean over >= 3 seeds, with
(a) converged, in <= 30 minutes on this machine. Prints progress on stderr, the per-seed
table, good records lost, the curves; writes bench/results/outcome.json (``--output``).
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.outcome_generators import BROKEN_KINDS, LEVEL, WeakTeacher, broken_batch  # noqa: E402
from tdm_dagster.config.settings import TdmConfig  # noqa: E402
from tdm_dagster.config.training import LR_SCHEDULES, TrainingConfig  # noqa: E402
from tdm_dagster.evaluate.comparison import HeldOutSet  # noqa: E402
from tdm_dagster.evaluate.isolation import register_held_out  # noqa: E402
from tdm_dagster.gate.run import GateInput, run_gate  # noqa: E402
from tdm_dagster.gate.salvage import salvaged  # noqa: E402
from tdm_dagster.generate.generators.syllo import SylloGenerator, load_lexicon  # noqa: E402
from tdm_dagster.home import TdmHome  # noqa: E402
from tdm_dagster.training.trainer import train  # noqa: E402

DUPLICATES_PER_HEALTHY_BATCH = 2
LEAKS_PER_HEALTHY_BATCH = 1
HELD_OUT_SEED = 2**40
LEAK_SEED = 2**41
TRAIN_SEED = 2**20
EVAL_BATCH = 50
"""Held-out puzzles answered per ``generate`` call (greedy, so the same answers as one by one)."""
REPLY_TOKENS = 48
"""Room for a reply: twice the longest right answer at level 1 (four numbered words); a
reply longer than that is wrong anyway, and an untrained model stops only there."""
POLICIES = ("salvage", "batch")


def progress(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def puzzle_key(example: dict) -> frozenset[str]:
    return frozenset(example["metadata"]["answer"])


@dataclass
class Batch:
    kind: str
    records: list[dict]
    bad: set[int] = field(default_factory=set)
    """Positions of records that should not be trained on: a wrong or broken reply, a
    duplicate, a leaked evaluation item. Every other record is good."""


@dataclass
class Task:
    generator: SylloGenerator
    lexicon_words: list[str]
    teacher: WeakTeacher
    held_out: list[dict]
    leak_pool: list[dict]


def make_task(lexicon_size: int, held_out_size: int, leak_set_size: int, seed: int) -> Task:
    lexicon = random.Random(seed).sample(load_lexicon(), lexicon_size)
    generator = SylloGenerator(lexicon)
    held_out = generator.generate(LEVEL, held_out_size, HELD_OUT_SEED + seed)
    taken = {puzzle_key(e) for e in held_out}
    leak_pool = [e for e in generator.generate(LEVEL, leak_set_size, LEAK_SEED + seed) if puzzle_key(e) not in taken]
    teacher = WeakTeacher.for_lexicon(lexicon, generator)
    return Task(generator, [entry.word for entry in lexicon], teacher, held_out, leak_pool)


def is_right(task: Task, example: dict) -> bool:
    return task.generator.check_answer(example, example["messages"][1]["content"])


def batch_kinds(batches: int, teacher: int, failing: int, rng: random.Random) -> list[str]:
    """Who writes each batch, in a seeded order: the weak teacher, a broken batch (its
    kinds in turn), or the healthy generator for the rest."""
    if teacher + failing > batches:
        raise SystemExit(f"--teacher-batches {teacher} + --failing-batches {failing} exceed --batches {batches}")
    kinds = ["weak_teacher"] * teacher + [BROKEN_KINDS[i % len(BROKEN_KINDS)] for i in range(failing)]
    kinds += ["healthy"] * (batches - len(kinds))
    rng.shuffle(kinds)
    return kinds


def make_batches(task: Task, kinds: list[str], per_batch: int, seed: int) -> list[Batch]:
    """The training set as it arrives; no training puzzle shares its word set with a
    held-out or leak-set one, except the leaks placed on purpose."""
    rng = random.Random(seed)
    excluded = {puzzle_key(e) for e in task.held_out + task.leak_pool}
    leaks = itertools.cycle(task.leak_pool)  # a generator that reproduces evaluation items keeps doing it
    made: list[Batch] = []
    for number, kind in enumerate(kinds):
        drawn = task.generator.generate(LEVEL, per_batch * 2, TRAIN_SEED * (seed + 1) + number * per_batch * 2)
        clean = [e for e in drawn if puzzle_key(e) not in excluded][:per_batch]
        if kind == "weak_teacher":
            batch = Batch(kind, [task.teacher.answer(e) for e in clean])
        elif kind != "healthy":
            batch = Batch(kind, broken_batch(kind, clean, rng, task.lexicon_words))
        else:
            batch = Batch(kind, clean)
            add_leaks_and_duplicates(batch, leaks, rng)
        batch.bad |= {p for p, record in enumerate(batch.records) if not is_right(task, record)}
        made.append(batch)
    return made


def add_leaks_and_duplicates(batch: Batch, leaks: Iterator[dict], rng: random.Random) -> None:
    """A healthy generator's usual slips: evaluation items leaked into generation, exact duplicates."""
    size = len(batch.records)
    for _ in range(LEAKS_PER_HEALTHY_BATCH):
        position = rng.choice([p for p in range(size) if p not in batch.bad])
        batch.records[position] = next(leaks)
        batch.bad.add(position)
    for _ in range(DUPLICATES_PER_HEALTHY_BATCH):
        position = rng.choice([p for p in range(1, size) if p not in batch.bad])
        source = rng.choice([p for p in range(position) if p not in batch.bad] or [position])
        if source != position:
            batch.records[position] = dict(batch.records[source])
            batch.bad.add(position)


@dataclass
class GateResult:
    approved: list[dict]
    bad_approved: int
    good_lost: int


def gate(batches: list[Batch], task: Task, home: TdmHome, spec: str) -> dict[str, GateResult]:
    """Judge every batch at the default level; what each policy keeps: ``batch``
    (a rejected batch loses all its records) and ``salvage``."""
    register_held_out(home, [HeldOutSet("syllo", LEVEL, task.leak_pool)])
    config = TdmConfig()
    results = {policy: GateResult([], 0, 0) for policy in POLICIES}
    for number, batch in enumerate(batches):
        outcome = run_gate(GateInput.from_records(batch.records, spec, f"batch{number}"), config, queued_in=home)
        good = set(range(len(batch.records))) - batch.bad
        kept_by_salvage = salvaged(outcome, batch.records, source="generated").approved_indices  # gate.on_batch_failure.generated: salvage
        for policy, kept in (("batch", set(outcome.approved_indices)), ("salvage", set(kept_by_salvage))):
            result = results[policy]
            result.approved += [batch.records[p] for p in sorted(kept)]
            result.bad_approved += len(kept & batch.bad)
            result.good_lost += len(good - kept)
        progress(f"  gate batch {number + 1}/{len(batches)} ({batch.kind}): "
                 f"{'approved' if outcome.batch_approved else 'rejected'}, {len(outcome.approved_indices)} kept, "
                 f"{len(kept_by_salvage)} with salvage")  # fmt: skip
    return results


class HeldOutScorer:
    """Exact-answer accuracy (the generator's own ``check_answer``) of a checkpoint's
    greedy replies, answered in batches."""

    def __init__(self, generator: SylloGenerator) -> None:
        self.generator = generator

    def correct(self, checkpoint: str | Path, examples: list[dict]) -> list[bool]:
        from tdm_dagster.serving.model import GenerationParams, load_checkpoint

        loaded = load_checkpoint(checkpoint)
        right: list[bool] = []
        for start in range(0, len(examples), EVAL_BATCH):
            chunk = examples[start : start + EVAL_BATCH]
            replies = loaded.generate_batch([GenerationParams([e["messages"][0]], REPLY_TOKENS, 0.0) for e in chunk])
            right += [not isinstance(r, Exception) and self.generator.check_answer(e, r["content"]) for e, r in zip(chunk, replies)]
        return right


def share(values: list[bool]) -> float:
    return sum(values) / len(values) if values else 0.0


def train_and_score(name: str, examples: list[dict], task: Task, leaked: list[dict], config: TrainingConfig, out: Path) -> dict:
    """Train, then score each saved checkpoint (the learning curve: the convergence
    evidence) and the final one on the leaked items and on the held-out puzzles inside
    and outside the weak teacher's blind spots. Runs in a worker process, on one thread:
    a tiny model gains little from a second one, and on a busy machine two threads
    waiting for each other made a step ten times slower (5.3 s against 0.5 s here)."""
    import torch
    from transformers.utils import logging as transformers_logging

    torch.set_num_threads(1)
    transformers_logging.disable_progress_bar()
    started = time.perf_counter()

    def report(step: int, total: int, loss: float) -> None:
        if step % (config.save_every or total) == 0 or step == total:
            progress(f"  {name}: step {step}/{total}, loss {loss:.3f}, {time.perf_counter() - started:.0f} s")

    result = train(examples, config, out, progress=report)
    scorer = HeldOutScorer(task.generator)
    checkpoints = {int(path.name.split("-")[1]): path for path in (out / "checkpoints").iterdir()}
    curve: dict[int, float] = {}
    for step in sorted(checkpoints):
        right = scorer.correct(checkpoints[step], task.held_out)
        curve[step] = share(right)
        progress(f"  {name}: held-out accuracy at step {step}: {curve[step]:.1%}")
    blind = [not is_right(task, task.teacher.answer(e)) for e in task.held_out]
    return {
        "examples": len(examples),
        "accuracy": curve[result.steps],
        "curve": curve,
        "blind_spot_accuracy": share([r for r, b in zip(right, blind) if b]),
        "elsewhere_accuracy": share([r for r, b in zip(right, blind) if not b]),
        "leaked_accuracy": share(scorer.correct(result.checkpoint_path, leaked)) if leaked else None,
        "train_seconds": round(result.seconds, 1),
    }


def last_quarter_range(curve: dict[int, float], steps: int) -> float | None:
    """Points the accuracy moves (max - min) over the last quarter of the steps; None
    with fewer than two evaluations there."""
    tail = [acc for step, acc in curve.items() if step >= 0.75 * steps]
    return round(100 * (max(tail) - min(tail)), 1) if len(tail) > 1 else None


def gate_seed(seed: int, args: argparse.Namespace, workdir: Path) -> tuple[dict, list[tuple]]:
    """Build and gate one seed's training set: its row so far, and the two arms to train
    (``train_and_score`` arguments)."""
    progress(f"seed {seed}: building {args.batches} batches and gating them")
    task = make_task(args.lexicon, args.held_out, args.leak_set, seed)
    kinds = batch_kinds(args.batches, args.teacher_batches, args.failing_batches, random.Random(seed))
    batches = make_batches(task, kinds, args.batch_records, seed)
    everything = [r for b in batches for r in b.records]
    leaked = [r for b in batches if b.kind == "healthy" for r in b.records if r in task.leak_pool]
    gated = gate(batches, task, TdmHome(workdir / f"home{seed}"), task.generator.spec)
    config = TrainingConfig(
        learning_rate=args.learning_rate, batch_size=args.batch_size, max_steps=args.steps, min_examples=1,
        seed=seed, max_length=384, device="cpu", tiny_model=json.loads(args.tiny_model), save_every=args.eval_every or None,
        lr_schedule=args.lr_schedule, warmup_steps=args.warmup_steps,
    )  # fmt: skip
    bad_total = sum(len(b.bad) for b in batches)
    good_total = len(everything) - bad_total
    row = {
        "seed": seed,
        "records": len(everything),
        "batches_by_kind": dict(Counter(kinds)),
        "weak_teacher": task.teacher.describe(),
        "bad_records": bad_total,
        "bad_share": round(bad_total / len(everything), 3),
        "good_records": good_total,
        "gate": {
            policy: {
                "kept": len(result.approved),
                "bad_kept": result.bad_approved,
                "good_lost": result.good_lost,
                "good_lost_share": round(result.good_lost / good_total, 4) if good_total else 0.0,
            }
            for policy, result in gated.items()
        },
        "policy": args.policy,
    }
    progress(f"seed {seed}: {bad_total} bad of {len(everything)}; gate keeps {len(gated[args.policy].approved)} ({args.policy})")
    arms = [
        (f"seed {seed} (a) ungated", everything, task, leaked, config, workdir / f"ungated{seed}"),
        (f"seed {seed} (b) gated", gated[args.policy].approved, task, leaked, config, workdir / f"gated{seed}"),
    ]
    return row, arms


def run_seeds(args: argparse.Namespace, workdir: Path) -> list[dict]:
    """Gate every seed, then train and score the arms ``--jobs`` at a time, each in its
    own process (spawned: the parent holds torch's threads)."""
    gated = [gate_seed(seed, args, workdir) for seed in args.seeds]
    arms = [arm for _, seed_arms in gated for arm in seed_arms]
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        scored = list(pool.map(train_and_score, *zip(*arms)))
    rows = []
    for (row, _), (ungated, gated_arm) in zip(gated, zip(scored[::2], scored[1::2])):
        row["ungated"], row["gated"] = ungated, gated_arm
        row["difference_points"] = round(100 * (gated_arm["accuracy"] - ungated["accuracy"]), 1)
        for arm in (ungated, gated_arm):
            arm["last_quarter_points"] = last_quarter_range(arm["curve"], args.steps)
        rows.append(row)
    return rows


def _sd(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def print_seed_table(rows: list[dict]) -> None:
    print("Per seed: (a) everything, (b) gated; accuracy by exact answer on the held-out puzzles at the last step.")
    print(f"{'seed':>4} {'recs':>5} {'bad':>5} {'n(a)':>5} {'n(b)':>5} {'acc(a)':>7} {'acc(b)':>7} {'diff':>6} "
          f"{'blind(a)':>9} {'blind(b)':>9} {'else(a)':>8} {'else(b)':>8} {'leak(a)':>8} {'leak(b)':>8} {'moves(a)':>9} {'moves(b)':>9}")  # fmt: skip
    for row in rows:
        u, g = row["ungated"], row["gated"]
        print(
            f"{row['seed']:>4} {row['records']:>5} {row['bad_share']:>5.0%} {u['examples']:>5} {g['examples']:>5} "
            f"{u['accuracy']:>7.1%} {g['accuracy']:>7.1%} {row['difference_points']:>+6.1f} "
            f"{u['blind_spot_accuracy']:>9.1%} {g['blind_spot_accuracy']:>9.1%} {u['elsewhere_accuracy']:>8.1%} {g['elsewhere_accuracy']:>8.1%} "
            f"{u['leaked_accuracy'] or 0:>8.1%} {g['leaked_accuracy'] or 0:>8.1%} {_points(u['last_quarter_points']):>9} {_points(g['last_quarter_points']):>9}"
        )  # fmt: skip
    print("blind: held-out puzzles inside the weak teacher's blind spots; else: the others; moves: points the "
          "accuracy moves over the last quarter of the steps (convergence: < 2 for (a)).")  # fmt: skip


def _points(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def print_gate_losses(rows: list[dict]) -> None:
    print("Good records (right and clean as the generator wrote them) the gate lost:")
    for row in rows:
        parts = [f"{policy} {row['gate'][policy]['good_lost']} ({row['gate'][policy]['good_lost_share']:.2%})" for policy in POLICIES]
        print(f"  seed {row['seed']}: of {row['good_records']} good, lost with " + ", with ".join(parts) +
              f"; bad kept: " + ", ".join(f"{policy} {row['gate'][policy]['bad_kept']}" for policy in POLICIES))  # fmt: skip


def print_curves(rows: list[dict], steps: int) -> dict[int, list[float]]:
    print("Learning curves, held-out accuracy by step, per seed and arm:")
    for row in rows:
        for arm in ("ungated", "gated"):
            print(f"  seed {row['seed']} {arm:>7}: " + ", ".join(f"{s}: {a:.1%}" for s, a in row[arm]["curve"].items()))
    by_step = {step: [100 * (row["gated"]["curve"][step] - row["ungated"]["curve"][step]) for row in rows] for step in rows[0]["ungated"]["curve"]}
    print("Mean over seeds, by step:")
    print(f"{'step':>6} {'acc(a)':>8} {'acc(b)':>8} {'diff':>6} {'sd':>5} {'min':>6} {'max':>6}")
    for step, differences in by_step.items():
        means = [statistics.mean(row[arm]["curve"][step] for row in rows) for arm in ("ungated", "gated")]
        print(f"{step:>6} {means[0]:>8.1%} {means[1]:>8.1%} {statistics.mean(differences):>+6.1f} {_sd(differences):>5.1f} "
              f"{min(differences):>+6.1f} {max(differences):>+6.1f}")  # fmt: skip
    return by_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--lexicon", type=int, default=20, help="words in the task's lexicon")
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-records", type=int, default=100)
    parser.add_argument("--teacher-batches", type=int, default=20, help="batches the weak teacher writes")
    parser.add_argument("--failing-batches", type=int, default=10, help="broken batches (random weak model, truncated, gibberish, in turn)")
    parser.add_argument("--policy", choices=POLICIES, default="salvage", help="what the gated arm trains on: salvage or batch rejection")
    parser.add_argument("--held-out", type=int, default=200, help="puzzles scored (shares none with training)")
    parser.add_argument(
        "--leak-set", type=int, default=20,
        help="puzzles of a registered evaluation set (the evaluation's default size per level) that leak into generation",
    )  # fmt: skip
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--eval-every", type=int, default=150, help="score every N steps (the learning curves); 0: only the end")
    parser.add_argument("--lr-schedule", choices=LR_SCHEDULES, default="cosine")
    parser.add_argument("--warmup-steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument(
        "--tiny-model", default='{"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2, '
        '"num_attention_heads": 4, "num_key_value_heads": 4}', help="LlamaConfig fields of the model (JSON)",
    )  # fmt: skip
    parser.add_argument("--jobs", type=int, default=2, help="arms trained at once, each in its own process on one thread")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "bench" / "results" / "outcome.json")
    args = parser.parse_args()
    started = time.perf_counter()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        rows = run_seeds(args, Path(tmp))
    print_seed_table(rows)
    print_gate_losses(rows)
    by_step = print_curves(rows, args.steps)
    final = by_step[args.steps]
    mean = statistics.mean(final)
    seconds = time.perf_counter() - started
    moves = [row["ungated"]["last_quarter_points"] for row in rows]
    converged = all(m is not None and m < 2 for m in moves)
    print(
        f"At {args.steps} steps: {mean:+.1f} points (sd {_sd(final):.1f}) over {len(rows)} seeds; goal >= +10: "
        f"{'met' if mean >= 10 else 'NOT met'}. (a) converged (moves < 2 points over the last quarter in every seed): "
        f"{'yes' if converged else 'NO'}. {seconds / 60:.1f} min, load average at start {load[0]:.2f}, at end {os.getloadavg()[0]:.2f}."
    )
    summary = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "rows": rows, "difference_mean": mean, "difference_sd": _sd(final),
        "difference_by_step": {step: {"mean": statistics.mean(d), "sd": _sd(d)} for step, d in by_step.items()},
        "ungated_converged": converged, "minutes": round(seconds / 60, 1),
        "load_average": {"start": round(load[0], 2), "end": round(os.getloadavg()[0], 2)},
    }  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
