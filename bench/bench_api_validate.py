"""Benchmark: ``tdm validate`` cold (a new process each time) vs the warm ``tdm api`` service.

    python bench/bench_api_validate.py [--sizes 10 100000] [--repeats 3] [--level standard]

Starts ``tdm api`` as users do (its own process, a fresh ``TDM_HOME``, a read key) and
waits until ``/readyz`` says the gate is warm. Then, for each file size (built-in
generator chats, every skill and level mixed), side by side:

- cold CLI: ``tdm validate FILE --json`` as a subprocess (imports and warms GX, the
  tokenizer and the language detector every time), what every call cost before;
- CLI via the service: the same command with ``TDM_API_URL``/``TDM_API_KEY`` set (a new
  Python process that uploads the file; the service's gate is warm);
- service: ``POST /v1/validate`` from a warm HTTP client (what a tool that keeps a
  connection, or a CI step with curl, waits for).

Every way gives the same report (checked). Median wall seconds of ``--repeats`` runs.
Goal: a 10-record file through the service in <= 1 s and >= 10x faster than the cold CLI.
Writes bench/results/api_validate.json.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402

from bench_gate import build_examples  # noqa: E402
from tdm_dagster.files.atomic import atomic_write_jsonl  # noqa: E402

TDM = str(Path(sys.executable).parent / "tdm")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def median_seconds(action, repeats: int) -> tuple[float, Any]:  # noqa: ANN001
    times, value = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        value = action()
        times.append(time.perf_counter() - started)
    return statistics.median(times), value


def cli_report(path: Path, level: str, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run([TDM, "validate", str(path), "--level", level, "--json"], env=env, capture_output=True, text=True)
    if done.returncode not in (0, 1) or "in-process" in done.stderr:
        raise RuntimeError(f"tdm validate exited {done.returncode}: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--level", default="standard", choices=("quick", "standard", "deep"))
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-api-"))
    env = {key: value for key, value in os.environ.items() if not key.startswith("TDM_")}
    env.update(TDM_HOME=str(work / "home"), PYTHONPATH=str(REPO_ROOT))
    made = subprocess.run([TDM, "api", "keys", "create", "--scope", "read", "--name", "bench", "--json"],
                          env=env, capture_output=True, text=True, check=True)  # fmt: skip
    key = json.loads(made.stdout)["key"]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    service = subprocess.Popen([TDM, "api", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = []
    try:
        while True:
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if service.poll() is not None or time.perf_counter() - started > 300:
                raise RuntimeError("tdm api did not become ready")
            time.sleep(0.2)
        ready_s = time.perf_counter() - started
        print(f"tdm api ready (gate warm) after {ready_s:.1f} s", flush=True)
        via_service = {**env, "TDM_API_URL": url, "TDM_API_KEY": key}
        with httpx.Client(timeout=None, headers={"Authorization": f"Bearer {key}"}) as client:
            for size in args.sizes:
                path = work / f"records_{size}.jsonl"
                atomic_write_jsonl(path, build_examples(size, 7))

                def post() -> dict[str, Any]:
                    with open(path, "rb") as handle:
                        answer = client.post(url + "/v1/validate", files={"file": (str(path), handle)}, data={"level": args.level})
                    answer.raise_for_status()
                    return answer.json()

                cold_s, cold = median_seconds(lambda: cli_report(path, args.level, env), args.repeats)
                cli_s, through = median_seconds(lambda: cli_report(path, args.level, via_service), args.repeats)
                http_s, served = median_seconds(post, args.repeats)
                if not cold == through == served:
                    raise RuntimeError(f"{size} records: the reports differ")
                rows.append({"records": size, "bytes": path.stat().st_size, "cold_cli_s": round(cold_s, 3),
                             "cli_via_service_s": round(cli_s, 3), "service_s": round(http_s, 3),
                             "cold_over_service": round(cold_s / http_s, 1), "cold_over_cli_via_service": round(cold_s / cli_s, 1),
                             "verdict": served["recommendation"]})  # fmt: skip
                print(json.dumps(rows[-1]), flush=True)
    finally:
        service.terminate()
        service.wait(timeout=30)
    print(f"\nlevel {args.level}, median of {args.repeats}; service ready (gate warm) after {ready_s:.1f} s")
    print(f"{'records':>8} {'cold CLI s':>11} {'CLI->api s':>11} {'api s':>8} {'cold/api':>9} {'cold/CLI->api':>14}")
    for row in rows:
        print(f"{row['records']:>8} {row['cold_cli_s']:>11.3f} {row['cli_via_service_s']:>11.3f} {row['service_s']:>8.3f} "
              f"{row['cold_over_service']:>9.1f} {row['cold_over_cli_via_service']:>14.1f}")  # fmt: skip
    out = REPO_ROOT / "bench" / "results" / "api_validate.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"level": args.level, "repeats": args.repeats, "ready_s": round(ready_s, 2), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
