"""Token counts for the length suite: certain byte-length bounds first, exact counts only
where the bounds cannot decide.

Why bounds: exact tokenization of every conversation costs as much as the whole rest of
the gate. For a byte-level BPE each token covers at least one byte and at most the bytes
of the longest vocabulary entry, so ``ceil(bytes / longest) <= tokens <= bytes``. Only
texts whose interval straddles ``min_tokens`` or ``max_tokens`` need the tokenizer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tokenizers import Tokenizer

DEFAULT_TOKENIZER_PATH = Path(__file__).resolve().parent / "default_tokenizer"
NFC_EXPANSION = 3
"""NFC changes a text's UTF-8 length by at most this factor either way (Unicode UAX #15)."""


@dataclass(frozen=True)
class ByteBounds:
    """How a tokenizer's token count relates to a text's UTF-8 byte length.

    ``supported`` is False for tokenizers these rules don't cover (WordPiece or Unigram
    models, byte-less BPE, normalizers other than NFC): their bounds are [0, inf), so
    every text gets an exact count and results stay correct, only slower.
    """

    supported: bool
    longest_token_bytes: int
    non_ascii_factor: int
    """Multiplier on the byte length of non-ASCII texts (normalizer slack)."""
    extra_tokens: int
    """Tokens a pre-tokenizer can add beyond one per byte (a prefix space)."""

    def low_high(self, byte_lengths: np.ndarray, is_ascii: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Certain [low, high] token counts for texts of the given byte lengths."""
        byte_lengths = np.asarray(byte_lengths, dtype=np.int64)
        if not self.supported:
            return np.zeros_like(byte_lengths), np.full_like(byte_lengths, np.iinfo(np.int64).max)
        factor = np.where(np.asarray(is_ascii, dtype=bool), 1, self.non_ascii_factor)
        low = -(-byte_lengths // (self.longest_token_bytes * factor))
        high = byte_lengths * factor + self.extra_tokens
        return low, high


def _byte_bounds(tokenizer: Tokenizer) -> ByteBounds:
    """Derive the bounds from the tokenizer's own definition (model, normalizer, vocab)."""
    spec = json.loads(tokenizer.to_str())
    pre = spec.get("pre_tokenizer") or {}
    pre_steps = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    byte_level = [step for step in pre_steps if step and step.get("type") == "ByteLevel"]
    normalizer = (spec.get("normalizer") or {}).get("type")
    supported = (
        spec["model"].get("type") == "BPE" and bool(byte_level) and normalizer in (None, "NFC")
    )
    # Byte-level vocab entries spell one byte per character; added tokens are plain text.
    longest = max(
        max((len(token) for token in tokenizer.get_vocab(with_added_tokens=False)), default=1),
        max((len(t["content"].encode()) for t in spec.get("added_tokens", [])), default=1),
    )
    return ByteBounds(
        supported=supported,
        longest_token_bytes=longest,
        non_ascii_factor=NFC_EXPANSION if normalizer == "NFC" else 1,
        extra_tokens=int(any(step.get("add_prefix_space") for step in byte_level)),
    )


class TokenCounter:
    """Counts tokens with the tokenizer at ``path`` (None: the bundled default), loaded on first use."""

    def __init__(self, path: str | None = None) -> None:
        self.path = str(path) if path is not None else str(DEFAULT_TOKENIZER_PATH)

    @cached_property
    def backend(self) -> Tokenizer:
        """The fast (Rust) tokenizer. The bundled default is read with ``tokenizers`` itself
        (the same ``Tokenizer`` transformers builds from it, in milliseconds); another folder
        goes through transformers' ``AutoTokenizer``, which applies its tokenizer config and
        costs seconds of imports (transformers pulls in torch)."""
        if self.path == str(DEFAULT_TOKENIZER_PATH):
            from tokenizers import Tokenizer

            return Tokenizer.from_file(str(DEFAULT_TOKENIZER_PATH / "tokenizer.json"))
        from transformers import AutoTokenizer

        try:
            loaded = AutoTokenizer.from_pretrained(self.path)
        except Exception as error:  # transformers raises OSError, ValueError, KeyError...
            raise ValueError(f"cannot load tokenizer from {self.path!r}: {error}") from error
        backend = getattr(loaded, "backend_tokenizer", None)
        if backend is None:
            raise ValueError(f"tokenizer at {self.path!r} has no fast (tokenizers) backend")
        return backend

    @cached_property
    def bounds(self) -> ByteBounds:
        return _byte_bounds(self.backend)

    def count(self, texts: Sequence[str]) -> list[int]:
        """Exact token counts, without special tokens, batch-encoded in Rust threads."""
        if not texts:
            return []
        encodings = self.backend.encode_batch_fast(list(texts), add_special_tokens=False)
        return [len(encoding.ids) for encoding in encodings]

    def byte_bounds(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Certain [low, high] token counts of ``texts`` from their UTF-8 lengths alone."""
        byte_lengths = np.fromiter(
            (len(t) if t.isascii() else len(t.encode()) for t in texts), np.int64, len(texts)
        )
        is_ascii = np.fromiter((t.isascii() for t in texts), bool, len(texts))
        return self.bounds.low_high(byte_lengths, is_ascii)


def needs_exact_count(low: np.ndarray, high: np.ndarray, min_tokens: int, max_tokens: int) -> np.ndarray:
    """Texts whose bounds straddle a limit: the only ones worth tokenizing."""
    return ((low < min_tokens) & (high >= min_tokens)) | ((low <= max_tokens) & (high > max_tokens))


__all__ = ["ByteBounds", "DEFAULT_TOKENIZER_PATH", "TokenCounter", "needs_exact_count"]
