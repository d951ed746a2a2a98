"""The served model: loading a checkpoint, generating from it, and hot-swapping it when
the deployed pointer moves.

``serving_dir`` layout (written by :mod:`tdm_dagster.serving.deploy`)::

    serving_dir/
      current            one line: the name of the deployed subfolder (written atomically)
      <name>/            a Hugging Face checkpoint (config.json, weights, tokenizer files)
      deployments.json   the deployment record

Reload: every request reads the ``current`` pointer; when it names another folder than
the loaded one, the new model is loaded (and warmed up with a one-token generation)
outside any lock that requests take, then swapped in under a short lock. A request holds
a reference to the model it started with, so requests in flight finish on the old model
and none fail. If the new checkpoint fails to load, the old one keeps serving and the
error is reported in ``/health`` (``last_error``); the same broken pointer is not retried
on every request, only when the pointer file changes again or on ``POST /admin/reload``.

torch and transformers load on first use, inside the functions that need them.
"""

from __future__ import annotations

import os
import resource
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tdm_dagster.gate.quality.tokens import DEFAULT_TOKENIZER_PATH
from tdm_dagster.serving import POINTER_FILE

MAX_TOKENS_LIMIT = 512
"""The most tokens one request may ask the model to generate."""
MAX_PROMPT_TOKENS = 4096
GREEDY_BELOW_TEMPERATURE = 1e-2
"""A temperature below this decodes greedily, as 0 does: dividing logits by a tiny
temperature overflows to inf (1e-300 made the sampler fail), and the distribution it
would sample from is already all but one-hot."""


def read_pointer(serving_dir: str | os.PathLike[str]) -> tuple[str | None, int | None]:
    """The deployed subfolder name in ``serving_dir/current`` and the file's mtime_ns."""
    path = Path(serving_dir) / POINTER_FILE
    try:
        stat = path.stat()
        name = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None, None
    return (name or None), stat.st_mtime_ns


def process_memory() -> dict[str, Any]:
    """Process RSS in MB (GPU memory is in ``/health``'s ``gpus``: :mod:`tdm_dagster.http.gpu_stats`)."""
    rss_mb: float | None = None
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            pages = int(handle.read().split()[1])
        rss_mb = pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rss_mb = maxrss / (2**20 if sys.platform == "darwin" else 2**10)
    return {"rss_mb": round(rss_mb, 1)}


@dataclass(frozen=True)
class GenerationParams:
    """One completion request, as the model sees it."""

    messages: list[dict[str, str]]
    max_tokens: int
    temperature: float
    top_p: float = 1.0

    @property
    def sampling_key(self) -> tuple[Any, ...]:
        """Requests with equal keys can share one ``generate`` call: all greedy requests
        together, sampled ones only with the same temperature and top_p. ``max_tokens``
        may differ (the batch runs to the largest; each row is cut at its own)."""
        if self.temperature < GREEDY_BELOW_TEMPERATURE:
            return ("greedy",)
        return ("sample", float(self.temperature), float(self.top_p))


