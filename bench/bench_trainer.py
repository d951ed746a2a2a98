"""Benchmark: our trainer vs a plain Hugging Face ``Trainer`` that pads to max_length.

    python bench/bench_trainer.py [--n 512] [--steps 40] [--batch-size 16] [--seed 0]

Same tiny Llama (same config, same seed -> same initial weights), same tokenized data
(binary + SYLLO examples at mixed levels, assistant-only labels), same batch size,
learning rate and number of optimizer steps, on the same device, side by side in one run:

(a) ``tdm_dagster.training.train``: length-grouped batches padded only to each batch's
    own longest example;
(b) ``transformers.Trainer`` with a collator padding every batch to ``max_length``
    (the smallest power of two >= the longest example, so nothing is truncated).

The figure compared is REAL (non-padding) tokens per second of training time; (b)'s time
is ``train_runtime`` from ``Trainer.train``, (a)'s is the loop time (the end-to-end time,
tokenization and the final checkpoint included, is reported too). Goal: (a)/(b) >= 1.5.
Needs ``accelerate`` for (b). Writes bench/results/trainer.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tdm_dagster.config.training import TrainingConfig
from tdm_dagster.generate.generators import get_generator
from tdm_dagster.progress import stage, terminal_progress
from tdm_dagster.training.data import IGNORE_INDEX, tokenize_examples
from tdm_dagster.training.trainer import (
    build_model,
    load_tokenizer,
    resolve_device,
    train,
)


def make_examples(n: int, seed: int) -> list[dict]:
    examples: list[dict] = []
    plan = [("binary", 1), ("binary", 3), ("binary", 5), ("syllo", 1), ("syllo", 3)]
    per = n // len(plan)
    for i, (skill, level) in enumerate(plan):
        generator = get_generator(skill)
        examples += generator.generate(min(level, generator.max_level), per if i else n - per * (len(plan) - 1), seed + i)
    return examples


def run_hf(examples, config: TrainingConfig, steps: int, max_length: int, out: Path) -> dict:
    import torch
    from transformers import Trainer, TrainingArguments

    tokenizer = load_tokenizer(config)
    data = tokenize_examples(examples, tokenizer, max_length)
    rows = [{"input_ids": e.input_ids, "labels": e.labels} for e in data.examples]
    pad = tokenizer.pad_token_id
    counted = {"real": 0, "padded": 0}

    def pad_to_max_length(batch):
        ids = torch.full((len(batch), max_length), pad, dtype=torch.long)
        labels = torch.full((len(batch), max_length), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(batch), max_length), dtype=torch.long)
        for r, row in enumerate(batch):
            n = len(row["input_ids"])
            ids[r, :n] = torch.tensor(row["input_ids"])
            labels[r, :n] = torch.tensor(row["labels"])
            mask[r, :n] = 1
        counted["real"] += int(mask.sum())
        counted["padded"] += mask.numel()
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    model = build_model(config, tokenizer)
    args = TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=config.batch_size,
        max_steps=steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=config.weight_decay,
        max_grad_norm=config.grad_clip or 0.0,
        save_strategy="no",
        report_to=[],
        logging_steps=max(1, steps // 4),
        seed=config.seed,
        use_cpu=resolve_device(config.device) == "cpu",
        dataloader_num_workers=0,
        disable_tqdm=True,
        remove_unused_columns=False,
    )
    trainer = Trainer(model=model, args=args, train_dataset=rows, data_collator=pad_to_max_length)
    t0 = time.perf_counter()
    output = trainer.train()
    wall = time.perf_counter() - t0
    runtime = output.metrics.get("train_runtime", wall)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {
        "steps": trainer.state.global_step,
        "real_tokens": counted["real"],
        "padded_tokens": counted["padded"],
        "seconds": runtime,
        "real_tokens_per_s": counted["real"] / runtime,
        "final_logged_loss": losses[-1] if losses else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    import torch

    examples = make_examples(args.n, args.seed)
    tokenizer = load_tokenizer(TrainingConfig())
    lengths = [len(e) for e in tokenize_examples(examples, tokenizer, 1 << 16).examples]
    max_length = 1 << (max(lengths) - 1).bit_length()
    config = TrainingConfig(
        batch_size=args.batch_size, max_length=max_length, max_steps=args.steps, seed=args.seed,
        learning_rate=1e-3, device=args.device, min_examples=1,
    )
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        with terminal_progress("ours", args.steps, unit="steps") as advance:
            ours = train(examples, config, Path(tmp) / "ours", progress=lambda step, total, loss: advance(1))
        ours_e2e = time.perf_counter() - t0
        with stage(f"HF Trainer, {args.steps} steps"):
            hf = run_hf(examples, config, args.steps, max_length, Path(tmp) / "hf")
    ratio = ours.tokens_per_s / hf["real_tokens_per_s"]
    result = {
        "benchmark": "trainer real tokens/s: ours (length-grouped) vs HF Trainer (pad to max_length)",
        "examples": len(examples),
        "length_tokens": {"min": min(lengths), "mean": round(sum(lengths) / len(lengths), 1), "max": max(lengths)},
        "max_length": max_length,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "device": ours.device,
        "model": {"type": "llama", **config.tiny_model, "vocab_size": len(tokenizer)},
        "ours": {
            "steps": ours.steps,
            "real_tokens": ours.real_tokens,
            "loop_seconds": round(ours.real_tokens / ours.tokens_per_s, 3),
            "end_to_end_seconds": round(ours_e2e, 3),
            "real_tokens_per_s": round(ours.tokens_per_s, 1),
            "real_tokens_per_s_end_to_end": round(ours.real_tokens / ours_e2e, 1),
            "loss_first": round(ours.loss_curve[0], 4),
            "loss_last": round(ours.loss_curve[-1], 4),
        },
        "hf_trainer_pad_to_max_length": {k: round(v, 4) if isinstance(v, float) else v for k, v in hf.items()},
        "ratio_real_tokens_per_s": round(ratio, 2),
        "ratio_end_to_end": round((ours.real_tokens / ours_e2e) / hf["real_tokens_per_s"], 2),
        "goal_ratio": 1.5,
        "meets_goal": ratio >= 1.5,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(json.dumps(result, indent=2))
    out = REPO_ROOT / "bench" / "results" / "trainer.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"ours {ours.tokens_per_s:,.0f} real tok/s vs HF Trainer {hf['real_tokens_per_s']:,.0f}: x{ratio:.2f} -> {out}")


if __name__ == "__main__":
    main()
