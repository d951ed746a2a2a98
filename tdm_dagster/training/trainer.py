"""The training loop: a causal LM on chat examples, loss on assistant tokens only.

``train(examples, TrainingConfig(...), output_dir)`` (the ``training:`` section of
config.yaml) tokenizes (``data.tokenize_examples``), batches by length
(``data.length_grouped_batches``: each batch padded only to its own longest example),
runs AdamW for ``max_steps`` (or ``epochs``), and writes one atomic checkpoint at the
end (plus every ``save_every`` steps if set). ``model_path=None`` builds a tiny Llama
from a config (no download); ``tokenizer_path=None`` uses the bundled BPE tokenizer.
Same seed, same data, same device -> the same loss curve.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tdm_dagster.config.training import LR_SCHEDULES, TrainingConfig
from tdm_dagster.training.data import collate, length_grouped_batches, tokenize_examples
from tdm_dagster.training.loss import assistant_loss, takes_logit_mask

if TYPE_CHECKING:
    from tdm_dagster.config.sections import ProfileConfig

ProgressFn = Callable[[int, int, float], None]
"""Called as ``progress(step, total_steps, loss)`` after every optimizer step."""


class TrainingError(RuntimeError):
    """The trainer cannot start or continue (bad config, missing package...)."""


class NotEnoughExamplesError(TrainingError, ValueError):
    """Fewer usable examples than ``TrainingConfig.min_examples``."""


@dataclass
class TrainResult:
    steps: int
    loss_curve: list[float]
    real_tokens: int
    """Non-padding tokens fed to the model."""
    tokens_per_s: float
    """``real_tokens`` / seconds of the training loop (padding never counts)."""
    seconds: float
    device: str
    checkpoint_path: str | None
    examples: int = 0
    truncated: int = 0
    dropped: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def load_tokenizer(config: TrainingConfig) -> Any:
    from transformers import AutoTokenizer

    from tdm_dagster.gate.quality.tokens import DEFAULT_TOKENIZER_PATH

    path = config.tokenizer_path or config.model_path or str(DEFAULT_TOKENIZER_PATH)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def build_model(config: TrainingConfig, tokenizer: Any) -> Any:
    """The model to train: ``model_path`` loaded, or a tiny Llama from config (seeded)."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(config.seed)
    if config.model_path:
        model = AutoModelForCausalLM.from_pretrained(config.model_path)
    else:
        model_config = LlamaConfig(
            vocab_size=len(tokenizer),
            max_position_embeddings=max(config.max_length, 64),
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.convert_tokens_to_ids("<|im_start|>"),
            eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
            tie_word_embeddings=True,
            **config.tiny_model,
        )
        model = LlamaForCausalLM(model_config)
    if config.lora:
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError:
            raise TrainingError("lora=True needs the 'peft' package: pip install peft (or set lora=False)") from None
        model = get_peft_model(
            model, LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, task_type="CAUSAL_LM")
        )
    return model


def learning_rate_schedule(config: TrainingConfig, total_steps: int) -> Callable[[int], float]:
    """The learning rate of each step (from 0): a linear warm-up over ``warmup_steps``, then
    ``lr_schedule`` (constant, or a linear or cosine decay reaching 0 after the last step)."""
    peak, warmup = config.learning_rate, max(0, config.warmup_steps)
    if config.lr_schedule not in LR_SCHEDULES:
        raise TrainingError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, not {config.lr_schedule!r}")

    def lr_at(step: int) -> float:
        if step < warmup:
            return peak * (step + 1) / warmup
        if config.lr_schedule == "constant":
            return peak
        progress = (step - warmup + 1) / max(1, total_steps - warmup + 1)
        decay = 1.0 - progress if config.lr_schedule == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))
        return peak * decay

    return lr_at


