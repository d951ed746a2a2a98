"""What the serving tests share: tiny random-weight Llama checkpoints, the admin token,
a chat request and the ``tdm`` command line."""

from __future__ import annotations

from pathlib import Path

import httpx

from tdm_dagster.gate.quality.tokens import DEFAULT_TOKENIZER_PATH

ADMIN_TOKEN = "test-admin-token-5b1e0c"


def make_checkpoint(folder: Path, seed: int) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(str(DEFAULT_TOKENIZER_PATH))
    torch.manual_seed(seed)
    config = LlamaConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
        intermediate_size=64, vocab_size=len(tokenizer), max_position_embeddings=1024,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def admin_auth(token: str = ADMIN_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def chat(base_url: str, content: str = "hi", **extra) -> httpx.Response:
    body = {"model": "any", "messages": [{"role": "user", "content": content}], "max_tokens": 4,
            "temperature": 0, **extra}
    return httpx.post(base_url + "/v1/chat/completions", json=body, timeout=30)


def cli(*args: str) -> tuple[int, str]:
    """``tdm ARGS`` in this process: exit code and output (stdout alone for ``--json``:
    Dagster warns on stderr)."""
    from click.testing import CliRunner

    from tdm_dagster.cli import main

    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout if "--json" in args else result.output
