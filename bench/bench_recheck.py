"""Benchmark: the 12-hourly queue re-check vs. the gate it re-runs.

    python bench/bench_recheck.py [--n 100000] [--file-size 1000] [--seed 7]

Queues N built-in examples (every skill and level, shuffled) as files of ``--file-size``
records, then measures side by side (a) ``run_gate`` on each file's records already in
memory, the work the gate did when the batches were queued, and (b) ``recheck_queue`` over
the queue on disk (each file's approved records, as queued): reading every file, the same
gate, the claim-proof renames and the result file. The ratio of time per record, (b)/(a),
is what the re-check costs beyond the gate itself; goal <= 1.25. Both after one warm-up. Writes bench/results/recheck.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.bench_gate import SPEC, build_examples  # noqa: E402
from tdm_dagster.config.settings import load_config  # noqa: E402
from tdm_dagster.gate.run import GateInput, run_gate  # noqa: E402
from tdm_dagster.home import TdmHome  # noqa: E402
from tdm_dagster.progress import stage, terminal_progress  # noqa: E402
from tdm_dagster.queue.recheck import recheck_queue  # noqa: E402
from tdm_dagster.queue.store import TrainingQueue  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--file-size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    examples = build_examples(args.n, args.seed)
    random.Random(args.seed).shuffle(examples)
    files = [examples[i : i + args.file_size] for i in range(0, len(examples), args.file_size)]
    with tempfile.TemporaryDirectory() as folder:
        home = TdmHome(Path(folder)).ensure()
        config = load_config(home, environ={})
        with stage("warming the gate"):
            run_gate(GateInput.from_records(files[0], SPEC, "warm-up"), config)  # GX, tokenizer
        started = time.perf_counter()
        with terminal_progress("gating in memory", len(examples)) as advance:
            gated = []
            for i, records in enumerate(files):
                gated.append(run_gate(GateInput.from_records(records, SPEC, f"bench_{i:05d}"), config))
                advance(len(records))
        gate_s = time.perf_counter() - started
        queue = TrainingQueue(home)
        for index, (records, outcome) in enumerate(zip(files, gated)):  # what the queue holds: approved records
            queue.enqueue(f"bench_{index:05d}", [records[i] for i in outcome.approved_indices], "normal")
        queued = sum(len(outcome.approved_indices) for outcome in gated)
        started = time.perf_counter()
        with stage(f"rechecking {queued:,} queued records"):
            result = recheck_queue(home, config)
        recheck_s = time.perf_counter() - started

    gate_rate, recheck_rate = len(examples) / gate_s, queued / recheck_s
    report = {
        "records_generated": len(examples),
        "records_queued": queued,
        "files": len(files),
        "gate_in_memory_s": round(gate_s, 3),
        "recheck_on_disk_s": round(recheck_s, 3),
        "gate_records_per_s": round(gate_rate),
        "recheck_records_per_s": round(recheck_rate),
        "time_per_record_recheck_over_gate": round(gate_rate / recheck_rate, 3),
        "verdicts": result.to_dict()["totals"],
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(json.dumps(report, indent=2))
    out = REPO_ROOT / "bench" / "results" / "recheck.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
