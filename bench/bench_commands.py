"""Benchmark: the fixed cost of the commands people type, against Dagster's own floor.

    python bench/bench_commands.py [--repeats 3] [--before DIR] [--skip generate]

Each figure is the median of ``--repeats`` runs, each a fresh process, measured side by
side (alternating) so that a busy machine slows both sides alike; wall seconds, and the
CPU seconds the processes used (user + sys), which a shared machine disturbs less.

- import: ``import tdm_dagster.definitions`` against ``import dagster`` (seconds inside
  the process), goal ratio <= 1.3;
- generate: ``tdm generate --count 10 --force`` (fresh ``TDM_HOME``, built-in source)
  against ``dagster asset materialize`` of a one-asset location, goal ratio <= 1.5;
- stats: ``tdm stats`` on a home of 1,000 tested batches (copies of a real one), goal <= 2 s;
- validate: ``tdm validate`` of 10 records through a warm ``tdm api`` it finds by itself
  (``api/running.json``), goal <= 1 s; and what finding it costs (no service, a stale
  file, a live one).

``--before DIR`` runs every command also with ``PYTHONPATH=DIR`` (an older checkout, e.g.
``git worktree add DIR main``), so one run prints before and after; the older CLI finds
no service by itself, so its validate is given ``TDM_API_URL`` and ``TDM_API_KEY``.
Writes bench/results/commands.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tdm_dagster.progress import terminal_progress  # noqa: E402

BIN = Path(sys.executable).parent
TDM = [sys.executable, "-c", "from tdm_dagster.cli import main; main()"]
TRIVIAL_LOCATION = "import dagster as dg\n\n\n@dg.asset\ndef trivial() -> int:\n    return 1\n\n\ndefs = dg.Definitions(assets=[trivial])\n"
GOALS = {"import": 1.3, "generate": 1.5, "stats_s": 2.0, "validate_s": 1.0}


def _env(tree: Path, **extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith(("TDM_", "DAGSTER_HOME"))}
    return {**env, "PYTHONPATH": str(tree), **extra}


NEUTRAL_DIR = Path(tempfile.gettempdir())
"""Where the commands run: ``python -c`` puts its working directory first on ``sys.path``,
so run from a checkout it would import that checkout whatever ``PYTHONPATH`` says."""


def timed(command: list[str], env: dict[str, str], cwd: Path = NEUTRAL_DIR) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall and CPU seconds of one run of ``command`` (which must succeed)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    completed = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command[:4])} failed ({completed.returncode}):\n{completed.stderr[-3000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), completed


def medians(samples: list[tuple[float, float]]) -> dict[str, float]:
    return {"wall_s": round(statistics.median(s[0] for s in samples), 3), "cpu_s": round(statistics.median(s[1] for s in samples), 3)}


def side_by_side(runs: dict[str, Callable[[], tuple[float, float]]], repeats: int, label: str) -> dict[str, dict[str, float]]:
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    with terminal_progress(label, repeats * len(runs), unit="runs") as advance:
        for _ in range(repeats):
            for name, run in runs.items():
                samples[name].append(run())
                advance(1)
    return {name: medians(found) for name, found in samples.items()}


def import_seconds(tree: Path, module: str, home: Path) -> tuple[float, float]:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    _, cpu, completed = timed([sys.executable, "-c", code], _env(tree, TDM_HOME=str(home)))
    return float(completed.stdout), cpu


def bench_import(trees: dict[str, Path], repeats: int, scratch: Path) -> dict[str, Any]:
    home = scratch / "import-home"
    home.mkdir()
    runs = {"dagster": lambda: import_seconds(next(iter(trees.values())), "dagster", home)}
    runs.update({f"definitions_{name}": (lambda tree=tree: import_seconds(tree, "tdm_dagster.definitions", home)) for name, tree in trees.items()})
    found = side_by_side(runs, repeats, "import")
    return {**found, **{f"ratio_{name}": round(found[f"definitions_{name}"]["wall_s"] / found["dagster"]["wall_s"], 2) for name in trees}}


def bench_generate(trees: dict[str, Path], repeats: int, scratch: Path) -> dict[str, Any]:
    floor = scratch / "floor"
    floor.mkdir()
    (floor / "trivial.py").write_text(TRIVIAL_LOCATION)

    def materialize() -> tuple[float, float]:
        wall, cpu, _ = timed([str(BIN / "dagster"), "asset", "materialize", "-f", "trivial.py", "--select", "trivial"], _env(REPO_ROOT), cwd=floor)
        return wall, cpu

    def generate(tree: Path) -> tuple[float, float]:
        home = Path(tempfile.mkdtemp(dir=scratch, prefix="generate-"))
        wall, cpu, completed = timed([*TDM, "generate", "--count", "10", "--force", "--json"], _env(tree, TDM_HOME=str(home)))
        assert json.loads(completed.stdout)["generated"] == 10, completed.stdout
        return wall, cpu

    runs = {"dagster_floor": materialize, **{f"generate_{name}": (lambda tree=tree: generate(tree)) for name, tree in trees.items()}}
    found = side_by_side(runs, repeats, "generate")
    return {**found, **{f"ratio_{name}": round(found[f"generate_{name}"]["wall_s"] / found["dagster_floor"]["wall_s"], 2) for name in trees}}


def thousand_batch_home(scratch: Path, tree: Path) -> Path:
    """1,000 copies of one real tested batch (made by ``tdm generate``)."""
    from tests.support.startup import home_with_batches

    template = scratch / "template-home"
    timed([*TDM, "generate", "--count", "10", "--force", "--json"], _env(tree, TDM_HOME=str(template)))
    batch = next((template / "batches").iterdir())
    report = json.loads((template / "reports" / f"{batch.name}.json").read_text())
    plan = json.loads((batch / "batch.json").read_text())
    return home_with_batches(scratch / "stats-home", 1000, report, plan)


def bench_stats(trees: dict[str, Path], repeats: int, scratch: Path) -> dict[str, Any]:
    home = thousand_batch_home(scratch, next(iter(trees.values())))

    def stats(tree: Path) -> tuple[float, float]:
        wall, cpu, completed = timed([*TDM, "stats", "--json"], _env(tree, TDM_HOME=str(home)))
        assert json.loads(completed.stdout)["batches"] == 1000
        return wall, cpu

    return side_by_side({f"stats_{name}": (lambda tree=tree: stats(tree)) for name, tree in trees.items()}, repeats, "stats")


def bench_validate(trees: dict[str, Path], repeats: int, scratch: Path) -> dict[str, Any]:
    from tdm_dagster.api.keys import KeyStore
    from tdm_dagster.files.atomic import atomic_write_jsonl
    from tdm_dagster.generate.generators import get_generator
    from tdm_dagster.home import TdmHome
    from tests.support.dagster_processes import dagster_process, free_port

    home = TdmHome(scratch / "api-home").ensure()
    _, key = KeyStore(home).create("bench", ["read"])
    records = scratch / "ten.jsonl"
    atomic_write_jsonl(records, get_generator("syllo").generate(1, 10, 7))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    after = next(iter(trees.values()))
    env = _env(after, TDM_HOME=str(home.root))
    with dagster_process([*TDM, "api", "--port", str(port)], env=env, log=scratch / "api.log", ready_url=url, ready_path="/readyz", timeout=600):
        def validate(tree: Path, **service: str) -> tuple[float, float]:
            wall, cpu, completed = timed([*TDM, "validate", str(records), "--json"], _env(tree, TDM_HOME=str(home.root), **service))
            assert "in-process" not in completed.stderr and json.loads(completed.stdout)["totals"]["records"] == 10
            return wall, cpu

        runs = {f"validate_{name}": (lambda tree=tree, name=name: validate(tree, **({} if name == "after" else {"TDM_API_URL": url, "TDM_API_KEY": key})))
                for name, tree in trees.items()}  # fmt: skip
        found = side_by_side(runs, repeats, "validate")
        found["probe_ms"] = probe_costs(home, repeats)
    return found


def probe_costs(home: Any, repeats: int) -> dict[str, float]:
    """Milliseconds :func:`find_local_service` takes: the service running, a stale file, none."""
    from tdm_dagster.api.local import find_local_service
    from tdm_dagster.config.settings import load_config

    config = load_config(home)

    def median_ms(setup: Callable[[], None]) -> float:
        times = []
        for _ in range(max(repeats, 5)):
            setup()
            started = time.perf_counter()
            find_local_service(home, config)
            times.append((time.perf_counter() - started) * 1000)
        return round(statistics.median(times), 2)

    live = median_ms(lambda: None)
    running = home.api_running_file.read_text()
    stale = json.loads(running) | {"pid": 2**22 + 1}
    stale_ms = median_ms(lambda: home.api_running_file.write_text(json.dumps(stale)))
    none_ms = median_ms(lambda: home.api_running_file.unlink(missing_ok=True))
    home.api_running_file.write_text(running)
    return {"live_service": live, "stale_file": stale_ms, "no_service": none_ms}


BENCHES = {"import": bench_import, "generate": bench_generate, "stats": bench_stats, "validate": bench_validate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before", type=Path, help="An older checkout to measure beside this one.")
    parser.add_argument("--skip", nargs="*", default=[], choices=sorted(BENCHES))
    args = parser.parse_args()
    trees = {"after": REPO_ROOT, **({"before": args.before.resolve()} if args.before else {})}
    results: dict[str, Any] = {"repeats": args.repeats, "trees": {name: str(tree) for name, tree in trees.items()}, "goals": GOALS}
    scratch = Path(tempfile.mkdtemp(prefix="bench-commands-"))
    try:
        for name, bench in BENCHES.items():
            if name not in args.skip:
                results[name] = bench(trees, args.repeats, scratch)
                print(json.dumps({name: results[name]}, indent=2), flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    out = REPO_ROOT / "bench" / "results" / "commands.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
