"""Train the bundled default tokenizer from the public data in ``../shared/data``.

Why: the length suite must count tokens without downloading anything, so the package
ships a small byte-level BPE (8k vocab, ChatML special tokens). Byte-level BPE never
maps a byte to more than one token and never produces an unknown token, which is what
makes the byte-length token bounds in ``tdm_dagster.gate.quality.tokens`` certain.

Reproducible: the corpus is read in a fixed order and the trainer is single-pass
deterministic, so rerunning gives the same ``tokenizer.json``::

    python scripts/train_default_tokenizer.py [--data ../shared/data] [--out tdm_dagster/gate/quality/default_tokenizer]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data"
DEFAULT_OUT = REPO_ROOT / "tdm_dagster" / "gate" / "quality" / "default_tokenizer"
VOCAB_SIZE = 8192
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def iter_texts(data_dir: Path) -> Iterator[str]:
    """Every instruction, input and output string of the three public sets, in file order."""
    for name in ("gsm8k_train.alpaca.json", "gpteacher_roleplay.alpaca.json"):
        for row in json.loads((data_dir / name).read_text(encoding="utf-8")):
            yield from (row[key] for key in ("instruction", "input", "output") if row[key])
    with (data_dir / "alpaca_seed_tasks.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            task = json.loads(line)
            yield task["instruction"]
            for instance in task["instances"]:
                yield from (instance[key] for key in ("input", "output") if instance[key])


def train(data_dir: Path, out_dir: Path) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(iter_texts(data_dir), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=None,
        eos_token="<|im_end|>",
        unk_token=None,
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
        model_max_length=32768,
    )
    fast.chat_template = CHATML_TEMPLATE
    out_dir.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(out_dir))
    return out_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    out = train(args.data, args.out)
    size = sum(path.stat().st_size for path in out.iterdir())
    print(f"wrote {out} ({size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
