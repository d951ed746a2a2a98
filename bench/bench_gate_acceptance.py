"""What the gate accepts: real data sets (must stay >= 99 % at `standard`),
tiny-model-style gibberish and replies broken the way generators break them (each kind
of ``tests/support/broken_replies.py``, on real GSM8K questions: must be rejected), side
by side in one run.

    python bench/bench_gate_acceptance.py [--data DIR] [--level standard] [--gibberish 1000] [--broken 50]

A broken reply counts as accepted unless an issue of its own rejects it (the batch of
all of them fails as a whole too; that is not counted).
"""

from __future__ import annotations

import argparse
from collections import Counter
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.data_option import add_data_option  # noqa: E402
from tdm_dagster.config.settings import TdmConfig  # noqa: E402
from tdm_dagster.gate.run import GateInput, run_gate  # noqa: E402
from tdm_dagster.gate.validate_file import validate_file  # noqa: E402
from tests.support.broken_replies import broken_corpus  # noqa: E402
from tests.support.gibberish import chat, tiny_model_gibberish  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_option(parser)
    parser.add_argument("--level", default="standard", choices=["quick", "standard", "deep"])
    parser.add_argument("--gibberish", type=int, default=1000, help="gibberish replies to judge")
    parser.add_argument("--broken", type=int, default=50, help="broken replies of each kind to judge")
    args = parser.parse_args()
    print(f"{'data':<34} {'records':>8} {'accepted':>9} {'rate':>7} {'seconds':>8}")
    for path in args.data.files:
        started = time.perf_counter()
        totals = validate_file(path, TdmConfig(), level=args.level)["totals"]
        rate = totals["accepted"] / totals["records"] if totals["records"] else 0.0
        print(f"{path.name:<34} {totals['records']:>8} {totals['accepted']:>9} {rate:>7.2%} {time.perf_counter() - started:>8.1f}")
    rng = random.Random(0)
    records = [chat(tiny_model_gibberish(rng)) for _ in range(args.gibberish)]
    started = time.perf_counter()
    outcome = run_gate(GateInput.from_records(records, "chat_sft_v1", "gibberish"), TdmConfig(), level=args.level)
    accepted = len(outcome.approved_indices)
    per_record = sum(1 for found in outcome.rejected.values() if any(i.code.startswith("content.") for i in found))
    print(f"{'tiny-model gibberish':<34} {len(records):>8} {accepted:>9} {accepted / len(records):>7.2%} {time.perf_counter() - started:>8.1f}")
    print(f"gibberish rejected by a content rule of its own (not only with its batch): {per_record} of {len(records)}")
    _broken_kinds(args.data.gsm8k, args.broken, args.level)


def _broken_kinds(gsm8k: Path, per_kind: int, level: str) -> None:
    """Acceptance per kind of broken reply, each record judged on its own issues."""
    corpus = broken_corpus(per_kind, seed=0, path=gsm8k)
    records = [chat(reply, prompt) for replies in corpus.values() for prompt, reply in replies]
    started = time.perf_counter()
    outcome = run_gate(GateInput.from_records(records, "chat_sft_v1", "broken"), TdmConfig(), level=level)
    seconds = time.perf_counter() - started
    print(f"\n{'broken kind':<34} {'records':>8} {'accepted':>9} {'rate':>7}  rejected by")
    for k, kind in enumerate(corpus):
        codes: Counter[str] = Counter()
        accepted = 0
        for n in range(k * per_kind, (k + 1) * per_kind):
            own = [i.code for i in outcome.issues.get(n, []) if i.rejects and i.code != "batch.rejected"]
            accepted += not own
            codes.update(own[:1])
        named = ", ".join(f"{code} {count}" for code, count in codes.most_common(3))
        print(f"{kind:<34} {per_kind:>8} {accepted:>9} {accepted / per_kind:>7.0%}  {named}")
    print(f"({len(records)} broken replies gated in {seconds:.1f} s)")


if __name__ == "__main__":
    main()