@dataclass
class LoadedModel:
    name: str
    path: Path
    model: Any
    tokenizer: Any
    device: str
    max_positions: int
    loaded_at: float
    eos_ids: list[int]
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def pad_id(self) -> int:
        if self.tokenizer.pad_token_id is not None:
            return int(self.tokenizer.pad_token_id)
        return self.eos_ids[0] if self.eos_ids else 0

    def generate(self, messages: list[dict[str, str]], max_tokens: int, temperature: float,
                 top_p: float = 1.0) -> dict[str, Any]:
        """One completion (a batch of one); raises ``PromptTooLong``."""
        result = self.generate_batch([GenerationParams(messages, max_tokens, temperature, top_p)])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def _prompt_ids(self, request: GenerationParams) -> list[int] | PromptTooLong:
        text = self.tokenizer.apply_chat_template(request.messages, tokenize=False, add_generation_prompt=True)
        ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        if len(ids) > MAX_PROMPT_TOKENS or len(ids) + request.max_tokens > self.max_positions:
            return PromptTooLong(len(ids), request.max_tokens, min(MAX_PROMPT_TOKENS, self.max_positions))
        return ids

    def generate_batch(self, requests: list[GenerationParams]) -> list[dict[str, Any] | Exception]:
        """Completions for requests sharing one ``sampling_key``, in one ``generate`` call.

        Prompts are left-padded to the longest (with an attention mask, so each row
        decodes as it would alone: greedy results equal the unbatched ones); the call
        runs to the largest ``max_tokens`` and each row is cut at its own limit, then
        at its first end-of-turn token. A prompt too long for the model gets its
        ``PromptTooLong`` in its slot; the others still run.
        """
        import torch

        keys = {request.sampling_key for request in requests}
        if len(keys) != 1:
            raise ValueError(f"one batch needs one sampling key, got {sorted(map(str, keys))}")
        results: list[dict[str, Any] | Exception | None] = [None] * len(requests)
        rows: list[tuple[int, list[int]]] = []
        for index, request in enumerate(requests):
            ids = self._prompt_ids(request)
            if isinstance(ids, Exception):
                results[index] = ids
            else:
                rows.append((index, ids))
        if rows:
            width = max(len(ids) for _, ids in rows)
            input_ids = torch.tensor([[self.pad_id] * (width - len(ids)) + ids for _, ids in rows], device=self.device)
            attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for _, ids in rows], device=self.device)
            first = requests[rows[0][0]]
            kwargs: dict[str, Any] = {"max_new_tokens": max(requests[i].max_tokens for i, _ in rows),
                                      "pad_token_id": self.pad_id}
            if self.eos_ids:
                kwargs["eos_token_id"] = self.eos_ids
            if first.sampling_key[0] == "sample":
                kwargs.update(do_sample=True, temperature=float(first.temperature), top_p=float(first.top_p))
            else:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            with self.lock, torch.inference_mode():
                output = self.model.generate(input_ids=input_ids, attention_mask=attention, **kwargs)
            for (index, ids), generated in zip(rows, output[:, width:].tolist(), strict=True):
                results[index] = self._completion(generated[: requests[index].max_tokens], len(ids))
        return results  # type: ignore[return-value]

    def _completion(self, new_ids: list[int], prompt_tokens: int) -> dict[str, Any]:
        stop = next((n for n, token in enumerate(new_ids) if token in self.eos_ids), None)
        finish_reason = "length"
        if stop is not None:
            new_ids = new_ids[: stop + 1]
            finish_reason = "stop"
        content_ids = new_ids[:-1] if finish_reason == "stop" else new_ids
        return {
            "content": self.tokenizer.decode(content_ids, skip_special_tokens=True),
            "finish_reason": finish_reason,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(new_ids),
        }


class PromptTooLong(ValueError):
    def __init__(self, prompt_tokens: int, max_tokens: int, limit: int) -> None:
        self.prompt_tokens, self.max_tokens, self.limit = prompt_tokens, max_tokens, limit
        super().__init__(
            f"prompt is {prompt_tokens} tokens; with max_tokens={max_tokens} it exceeds "
            f"this model's limit of {limit} tokens"
        )


