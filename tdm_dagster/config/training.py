"""The ``training:`` section of config.yaml, which is also what the trainer takes.

One type for both, so each default is stated once: what config.yaml leaves out is what
a direct ``train()`` call gets. The ``checkpoint`` asset passes it on as loaded, with
``device`` replaced when the ``trainer`` resource pins one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LR_SCHEDULES = ("constant", "linear", "cosine")


@dataclass(frozen=True)
class TrainingConfig:
    model_path: str | None = None
    """A local Hugging Face causal-LM folder (e.g. a Qwen checkpoint); None: a tiny Llama
    built from ``tiny_model`` (nothing is downloaded)."""
    tokenizer_path: str | None = None
    """A local tokenizer folder; None: ``model_path``'s tokenizer, else the bundled BPE."""
    learning_rate: float = 5e-4
    batch_size: int = 8
    max_length: int = 512
    max_steps: int | None = 60
    """Stop after this many optimizer steps (cycling over epochs as needed); None: ``epochs``."""
    min_examples: int = 32
    """Training waits until the queue holds at least this many examples, and refuses fewer."""
    max_examples_per_run: int | None = None
    """A run claims at most this many queued examples: high first, then normal, then low
    (oldest first in each); the file that crosses the budget is split and the rest stays
    queued for the next run. None: the whole queue, as before (with ``max_steps`` a run
    then sees a random ``max_steps x batch_size`` of it, whatever the priority); set it
    to about ``max_steps x batch_size`` so priority decides what is trained."""
    lora: bool = False
    """Train LoRA adapters (needs ``peft``), merged into a whole model at the end."""
    eval_per_level: int = 20
    """Held-out examples per skill and level in each evaluation."""
    weight_decay: float = 0.0
    warmup_steps: int = 0
    """Steps over which the learning rate ramps up linearly."""
    lr_schedule: str = "constant"
    """After warm-up: "constant" (the learning rate stays), "linear" or "cosine" (it decays
    to 0 at the last step, as Hugging Face's ``Trainer`` does by default with "linear"):
    decay settles the weights at the end, so the last checkpoint is not wherever the
    last noisy batch pushed it."""
    epochs: int = 1
    """Passes over the claimed examples; used only when ``max_steps`` is None."""
    seed: int = 0
    """Same seed, same data, same device -> the same loss curve."""
    device: str = "auto"
    """"auto": cuda if available, else cpu; or any torch device string. The ``trainer``
    resource (``TDM_TRAINER_DEVICE``) overrides it when it names one."""
    lora_r: int = 8
    lora_alpha: int = 16
    save_every: int | None = None
    """Also write a checkpoint every this many steps; None: only at the end."""
    grad_clip: float | None = 1.0
    """Clip the gradient norm to this; None: no clipping."""
    tiny_model: dict[str, Any] = field(
        default_factory=lambda: {
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
        }
    )
    """``LlamaConfig`` fields of the tiny model; a config.yaml value replaces the whole mapping."""
