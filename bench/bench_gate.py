"""Benchmark: the whole test step vs. tokenizing every conversation once.

    python bench/bench_gate.py [--n 100000] [--seed 7] [--level standard|deep]

Builds N chat examples from the built-in generators (all skills and levels, mixed),
then measures side by side (a) raw batch tokenization of the conversation texts with the
same tokenizer the gate uses (``backend_tokenizer.encode_batch``, texts/s) and (b) the
whole gate, ``tdm_dagster.gate.run.run_gate`` (schema gate + quality suites), examples/s,
after a one-time GX/tokenizer warm-up that is reported separately. Goal: (b)/(a) >= 1.
The gate's CPU seconds (``time.process_time``) are reported beside its wall time: on a
loaded machine they are the figure to compare.
Writes bench/results/gate.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tdm_dagster.config.settings import TdmConfig  # noqa: E402
from tdm_dagster.generate.generators import SKILLS  # noqa: E402
from tdm_dagster.gate.quality import TokenCounter  # noqa: E402
from tdm_dagster.gate.quality.features import compute_features  # noqa: E402
from tdm_dagster.gate.quality.suites import run_suites, warm_up  # noqa: E402

SPEC = "chat_sft_v1"
"""Every built-in skill writes plain user/assistant chats, which this spec accepts."""


def build_examples(n: int, seed: int) -> list[dict[str, Any]]:
    """N examples, an even mix of every skill and level."""
    plans = [(gen, level) for gen in SKILLS.values() for level in range(1, gen.max_level + 1)]
    examples: list[dict[str, Any]] = []
    for index, (generator, level) in enumerate(plans):
        count = n // len(plans) + (index < n % len(plans))
        examples.extend(generator.generate(level, count, seed + index))
    return examples


def conversation_text(example: dict[str, Any]) -> str:
    return "\n".join(message["content"] for message in example["messages"])


def timed(action):  # noqa: ANN001, ANN202 - tiny local helper
    started = time.perf_counter()
    value = action()
    return value, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--level", choices=("standard", "deep"), default="standard")
    args = parser.parse_args()

    from tdm_dagster.gate.run import GateInput, run_gate

    examples, generate_s = timed(lambda: build_examples(args.n, args.seed))
    config = TdmConfig()  # level standard, default thresholds
    settings = config.quality
    counter = TokenCounter(settings.tokenizer_path)
    gx_warm_up_s = warm_up()
    _, tokenizer_load_s = timed(lambda: counter.backend)
    run_gate(GateInput.from_records(examples[:200], SPEC), config, level=args.level)  # first-call costs (tokenizer cache, GX suites)

    texts = [conversation_text(example) for example in examples]
    _, tokenize_s = timed(lambda: counter.backend.encode_batch(texts, add_special_tokens=False))
    cpu_started = time.process_time()
    outcome, gate_s = timed(lambda: run_gate(GateInput.from_records(examples, SPEC), config, level=args.level))
    gate_cpu_s = time.process_time() - cpu_started

    # Stage breakdown of the quality part, measured on its own pass.
    features, features_s = timed(lambda: compute_features([e["messages"] for e in examples], settings, counter))
    suites, suites_s = timed(lambda: run_suites(features, settings))
    tokenizer_texts_per_s = len(texts) / tokenize_s
    gate_examples_per_s = len(examples) / gate_s
    results = {
        "n": len(examples),
        "level": args.level,
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "mean_conversation_chars": sum(map(len, texts)) / len(texts),
        "tokenizer_texts_per_s": tokenizer_texts_per_s,
        "gate_examples_per_s": gate_examples_per_s,
        "gate_examples_per_cpu_s": len(examples) / gate_cpu_s,
        "ratio_gate_to_tokenizer": gate_examples_per_s / tokenizer_texts_per_s,
        "seconds": {
            "generate": generate_s,
            "gx_warm_up": gx_warm_up_s,
            "tokenizer_load": tokenizer_load_s,
            "tokenize_all": tokenize_s,
            "gate_total": gate_s,
            "gate_total_cpu": gate_cpu_s,
            "quality_features": features_s,
            "quality_features_stages": features.attrs.get("timings_s", {}),
            "quality_suites": suites_s,
            "quality_suite_each": {name: result.details.get("seconds") for name, result in suites.items()},
        },
        "exact_token_counts": features.attrs.get("refined_texts"),
        "gate": {"approved": len(outcome.approved_indices), "rejected": len(outcome.rejected),
                 "recommendation": outcome.report["recommendation"]},
    }  # fmt: skip
    out = REPO_ROOT / "bench" / "results" / ("gate.json" if args.level == "standard" else f"gate_{args.level}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    print(
        f"\ntokenizer {tokenizer_texts_per_s:,.0f} texts/s | gate ({args.level}) {gate_examples_per_s:,.0f} examples/s, "
        f"{results['gate_examples_per_cpu_s']:,.0f} per CPU second | "
        f"ratio {results['ratio_gate_to_tokenizer']:.2f} (goal >= 1.0) | GX warm-up {gx_warm_up_s:.1f}s"
    )


if __name__ == "__main__":
    main()
