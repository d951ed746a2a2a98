"""Deployment latency: put a checkpoint in the serving folder, switch, reload the
running server, verify with /health and a test completion. Measured for a tiny model
(the fixed cost of the mechanism) against a live `tdm serve` on loopback.

Then the placement alone, side by side on a checkpoint of ``--size-mb`` of weights:
hard links (what deploy does) vs a full copy (what it did before), each with its fsync,
in seconds and in disk space added.

    python bench/bench_deploy.py [--rounds 5] [--size-mb 256]

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


def placement(size_mb: int) -> dict:
    """Seconds and disk space to place a checkpoint of ``size_mb`` MB: links vs a copy."""
    import shutil
    import time

    from tdm_dagster.files.atomic import fsync_tree
    from tdm_dagster.serving.deploy import link_tree

    def used(folder: Path) -> int:
        return shutil.disk_usage(folder).used

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "checkpoint"
        source.mkdir()
        with open(source / "model.safetensors", "wb") as handle:
            for _ in range(size_mb):
                handle.write(os.urandom(2**20))
        (source / "config.json").write_text('{"model_type": "llama"}')
        fsync_tree(source)
        results = {}
        for label, place in (("hard links", link_tree), ("copy", shutil.copytree)):
            before = used(Path(tmp))
            started = time.perf_counter()
            place(source, Path(tmp) / label)
            fsync_tree(Path(tmp) / label)
            seconds = time.perf_counter() - started
            results[label] = {"seconds": round(seconds, 4), "disk_added_mb": round((used(Path(tmp)) - before) / 2**20, 1)}
            print(f"place {size_mb} MB checkpoint by {label}: {seconds:.4f} s, "
                  f"{results[label]['disk_added_mb']} MB disk added", flush=True)  # fmt: skip
    ratio = results["copy"]["seconds"] / max(results["hard links"]["seconds"], 1e-6)
    print(f"copy / hard links: x{ratio:.0f}")
    return {"size_mb": size_mb, **results, "copy_over_links": round(ratio, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size-mb", type=int, default=256)
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
    data["placement"] = placement(args.size_mb)
    print(json.dumps(data))
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "deploy.json").write_text(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
