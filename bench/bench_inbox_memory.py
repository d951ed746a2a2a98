"""Peak memory of ingesting an inbox file end to end (`tdm ingest`: read, map, gate,
queue), for files of growing size. With gate.max_batch_records a large file runs in
consecutive parts, so the peak should stay flat as the file grows.

    python bench/bench_inbox_memory.py [--sizes 50000 200000] [--part 50000] [--data DIR]

Records: GSM8K and GPTeacher roleplay from the ``--data`` folder (default: the subsets in
tests/data; ``--data ../shared/data`` for the full files), cycled and made unique.

Each size runs in a fresh TDM_HOME and process; peak = that process's max RSS.
Writes bench/results/inbox_memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.data_option import add_data_option
from tests.support.fixture_data import PublicData


def write_file(path: Path, n: int, data: PublicData) -> None:
    """Real alpaca records, each made unique by a numbered suffix (so the batch is diverse)."""
    base = json.loads(data.gsm8k.read_text()) + json.loads(data.roleplay.read_text())
    with open(path, "w", encoding="utf-8") as out:
        for i in range(n):
            record = base[i % len(base)]
            out.write(json.dumps({**record, "instruction": f"{record['instruction']} (variant {i})"}) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 200_000])
    parser.add_argument("--part", type=int, default=50_000)
    add_data_option(parser)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:  # one `tdm ingest`, alone in this process, so its peak is its own
        done = subprocess.run([str(Path(sys.executable).parent / "tdm"), "ingest", "--json"], capture_output=True, text=True)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        outcomes = json.loads(done.stdout) if done.stdout.strip().startswith("[") else []
        print(json.dumps({"outcomes": outcomes, "peak_kb": peak, "stderr": done.stderr[-500:] if not outcomes else ""}))
        return
    results = []
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp) / "home"
            (home / "inbox").mkdir(parents=True)
            (home / "config.yaml").write_text(f"inbox:\n  settle_sec: 0\ngate:\n  max_batch_records: {args.part}\n  min_validity: 0\n  min_overall: 0\n  min_completeness: 0\n  min_consistency: 0\n")
            write_file(home / "inbox" / "data.jsonl", size, args.data)
            megabytes = (home / "inbox" / "data.jsonl").stat().st_size / 2**20
            env = {**os.environ, "TDM_HOME": str(home)}
            env.pop("DAGSTER_HOME", None)
            started = time.perf_counter()
            done = subprocess.run([sys.executable, __file__, "--measure"], env=env, capture_output=True, text=True)
            seconds = time.perf_counter() - started
            measured = json.loads(done.stdout.strip().splitlines()[-1])
            outcomes, peak = measured["outcomes"], measured["peak_kb"]
            result = {
                "records": size, "data": str(args.data.folder), "file_mb": round(megabytes, 1), "part": args.part, "batches": len(outcomes),
                "seconds": round(seconds, 1), "records_per_s": round(size / seconds),
                "peak_rss_mb": round(peak / 1024), "queued_batches": sum(o["queued"] for o in outcomes),
            }  # fmt: skip
            results.append(result)
            print(json.dumps(result), flush=True)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "inbox_memory.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
