"""The sections of config.yaml: each key has one check and one default, the config reference's
example (docs/reference/config.md) is the defaults, and the ``training:`` section is the trainer's whole config."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from tdm_dagster.config.rules import RULES
from tdm_dagster.config.settings import SECTIONS, ConfigError, TdmConfig, describe, load_config
from tdm_dagster.config.training import TrainingConfig

CONFIG_PAGE = Path(__file__).resolve().parents[3] / "docs" / "reference" / "config.md"


def test_every_key_of_every_section_has_exactly_one_check():
    for section in RULES:
        assert list(RULES[section]) == [f.name for f in fields(getattr(TdmConfig(), section))], section
    assert set(SECTIONS) == {f.name for f in fields(TdmConfig)} - {"source"}


def test_the_config_reference_example_is_the_defaults(home):
    config_section = CONFIG_PAGE.read_text(encoding="utf-8")
    example = re.search(r"```yaml\n(.*?)```", config_section, re.S).group(1)
    home.config_path.write_text(example, encoding="utf-8")
    assert "\ntraining: " in example and "\nquality:\n" in example
    shown = describe(load_config(home, environ={}))
    assert shown == {**describe(TdmConfig()), "source": str(home.config_path)}


def test_training_keys_from_the_file_reach_the_trainer_config(home):
    home.config_path.write_text(
        "training:\n  weight_decay: 0.01\n  warmup_steps: 5\n  epochs: 2\n  max_steps: null\n  seed: 3\n"
        "  device: cpu\n  lora_r: 4\n  lora_alpha: 8\n  save_every: 10\n  grad_clip: null\n"
        "  tiny_model: {hidden_size: 32}\n",
        encoding="utf-8",
    )
    training = load_config(home, environ={"TDM_TRAINING_LEARNING_RATE": "0.003"}).training
    assert isinstance(training, TrainingConfig)
    assert training == TrainingConfig(
        learning_rate=0.003, weight_decay=0.01, warmup_steps=5, epochs=2, max_steps=None, seed=3,
        device="cpu", lora_r=4, lora_alpha=8, save_every=10, grad_clip=None, tiny_model={"hidden_size": 32},
    )


@pytest.mark.parametrize(
    "line, expected",
    [
        ("weight_decay: -0.1", "training.weight_decay is -0.1; expected a number >= 0"),
        ("warmup_steps: 1.5", "training.warmup_steps is 1.5; expected an integer >= 0"),
        ("epochs: 0", "training.epochs is 0; expected a positive integer"),
        ("max_steps: 0", "training.max_steps is 0; expected a positive integer or null"),
        ("seed: -1", "training.seed is -1; expected an integer >= 0"),
        ("device: ''", "training.device is ''; expected a non-empty string"),
        ("lora_r: 0", "training.lora_r is 0; expected a positive integer"),
        ("save_every: true", "training.save_every is True; expected a positive integer or null"),
        ("grad_clip: 0", "training.grad_clip is 0; expected a positive number or null"),
        ("tiny_model: [64]", "training.tiny_model is [64]; expected a mapping of LlamaConfig fields"),
        ("learning_rat: 0.1", "unknown key training.learning_rat"),
    ],
)
def test_invalid_training_values_are_refused(home, line, expected):
    home.config_path.write_text(f"training:\n  {line}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(home, environ={})
    assert expected in str(info.value)
