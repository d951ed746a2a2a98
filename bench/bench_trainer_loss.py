"""Benchmark: the training loss from labelled logits only vs the model's own loss over every position.

    python bench/bench_trainer_loss.py [--steps 60] [--batch-size 16] [--rounds 2] [--data DIR]

Same trainer (``tdm_dagster.training.train``), same tiny Llama, seed, batches and
optimizer; the only difference is the loss:

(a) ``training.loss.assistant_loss``: logits for the positions that predict a reply
    token only (``logits_to_keep`` as a boolean mask);
(b) the model's own ``model(**batch).loss``, as Hugging Face's ``Trainer`` and most
    training scripts compute it: logits for every position, then the prompt's ignored.

on two kinds of chat data: SYLLO puzzles (a long prompt, a short reply: 190 and 22
tokens) and GSM8K (a short question, a long worked answer). Each arm runs in its own
process, alternating (b), (a), (b), (a) for ``--rounds``, so each gets a clean peak
memory (``ru_maxrss``) and machine noise falls on both. Reported: real tokens per second
of training loop, the peak memory, and the final losses (the same training, so they
match to float rounding). Writes bench/results/trainer_loss.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.data_option import add_data_option  # noqa: E402

DATASETS = ("syllo", "gsm8k")


def examples_of(dataset: str, gsm8k: Path, n: int) -> list[dict]:
    if dataset == "syllo":
        from tdm_dagster.generate.generators import get_generator

        return get_generator("syllo").generate(1, n, 0)
    records = json.loads(gsm8k.read_text(encoding="utf-8"))[:n]
    return [{"messages": [{"role": "user", "content": r["instruction"]}, {"role": "assistant", "content": r["output"]}]} for r in records]


def run_arm(arm: str, dataset: str, gsm8k: Path, steps: int, batch_size: int) -> dict:
    """One arm in this process: train, then report speed, peak memory and losses."""
    from tdm_dagster.config.training import TrainingConfig
    from tdm_dagster.training import trainer

    if arm == "full":
        trainer.takes_logit_mask = lambda model: False  # the peer: the model's own loss
    config = TrainingConfig(
        batch_size=batch_size, max_steps=steps, seed=0, learning_rate=1e-3, device="cpu", min_examples=1, max_length=512
    )
    with tempfile.TemporaryDirectory() as tmp:
        result = trainer.train(examples_of(dataset, gsm8k, batch_size * steps), config, tmp)
    return {
        "tokens_per_s": result.tokens_per_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "final_loss": result.loss_curve[-1],
        "first_loss": result.loss_curve[0],
    }


def in_subprocess(arm: str, dataset: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--arm", arm, "--dataset", dataset, "--steps", str(args.steps),
               "--batch-size", str(args.batch_size), "--data", str(args.data.folder)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--arm", choices=("full", "labelled"), help=argparse.SUPPRESS)
    parser.add_argument("--dataset", choices=DATASETS, help=argparse.SUPPRESS)
    add_data_option(parser)
    args = parser.parse_args()
    if args.arm:
        print(json.dumps(run_arm(args.arm, args.dataset, args.data.gsm8k, args.steps, args.batch_size)))
        return
    summary = {"args": {"steps": args.steps, "batch_size": args.batch_size, "rounds": args.rounds}, "datasets": {}}
    print(f"{'data':<6} {'arm':<9} {'tokens/s':>9} {'peak MB':>8} {'final loss':>11}")
    for dataset in DATASETS:
        runs: dict[str, list[dict]] = {"full": [], "labelled": []}
        for _ in range(args.rounds):
            for arm in ("full", "labelled"):
                runs[arm].append(in_subprocess(arm, dataset, args))
                row = runs[arm][-1]
                print(f"{dataset:<6} {arm:<9} {row['tokens_per_s']:>9.0f} {row['peak_rss_mb']:>8.0f} {row['final_loss']:>11.4f}", flush=True)
        speed = {arm: statistics.median(r["tokens_per_s"] for r in rows) for arm, rows in runs.items()}
        memory = {arm: statistics.median(r["peak_rss_mb"] for r in rows) for arm, rows in runs.items()}
        summary["datasets"][dataset] = {"runs": runs, "speedup": speed["labelled"] / speed["full"], "peak_rss_ratio": memory["labelled"] / memory["full"]}
        print(f"{dataset}: labelled-logits loss {speed['labelled'] / speed['full']:.2f}x the tokens/s of the full loss "
              f"(median of {args.rounds}), peak memory {memory['labelled']:.0f} vs {memory['full']:.0f} MB")  # fmt: skip
    results = REPO_ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "trainer_loss.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
