"""The training config the trainer tests mean, stated once.

Not config.yaml's defaults: a learning rate high enough that the tiny model's loss drops
clearly within a few dozen CPU steps, any number of examples accepted, and one epoch
unless a test sets ``max_steps``.
"""

from __future__ import annotations

from typing import Any

from tdm_dagster.config.training import TrainingConfig


def fast_training_config(**overrides: Any) -> TrainingConfig:
    return TrainingConfig(**{"learning_rate": 3e-3, "max_steps": None, "min_examples": 1, **overrides})
