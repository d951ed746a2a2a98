"""The bundled tokenizer loads with ``tokenizers`` alone (milliseconds), and is the very
tokenizer transformers' ``AutoTokenizer`` builds from the same folder (seconds of imports,
torch among them), so every count and bound is unchanged."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tdm_dagster.gate.quality.tokens import DEFAULT_TOKENIZER_PATH, TokenCounter
from tests.support.fixture_data import GSM8K, ROLEPLAY

REPO = Path(__file__).resolve().parents[3]


def test_the_default_counter_imports_neither_transformers_nor_torch() -> None:
    code = (
        "import sys\nfrom tdm_dagster.gate.quality.tokens import TokenCounter\n"
        "print(TokenCounter().count(['hello there, how are you?'])[0], [m for m in ('transformers', 'torch') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO, timeout=120)
    count, loaded = out.stdout.split(" ", 1)
    assert int(count) > 3 and loaded.strip() == "[]"


def test_the_default_counter_is_the_tokenizer_transformers_builds() -> None:
    from transformers import AutoTokenizer

    reference = AutoTokenizer.from_pretrained(str(DEFAULT_TOKENIZER_PATH)).backend_tokenizer
    counter = TokenCounter()
    assert counter.backend.to_str() == reference.to_str()
    texts = [f"{row['instruction']}\n{row['output']}" for path in (GSM8K, ROLEPLAY) for row in json.loads(path.read_text())]
    texts += ["<|im_start|>user\nhi<|im_end|>", "日本語のテキスト", "é" * 40, " leading space"]
    assert counter.count(texts) == [len(e.ids) for e in reference.encode_batch_fast(texts, add_special_tokens=False)]
