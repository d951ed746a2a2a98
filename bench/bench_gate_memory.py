"""Peak memory and speed of ``tdm validate --level deep`` (the in-process gate) as the file
grows: judged in chunks (the default, ``CHUNK_RECORDS``) and, where it fits in memory,
as one whole batch (``--whole-up-to``: the file in a single chunk, which is how the gate
judged every batch before chunking).

    python bench/bench_gate_memory.py [--sizes 200000 1000000] [--whole-up-to 200000] [--data DIR]

Records: the texts ``bench_ray_gate.py`` gates (the public texts of ``--data``, default
the subsets in tests/data, ``--data /work/shared/data`` for the full files, plus built-in
SYLLO and binary examples, 5% lightly edited copies), as chat records. Each run is a child process started for it alone; its peak
is its own VmHWM (read from /proc when it is done), its speed the records over the
seconds of the ``validate_file`` call. Writes bench/results/gate_memory.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_near_dup import build_records  # noqa: E402
from bench.bench_ray_gate import as_record  # noqa: E402
from bench.data_option import add_data_option  # noqa: E402

SEED = 21

BEFORE = {200_000: 1.9 * 1024, 1_000_000: 7.6 * 1024}
"""Peak RSS in MB of the in-process deep gate before chunking (README, bench_ray_gate.py)."""


def write_chats(path: Path, n: int, data) -> None:
    """``n`` chat records: the texts of ``bench_ray_gate.py`` (and so of the figures this
    benchmark is compared with), 5% of them lightly edited copies, as user and assistant turns."""
    texts, _ = build_records(n, SEED, data)
    with open(path, "w", encoding="utf-8") as out:
        for text in texts:
            pair = as_record(text)
            messages = [{"role": "user", "content": pair["prompt"]}, {"role": "assistant", "content": pair["completion"]}]
            out.write(json.dumps({"messages": messages}) + "\n")


def peak_mb() -> float:
    """This process's peak resident memory (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def measure(path: str, chunk: int) -> dict:
    """Run in the child: validate the file at level deep, report the peak and the speed."""
    from tdm_dagster.config.settings import TdmConfig
    from tdm_dagster.gate.validate_file import validate_file

    started = time.perf_counter()
    report = validate_file(path, TdmConfig(), level="deep", chunk_records=chunk)
    seconds = time.perf_counter() - started
    records = report["totals"]["records"]
    return {"records": records, "seconds": round(seconds, 1), "records_per_s": round(records / seconds),
            "peak_rss_mb": round(peak_mb()), "accepted": report["totals"]["accepted"]}  # fmt: skip


def run_child(path: Path, chunk: int) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--measure", str(path), "--chunk", str(chunk)], capture_output=True, text=True, cwd=ROOT
    )
    if done.returncode != 0:
        raise SystemExit(f"child failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--whole-up-to", type=int, default=200_000, help="largest size also judged as one chunk")
    add_data_option(parser)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--chunk", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.chunk)))
        return
    from tdm_dagster.gate.run import CHUNK_RECORDS

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            path = Path(tmp) / f"chats_{size}.jsonl"
            write_chats(path, size, args.data)
            row = {"records": size, "file_mb": round(path.stat().st_size / 2**20, 1), "chunk": CHUNK_RECORDS}
            row["chunked"] = run_child(path, CHUNK_RECORDS)
            if size <= args.whole_up_to:
                row["whole"] = run_child(path, size)
            row["before_readme_peak_mb"] = BEFORE.get(size)
            rows.append(row)
            print(json.dumps(row), flush=True)
            path.unlink()
    print(f"\n{'records':>9} {'chunked MB':>11} {'rec/s':>7} {'whole MB':>9} {'rec/s':>7} {'README before MB':>17}")
    for row in rows:
        whole = row.get("whole") or {}
        print(f"{row['records']:>9} {row['chunked']['peak_rss_mb']:>11} {row['chunked']['records_per_s']:>7} "
              f"{whole.get('peak_rss_mb', '-'):>9} {whole.get('records_per_s', '-'):>7} {row['before_readme_peak_mb'] or '-':>17}")  # fmt: skip
    if len(rows) > 1:
        print(f"peak growth {rows[0]['records']} -> {rows[-1]['records']}: {rows[-1]['chunked']['peak_rss_mb'] / rows[0]['chunked']['peak_rss_mb']:.2f}x")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "gate_memory.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
