"""Benchmark: streaming ingest keeps memory flat as files grow.

    python bench/bench_ingest.py [--sizes-mb 50 500] [--data DIR]

Builds a JSONL file and a JSON-array file of each size by repeating the public alpaca
data (GSM8K and GPTeacher roleplay) in the ``--data`` folder (default: the subsets in
tests/data; ``--data ../shared/data`` for the full files), in a temp dir, never in the
repo, then reads and maps every record (``read_records`` + ``map_source``) in a fresh
subprocess per file, twice: once for peak RSS (``ru_maxrss``, before and after reading)
and records/s, once under tracemalloc for the peak of Python allocations while reading.
Flat peaks across sizes are the point; the absolute numbers depend on the machine.
Writes bench/results/ingest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.data_option import add_data_option
from tests.support.fixture_data import PublicData

MB = 1024 * 1024


def source_files(data: PublicData) -> tuple[Path, ...]:
    return data.gsm8k, data.roleplay


def source_records(data: PublicData) -> list[dict[str, Any]]:
    return [record for path in source_files(data) for record in json.loads(path.read_bytes())]


def repeated(records: list[dict[str, Any]], render: Callable[[dict[str, Any]], str], target_bytes: int) -> Iterator[bytes]:
    """Rendered records, cycling through ``records``, until ``target_bytes`` have been given."""
    written = 0
    while True:
        for record in records:
            chunk = render(record).encode("utf-8")
            yield chunk
            written += len(chunk) + 2
            if written >= target_bytes:
                return


def write_jsonl(path: Path, records: list[dict[str, Any]], target_bytes: int) -> None:
    with path.open("wb") as out:
        for line in repeated(records, json.dumps, target_bytes):
            out.write(line + b"\n")


def write_json_array(path: Path, records: list[dict[str, Any]], target_bytes: int) -> None:
    """Pretty-printed, like the public files."""
    with path.open("wb") as out:
        out.write(b"[\n")
        for position, element in enumerate(repeated(records, lambda r: json.dumps(r, indent=4), target_bytes)):
            out.write((b",\n" if position else b"") + element)
        out.write(b"\n]\n")


def measure(path: str, mode: str) -> dict[str, Any]:
    """Run in the child: read and map every record of ``path``; report memory and speed."""
    import resource
    import tracemalloc

    from tdm_dagster.ingest import map_source, read_records

    rss_before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if mode == "tracemalloc":
        tracemalloc.start()
    started = time.perf_counter()
    records = mapped = rejected = 0
    for record in read_records(path):
        records += 1
        outcome = map_source(record)
        if isinstance(outcome, list):
            mapped += len(outcome)
        else:
            rejected += 1
    seconds = time.perf_counter() - started
    result = {"records": records, "mapped": mapped, "rejected": rejected, "seconds": seconds}
    if mode == "tracemalloc":
        result["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / MB
    else:
        rss_after_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result |= {"rss_before_mb": rss_before_kb / 1024, "rss_peak_mb": rss_after_kb / 1024,
                   "rss_growth_mb": (rss_after_kb - rss_before_kb) / 1024}  # fmt: skip
    return result


def run_child(path: Path, mode: str) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(path), "--mode", mode]
    done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO_ROOT)
    return json.loads(done.stdout)


def bench_file(path: Path) -> dict[str, Any]:
    size_mb = path.stat().st_size / MB
    speed = run_child(path, "rss")
    heap = run_child(path, "tracemalloc")
    return {
        "file_mb": round(size_mb, 1),
        "records": speed["records"],
        "mapped": speed["mapped"],
        "rejected": speed["rejected"],
        "records_per_s": round(speed["records"] / speed["seconds"]),
        "mb_per_s": round(size_mb / speed["seconds"], 1),
        "rss_before_read_mb": round(speed["rss_before_mb"], 1),
        "rss_peak_mb": round(speed["rss_peak_mb"], 1),
        "rss_growth_while_reading_mb": round(speed["rss_growth_mb"], 1),
        "tracemalloc_peak_mb": round(heap["tracemalloc_peak_mb"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[50, 500])
    add_data_option(parser)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=["rss", "tracemalloc"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.mode)))
        return

    records = source_records(args.data)
    results: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "source": [str(path) for path in source_files(args.data)],
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench_ingest_") as folder:
        for size_mb in args.sizes_mb:
            for kind, writer in (("jsonl", write_jsonl), ("json", write_json_array)):
                path = Path(folder) / f"alpaca_{size_mb}mb.{kind}"
                writer(path, records, size_mb * MB)
                run = {"format": kind, "target_mb": size_mb, **bench_file(path)}
                path.unlink()
                results["runs"].append(run)
                print(f"{kind:5} {run['file_mb']:7.1f} MB  {run['records']:>9,} records  {run['records_per_s']:>8,} rec/s "
                      f"{run['mb_per_s']:6.1f} MB/s  RSS peak {run['rss_peak_mb']:6.1f} MB (+{run['rss_growth_while_reading_mb']:.1f} "
                      f"while reading)  tracemalloc peak {run['tracemalloc_peak_mb']:.2f} MB", flush=True)  # fmt: skip
    out = REPO_ROOT / "bench" / "results" / "ingest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