def _set_seeds(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def train(
    examples: Sequence[dict[str, Any]],
    config: TrainingConfig,
    output_dir: str | os.PathLike[str],
    progress: ProgressFn | None = None,
    sources: dict[str, Any] | None = None,
) -> TrainResult:
    """Train on chat ``examples``; write ``<output_dir>/checkpoints/checkpoint-<steps>``.

    ``sources`` (queue file names, dataset version...) goes into the checkpoint's
    ``tdm_checkpoint.json``. Raises ``NotEnoughExamplesError`` before loading anything
    heavy when fewer than ``config.min_examples`` examples are given, and again if fewer
    remain usable after tokenization.
    """
    if len(examples) < max(1, config.min_examples):
        raise NotEnoughExamplesError(
            f"refusing to train on {len(examples)} example(s): min_examples is {config.min_examples}"
        )
    if config.max_steps is None and config.epochs < 1:
        raise TrainingError("set max_steps or epochs >= 1")

    import torch

    from tdm_dagster.training.checkpoints import save_checkpoint

    _set_seeds(config.seed)
    device = resolve_device(config.device)
    tokenizer = load_tokenizer(config)
    data = tokenize_examples(examples, tokenizer, config.max_length)
    usable = data.examples
    if len(usable) < max(1, config.min_examples):
        raise NotEnoughExamplesError(
            f"only {len(usable)} of {len(examples)} example(s) have assistant tokens within "
            f"max_length={config.max_length}: min_examples is {config.min_examples}"
        )
    model = build_model(config, tokenizer).to(device)
    model.train()
    masked_logits = takes_logit_mask(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    lengths = [len(example) for example in usable]
    batches_per_epoch = math.ceil(len(usable) / config.batch_size)
    total_steps = config.max_steps if config.max_steps is not None else batches_per_epoch * config.epochs
    lr_at = learning_rate_schedule(config, total_steps)

    pad_id = tokenizer.pad_token_id
    loss_curve: list[float] = []
    real_tokens = 0
    step = 0
    epoch = 0
    checkpoint_path: str | None = None
    train_seconds = 0.0
    base_sources = dict(sources or {})
    started = time.perf_counter()

    def checkpoint(at_step: int) -> str:
        metrics = {
            "loss": loss_curve[-1] if loss_curve else None,
            "loss_first": loss_curve[0] if loss_curve else None,
            "real_tokens": real_tokens,
            "examples": len(usable),
        }
        extra = {"train_config": asdict(config), "device": device}
        info = save_checkpoint(output_dir, at_step, model, tokenizer, metrics, base_sources, extra)
        return str(info.path)

    while step < total_steps:
        for index_batch in length_grouped_batches(lengths, config.batch_size, config.seed, epoch):
            if step >= total_steps:
                break
            t0 = time.perf_counter()
            batch = {k: v.to(device) for k, v in collate([usable[i] for i in index_batch], pad_id).items()}
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step)
            loss = assistant_loss(model, batch, masked_logits)
            loss.backward()
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            value = float(loss.detach().item())  # syncs the device, so the timing is honest
            train_seconds += time.perf_counter() - t0
            if not math.isfinite(value):
                raise TrainingError(f"loss is {value} at step {step + 1}; lower learning_rate")
            loss_curve.append(value)
            real_tokens += int(batch["attention_mask"].sum().item())
            step += 1
            if progress is not None:
                progress(step, total_steps, value)
            if config.save_every and step % config.save_every == 0 and step < total_steps:
                checkpoint_path = checkpoint(step)
        epoch += 1
    if config.lora:  # the final checkpoint is a whole model, so serving needs no base weights
        model = model.merge_and_unload()
    checkpoint_path = checkpoint(step)
    seconds = time.perf_counter() - started
    return TrainResult(
        steps=step,
        loss_curve=loss_curve,
        real_tokens=real_tokens,
        tokens_per_s=real_tokens / train_seconds if train_seconds > 0 else 0.0,
        seconds=seconds,
        device=device,
        checkpoint_path=checkpoint_path,
        examples=len(usable),
        truncated=data.truncated,
        dropped=data.dropped,
    )


def output_dir_for(root: str | os.PathLike[str], run_id: str) -> Path:
    return Path(root) / run_id


def train_from_queue(
    home: Any,
    config: TrainingConfig,
    output_dir: str | os.PathLike[str],
    max_files: int | None = None,
    progress: ProgressFn | None = None,
    profile: ProfileConfig | None = None,
) -> tuple[TrainResult, Path] | None:
    """Claim queue files, train on them, archive them under the checkpoint's name.

    The lineage of what was claimed (``lineage.capture``: batches, their sources and
    reports, record lines) goes into every checkpoint's ``sources`` and the archive manifest,
    with the data ``profile`` the examples went through first (``training.profiles``), if any.

    Claims at most ``config.max_examples_per_run`` examples, by priority; what is over
    the budget stays queued. Returns (result, archive folder), or None when the queue is
    empty. On any failure (including too few examples) the claimed files go back to the
    queue.
    """
    from tdm_dagster.home import TdmHome
    from tdm_dagster.lineage.capture import lineage_of_claim
    from tdm_dagster.queue import claims as queue_claims
    from tdm_dagster.training.profiles import apply_profile

    budget = config.max_examples_per_run
    if budget is not None and budget < config.min_examples:
        raise TrainingError(
            f"training.max_examples_per_run is {budget}, below training.min_examples "
            f"({config.min_examples}): every run would be refused; raise it or lower min_examples"
        )
    claimed = queue_claims.claim(home, max_files=max_files, max_examples=budget)
    if claimed is None:
        return None
    try:
        files = [(f.priority, f.name, f.path) for f in claimed.files]
        lineage = lineage_of_claim(TdmHome.of(home), Path(output_dir).name, claimed.claim_id, files)  # in the checkpoint: it travels with it
        examples = claimed.examples()
        if profile is not None and profile.name:
            examples, lineage["profile"] = apply_profile(examples, profile.name, profile.options)
        sources = {"queue_files": claimed.source_names, "claim_id": claimed.claim_id, "lineage": lineage}
        result = train(examples, config, output_dir, progress=progress, sources=sources)
    except BaseException:
        queue_claims.release(claimed)
        raise
    name = Path(result.checkpoint_path).name if result.checkpoint_path else f"run-{claimed.claim_id}"
    dest = queue_claims.archive(
        claimed, f"{Path(output_dir).name}__{name}", extra={"checkpoint_path": result.checkpoint_path, "lineage": lineage}
    )
    return result, dest