def load_checkpoint(path: str | os.PathLike[str], name: str | None = None) -> LoadedModel:
    """Load a checkpoint folder and warm it up with a one-token generation.

    Raises on any problem (missing/corrupt config or weights, weights that are not all
    finite, a model that cannot generate), so a broken checkpoint never replaces a
    working one.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder}: no config.json")
    tokenizer_dir = folder if (folder / "tokenizer_config.json").is_file() else DEFAULT_TOKENIZER_PATH
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype="auto" if device == "cuda" else torch.float32)
    model.to(device)
    model.eval()
    broken = non_finite_weights(model)
    if broken:
        raise ValueError(f"{folder}: {len(broken)} weight tensor(s) hold NaN or infinite values "
                         f"(first: {broken[0]}); it would answer garbage or fail sampled requests")
    eos_ids: list[int] = []
    for token in ("<|im_end|>",):
        token_id = tokenizer.convert_tokens_to_ids(token)
        if isinstance(token_id, int) and token_id != tokenizer.unk_token_id:
            eos_ids.append(token_id)
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos_ids:
        eos_ids.append(tokenizer.eos_token_id)
    max_positions = int(getattr(model.config, "max_position_embeddings", None) or MAX_PROMPT_TOKENS + MAX_TOKENS_LIMIT)
    loaded = LoadedModel(
        name=name or folder.name,
        path=folder.resolve(),
        model=model,
        tokenizer=tokenizer,
        device=device,
        max_positions=max_positions,
        loaded_at=time.time(),
        eos_ids=eos_ids,
    )
    loaded.generate([{"role": "user", "content": "ping"}], max_tokens=1, temperature=0.0)
    return loaded


def non_finite_weights(model: Any) -> list[str]:
    """The names of ``model``'s parameters holding a NaN or an infinity (a diverged run
    saves such weights; greedy decoding still "works" on them, sampling fails)."""
    import torch

    with torch.no_grad():
        return [name for name, parameter in model.named_parameters() if not bool(torch.isfinite(parameter).all())]


class ModelManager:
    """Holds the served model; loads and swaps it when the pointer changes."""

    def __init__(self, serving_dir: str | os.PathLike[str]) -> None:
        self.serving_dir = Path(serving_dir)
        self._current: LoadedModel | None = None
        self._swap_lock = threading.Lock()  # held only for the pointer swap
        self._reload_lock = threading.Lock()  # one load at a time
        self._failed: tuple[str | None, int | None] | None = None
        self.last_error: dict[str, Any] | None = None
        self.reloads = 0

    @property
    def current(self) -> LoadedModel | None:
        with self._swap_lock:
            return self._current

    def _needs_load(self, name: str | None, mtime: int | None, force: bool) -> bool:
        if name is None:
            return False
        current = self.current
        if current is not None and current.name == name:
            return False
        return not (not force and self._failed == (name, mtime))

    def pointer_moved(self) -> bool:
        """Whether the pointer names a checkpoint to load (a file read: cheap enough for the event loop)."""
        return self._needs_load(*read_pointer(self.serving_dir), force=False)

    def maybe_reload(self, *, force: bool = False, wait: bool = False) -> dict[str, Any]:
        """Load the checkpoint the pointer names if it is not the one loaded.

        ``wait=False`` (the per-request check): if another thread is already loading,
        return at once and keep serving the current model.
        """
        name, mtime = read_pointer(self.serving_dir)
        if not self._needs_load(name, mtime, force):
            return self._result(name, changed=False)
        if not self._reload_lock.acquire(blocking=wait):
            return self._result(name, changed=False)
        try:
            name, mtime = read_pointer(self.serving_dir)  # may have moved while we waited
            if not self._needs_load(name, mtime, force):
                return self._result(name, changed=False)
            assert name is not None
            started = time.monotonic()
            try:
                if "/" in name or name in {"", ".", ".."}:
                    raise ValueError(f"pointer names an invalid folder {name!r}")
                loaded = load_checkpoint(self.serving_dir / name, name)
            except Exception as exc:  # noqa: BLE001 - any failure keeps the old model
                self._failed = (name, mtime)
                self.last_error = {
                    "checkpoint": name,
                    "error": f"{type(exc).__name__}: {exc}"[:2000],
                    "time": time.time(),
                }
                return self._result(name, changed=False)
            with self._swap_lock:
                self._current = loaded
            self._failed = None
            self.last_error = None
            self.reloads += 1
            result = self._result(name, changed=True)
            result["load_s"] = round(time.monotonic() - started, 3)
            return result
        finally:
            self._reload_lock.release()

    def _result(self, pointer: str | None, *, changed: bool) -> dict[str, Any]:
        current = self.current
        return {
            "pointer": pointer,
            "checkpoint": current.name if current else None,
            "loaded": current is not None and current.name == pointer,
            "changed": changed,
            "error": self.last_error,
        }
