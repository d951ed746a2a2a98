"""Gate throughput per level (quick, standard, deep) at 100,000 and 1,000,000 records,
with peak memory, each measured in its own process so the peaks do not mix.

    python bench/bench_gate_levels.py [--sizes 100000 1000000] [--levels quick standard deep] [--data DIR]

Records: the built-in generators across all their levels (chat examples); deep compares
them with a 500-item GSM8K evaluation set from the ``--data`` folder (default: the
subsets in tests/data; ``--data ../shared/data`` for the full files). Writes
bench/results/gate_levels.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.data_option import add_data_option


def make_records(n: int, path: Path) -> None:
    from tdm_dagster.generate.generators import SKILLS

    per_call = 5000
    written = 0
    with open(path, "w", encoding="utf-8") as out:
        call = 0
        while written < n:
            generator = list(SKILLS.values())[call % len(SKILLS)]
            level = 1 + (call // len(SKILLS)) % generator.max_level
            batch = generator.generate(level, min(per_call, n - written), seed=call)
            out.write("".join(json.dumps({"messages": r["messages"], "metadata": r["metadata"]}) + "\n" for r in batch))
            written += len(batch)
            call += 1


def run_one(records_path: str, level: str, eval_path: str) -> dict:
    """One level on one file, in this process: times, then peak memory.

    ``deep_detectors_seconds`` is the deep findings alone, timed on a second pass (the
    gate's total includes them)."""
    from dataclasses import replace

    from tdm_dagster.config.settings import TdmConfig
    from tdm_dagster.gate.deep import deep_findings, load_eval_sets
    from tdm_dagster.gate.quality.suites import warm_up
    from tdm_dagster.gate.run import GateInput, run_gate
    from tdm_dagster.gate.schemas import schema_gate

    warm_up()
    defaults = TdmConfig()
    gate = replace(defaults.gate, eval_sets=(eval_path,), min_completeness=0, min_consistency=0, min_validity=0, min_overall=0)
    config = replace(defaults, gate=gate)
    with open(records_path, encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    gate_input = GateInput.from_records(records, "chat_sft_v1", "bench")
    started = time.perf_counter()
    outcome = run_gate(gate_input, config, level=level)
    seconds = time.perf_counter() - started
    deep_seconds = 0.0
    if level == "deep":
        deep_started = time.perf_counter()
        schema = schema_gate(records, "chat_sft_v1")
        deep_findings(
            schema.valid_indices, schema.conversations, gate_input.keys,
            eval_sets=load_eval_sets(gate.eval_sets, gate.max_record_bytes), threshold=gate.near_duplicate_threshold,
        )  # fmt: skip
        deep_seconds = time.perf_counter() - deep_started
    return {
        "level": level,
        "records": len(records),
        "seconds": round(seconds, 2),
        "deep_detectors_seconds": round(deep_seconds, 2),
        "records_per_s": round(len(records) / seconds),
        "approved": outcome.report["records"]["approved"],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--levels", nargs="+", default=["quick", "standard", "deep"])
    add_data_option(parser)
    parser.add_argument("--one", nargs=3, metavar=("RECORDS", "LEVEL", "EVAL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(*args.one)))
        return
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        eval_path = Path(tmp) / "eval.json"
        eval_path.write_text(json.dumps(json.loads(args.data.gsm8k.read_text())[:500]))
        for size in args.sizes:
            records_path = Path(tmp) / f"records_{size}.jsonl"
            make_records(size, records_path)
            for level in args.levels:
                out = subprocess.run(
                    [sys.executable, __file__, "--one", str(records_path), level, str(eval_path)],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                result = json.loads(out.stdout.strip().splitlines()[-1])
                results.append(result)
                print(f"{size:>9,} records  {level:<8} {result['records_per_s']:>8,} records/s  "
                      f"{result['seconds']:>7.1f} s  peak {result['peak_rss_mb']:>6,} MB  approved {result['approved']:,}", flush=True)  # fmt: skip
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "gate_levels.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
