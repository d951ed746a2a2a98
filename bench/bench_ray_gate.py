"""Benchmark: the gate over Parquet shards, in-process vs. a local Ray with 1 and 2 workers.

    python bench/bench_ray_gate.py [--n 100000] [--shard-records 10000] [--level deep] [--data DIR]

Builds N records (the public texts of ``--data`` plus built-in SYLLO and binary examples,
5% of them lightly edited near-duplicates: :func:`bench.bench_near_dup.build_records`),
each a prompt/completion pair (the text's first line, or first half, is the prompt),
writes them as Parquet shards of ``--shard-records`` records, then gates the folder three
times side by side, each run in a child process of its own: ``in_process``, then Ray
started locally with ``--num-cpus 1`` and ``2`` (``ray.init(num_cpus=...)``: one worker
process per CPU). A sampler reads the memory (RSS) of the child and of every process
under it every 0.2 s: the driver's peak, the largest Ray worker's peak (RSS, and USS: the
worker's own pages, leaving out the shared object store it maps), and the peak of
everything together (RSS: shared pages counted once per process that maps them, so the
sum overstates it), and the CPU seconds of every process by kind (the driver, the Ray
workers, Ray's other processes). On a shared machine the wall-clock figures depend on
what else runs; records per CPU second of the processes that gate (in-process: the
driver; Ray: its workers) do not, so the per-worker ratio is given both ways. The Ray
runs also report each step's CPU seconds inside its tasks (``task_cpu_seconds``); the
workers' CPU beyond that is their start-up (imports) and Ray's own work in them.
Checks that all three runs wrote identical decisions.
Writes bench/results/ray_gate.json and prints a table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.bench_near_dup import build_records  # noqa: E402
from bench.data_option import add_data_option  # noqa: E402

RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
"""A local Ray on loopback only, no usage stats, no auth token for this throwaway cluster."""
MB = 1024 * 1024


def as_record(text: str) -> dict[str, str]:
    head, _, rest = text.partition("\n")
    if not rest.strip():
        words = text.split()
        head, rest = " ".join(words[: len(words) // 2]), " ".join(words[len(words) // 2 :])
    return {"prompt": head or "Continue.", "completion": rest or head}


def write_shards(n: int, shard_records: int, seed: int, data: Any, folder: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts, _ = build_records(n, seed, data)
    for shard, start in enumerate(range(0, len(texts), shard_records)):
        rows = [as_record(text) for text in texts[start : start + shard_records]]
        pq.write_table(pa.Table.from_pylist(rows), folder / f"part-{shard:05d}.parquet")
    return len(texts)


def _sample(pid: int, peaks: dict[str, float], cpu: dict[int, tuple[str, float]], done: threading.Event) -> None:
    """Peak RSS of the driver, of the largest Ray worker, of the whole tree; the largest
    worker's peak USS (its own pages: without the object store it maps); and the CPU
    seconds of every process of the tree, by kind (driver, Ray worker, other Ray process),
    as last seen."""
    import psutil

    root = psutil.Process(pid)
    while not done.is_set():
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        total = 0.0
        for process in tree:
            try:
                rss = process.memory_info().rss / MB
                command = " ".join(process.cmdline())
                worker = process.pid != pid and (
                    command.startswith("ray::") or "default_worker.py" in command or cpu.get(process.pid, ("",))[0] == "workers"
                )  # a worker names itself ray::<task> once started; once a worker, always one
                uss = process.memory_full_info().uss / MB if worker else 0.0
                times = process.cpu_times()
            except psutil.Error:
                continue
            total += rss
            kind = "driver" if process.pid == pid else "workers" if worker else "other"
            cpu[process.pid] = (kind, times.user + times.system)
            if process.pid == pid:
                peaks["driver"] = max(peaks["driver"], rss)
            elif worker:
                peaks["worker"] = max(peaks["worker"], rss)
                peaks["worker_uss"] = max(peaks["worker_uss"], uss)
        peaks["all"] = max(peaks["all"], total)
        time.sleep(0.2)


def measured_run(shards: Path, out: Path, engine: str, cpus: int, level: str) -> dict[str, Any]:
    """One gate run in a child process, its memory sampled from here."""
    command = [sys.executable, __file__, "--child", str(shards), str(out), engine, str(cpus), level]
    env = {**os.environ, **RAY_ENV, "PYTHONPATH": str(REPO_ROOT)}
    peaks = {"driver": 0.0, "worker": 0.0, "worker_uss": 0.0, "all": 0.0}
    cpu: dict[int, tuple[str, float]] = {}
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    done = threading.Event()
    sampler = threading.Thread(target=_sample, args=(child.pid, peaks, cpu, done), daemon=True)
    sampler.start()
    stdout, _ = child.communicate()
    done.set()
    sampler.join()
    if child.returncode != 0:
        raise SystemExit(f"{engine} run failed with {child.returncode}")
    report = json.loads(stdout.strip().splitlines()[-1])
    cpu_seconds = {kind: round(sum(seconds for k, seconds in cpu.values() if k == kind), 1) for kind in ("driver", "workers", "other")}
    return {"report": report, "peak_mb": {k: round(v) for k, v in peaks.items()}, "cpu_seconds": cpu_seconds}


def child(shards: str, out: str, engine: str, cpus: int, level: str) -> None:
    from tdm_dagster.config.settings import TdmConfig
    from tdm_dagster.gate.distributed import gate_shards

    if engine == "ray":
        import ray

        ray.init(num_cpus=cpus, include_dashboard=False, configure_logging=False, log_to_driver=False)
    report = gate_shards(shards, TdmConfig(), out, level=level, engine=engine)
    print(json.dumps(report))


def decisions_digest(out: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted((out / "decisions").iterdir()):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--shard-records", type=int, default=10_000)
    parser.add_argument("--level", default="deep", choices=("quick", "standard", "deep"))
    parser.add_argument("--seed", type=int, default=7)
    add_data_option(parser)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_ray_gate") as temp:
        folder = Path(temp) / "shards"
        folder.mkdir()
        n = write_shards(args.n, args.shard_records, args.seed, args.data, folder)
        runs = {}
        for name, engine, cpus in (("in_process", "in_process", 1), ("ray_1_worker", "ray", 1), ("ray_2_workers", "ray", 2)):
            run = measured_run(folder, Path(temp) / name, engine, cpus, args.level)
            run["decisions_sha256"] = decisions_digest(Path(temp) / name)
            runs[name] = run
    results = {
        "n": n,
        "shards": runs["in_process"]["report"]["run"]["shards"],
        "shard_records": args.shard_records,
        "level": args.level,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "identical_decisions": len({run["decisions_sha256"] for run in runs.values()}) == 1,
        "runs": {},
    }
    for name, run in runs.items():
        seconds = run["report"]["run"]["seconds"]
        workers = 1 if name != "ray_2_workers" else 2
        gate_cpu = run["cpu_seconds"]["driver" if name == "in_process" else "workers"]
        results["runs"][name] = {
            "seconds": seconds,
            "records_per_s": round(n / seconds),
            "records_per_s_per_worker": round(n / seconds / workers),
            "cpu_seconds": run["cpu_seconds"],
            "records_per_gate_cpu_s": round(n / gate_cpu) if gate_cpu else None,
            "peak_mb": run["peak_mb"],
            "stage_seconds": run["report"]["run"].get("stage_seconds"),
            "task_cpu_seconds": run["report"]["run"].get("task_cpu_seconds"),
            "approved": run["report"]["records"]["approved"],
        }
    in_process = results["runs"]["in_process"]
    for name in ("ray_1_worker", "ray_2_workers"):
        run = results["runs"][name]
        run["per_worker_vs_in_process"] = round(run["records_per_s_per_worker"] / in_process["records_per_s"], 2)
        if run["records_per_gate_cpu_s"] and in_process["records_per_gate_cpu_s"]:
            run["per_worker_cpu_vs_in_process"] = round(run["records_per_gate_cpu_s"] / in_process["records_per_gate_cpu_s"], 2)
    results["scaling_1_to_2_workers"] = round(results["runs"]["ray_1_worker"]["seconds"] / results["runs"]["ray_2_workers"]["seconds"], 2)
    out = REPO_ROOT / "bench" / "results" / "ray_gate.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))
    print(f"\n{'run':<15}{'seconds':>9}{'rec/s':>9}{'rec/s/worker':>14}{'vs in-proc':>11}{'gate CPU s':>11}{'rec/CPU s':>10}{'other CPU s':>12}{'driver MB':>11}{'worker MB':>11}{'all MB':>9}")
    for name, run in results["runs"].items():
        peak, cpu = run["peak_mb"], run["cpu_seconds"]
        gate_cpu = cpu["driver" if name == "in_process" else "workers"]
        other_cpu = cpu["other"] + (cpu["driver"] if name != "in_process" else 0)
        print(
            f"{name:<15}{run['seconds']:>9.1f}{run['records_per_s']:>9}{run['records_per_s_per_worker']:>14}"
            f"{run.get('per_worker_vs_in_process', 1.0):>11}{gate_cpu:>11}{run['records_per_gate_cpu_s'] or 0:>10}{other_cpu:>12}"
            f"{peak['driver']:>11}{peak['worker']:>11}{peak['all']:>9}"
        )
    print(f"scaling 1 -> 2 workers: {results['scaling_1_to_2_workers']}x; identical decisions: {results['identical_decisions']}")

if __name__ == "__main__":
    main()
