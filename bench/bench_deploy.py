"""Deployment latency: copy a checkpoint into the serving folder, switch, reload the
running server, verify with /health and a test completion. Measured for a tiny model
(the fixed cost of the mechanism) against a live `tdm serve` on loopback.

    python bench/bench_deploy.py [--rounds 5]

Writes bench/results/deploy.json.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def tiny_checkpoint(folder: Path, seed: int) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(ROOT / "tdm_dagster" / "gate" / "quality" / "default_tokenizer")
    torch.manual_seed(seed)
    config = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=2, vocab_size=len(tokenizer), max_position_embeddings=512)  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    from tdm_dagster.serving import ADMIN_TOKEN_ENV
    from tdm_dagster.serving.deploy import deploy
    from tdm_dagster.serving.server import create_app
    from tests.support.http_servers import running_server

    os.environ.setdefault(ADMIN_TOKEN_ENV, secrets.token_hex(16))  # deploy's reload sends it to the server

    latencies = []
    with tempfile.TemporaryDirectory() as tmp:
        serving = Path(tmp) / "serving"
        checkpoints = [tiny_checkpoint(Path(tmp) / f"checkpoint-{n}", n) for n in range(args.rounds + 1)]
        first = deploy(checkpoints[0], serving, score=0.0, server_url=None)
        assert first.deployed, first.reason
        with running_server(create_app(serving)) as url:
            for n, path in enumerate(checkpoints[1:], start=1):
                result = deploy(path, serving, score=float(n), server_url=url)
                assert result.deployed, result.reason
                latencies.append(result.latency_s)
                print(f"deploy {path.name}: {result.latency_s:.3f} s ({result.reason})", flush=True)
    data = {"rounds": len(latencies), "median_s": round(statistics.median(latencies), 3), "max_s": round(max(latencies), 3),
            "checkpoint": "tiny llama (2 layers, 64 hidden) + bundled tokenizer", "latencies_s": [round(x, 3) for x in latencies]}  # fmt: skip
    print(json.dumps(data))
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "deploy.json").write_text(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
