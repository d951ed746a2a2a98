"""Serving throughput with dynamic batching: 16 concurrent clients vs one request at a
time, against a real `tdm serve` process on loopback serving the tiny model the
trainer builds from config (training.tiny_model: 2 layers, 64 hidden, random weights).

    python bench/bench_serving_batching.py [--clients 16] [--requests 64] [--max-tokens 48]

Both runs send the same requests (distinct prompts, greedy decoding, the same
max_tokens), to the same server, one after the other: first one at a time (a single
client waiting for each answer), then from ``--clients`` concurrent clients. Tokens/s
counts the completion tokens the server reports. Writes bench/results/serving_batching.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def tiny_checkpoint(folder: Path) -> Path:
    from transformers import AutoTokenizer

    from tdm_dagster.config.training import TrainingConfig
    from tdm_dagster.gate.quality.tokens import DEFAULT_TOKENIZER_PATH
    from tdm_dagster.training.trainer import build_model

    tokenizer = AutoTokenizer.from_pretrained(str(DEFAULT_TOKENIZER_PATH))
    build_model(TrainingConfig(), tokenizer).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


async def _run(url: str, bodies: list[dict], clients: int) -> dict:
    import httpx

    queue: asyncio.Queue[dict] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    latencies: list[float] = []
    tokens = 0

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal tokens
        while not queue.empty():
            body = queue.get_nowait()
            started = time.perf_counter()
            response = await http.post(url + "/v1/chat/completions", json=body)
            response.raise_for_status()
            latencies.append(time.perf_counter() - started)
            tokens += response.json()["usage"]["completion_tokens"]

    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=clients)) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        wall = time.perf_counter() - started
    return {"clients": clients, "requests": len(bodies), "completion_tokens": tokens, "wall_s": round(wall, 2),
            "tokens_per_s": round(tokens / wall, 1), "p50_latency_s": round(statistics.median(latencies), 3),
            "max_latency_s": round(max(latencies), 3)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=48)
    args = parser.parse_args()
    import httpx

    from tdm_dagster.serving.deploy import deploy
    from tests.support.tdm_serve import tdm_serve

    bodies = [{"messages": [{"role": "user", "content": f"Question {n}: what follows {n * 7}?"}],
               "max_tokens": args.max_tokens, "temperature": 0} for n in range(args.requests)]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        result = deploy(tiny_checkpoint(folder / "tiny"), folder / "serving", score=None, server_url=None)
        assert result.deployed, result.reason
        with tdm_serve(folder / "serving", folder) as url:
            asyncio.run(_run(url, bodies[:4], 1))  # warm up
            alone = asyncio.run(_run(url, bodies, 1))
            together = asyncio.run(_run(url, bodies, args.clients))
            batches = httpx.get(url + "/health").json()["batches"]
    ratio = together["tokens_per_s"] / alone["tokens_per_s"]
    data = {"model": "tiny llama from training.tiny_model (2 layers, 64 hidden), CPU", "max_tokens": args.max_tokens,
            "one_at_a_time": alone, "concurrent": together, "ratio": round(ratio, 2), "server_batches": batches}  # fmt: skip
    print(f"{'run':<16}{'clients':>8}{'requests':>9}{'tokens':>8}{'wall_s':>8}{'tok/s':>9}{'p50_s':>8}{'max_s':>8}")
    for label, run in (("one at a time", alone), ("concurrent", together)):
        print(f"{label:<16}{run['clients']:>8}{run['requests']:>9}{run['completion_tokens']:>8}{run['wall_s']:>8}"
              f"{run['tokens_per_s']:>9}{run['p50_latency_s']:>8}{run['max_latency_s']:>8}")  # fmt: skip
    print(f"throughput ratio (concurrent / one at a time): x{ratio:.2f}; server batches: {batches}")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "serving_batching.json").write_text(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
