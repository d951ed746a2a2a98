"""The learning-rate schedule: warm-up, then constant or a decay that ends near 0."""

from __future__ import annotations

import math

import pytest

from tdm_dagster.config.training import TrainingConfig
from tdm_dagster.training.trainer import TrainingError, learning_rate_schedule


def _rates(schedule: str, steps: int = 10, warmup: int = 2) -> list[float]:
    lr_at = learning_rate_schedule(TrainingConfig(learning_rate=1.0, warmup_steps=warmup, lr_schedule=schedule), steps)
    return [lr_at(step) for step in range(steps)]


@pytest.mark.parametrize("schedule", ["constant", "linear", "cosine"])
def test_warm_up_ramps_to_the_peak_whatever_follows(schedule):
    rates = _rates(schedule)
    assert rates[:2] == [0.5, 1.0]


def test_constant_keeps_the_peak():
    assert _rates("constant")[2:] == [1.0] * 8


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_decay_falls_every_step_and_ends_near_zero(schedule):
    after_warmup = _rates(schedule)[2:]
    assert all(later < earlier for earlier, later in zip(after_warmup, after_warmup[1:]))
    assert 0 < after_warmup[-1] <= 0.12
    assert after_warmup[0] > 0.85


def test_linear_and_cosine_are_those_curves():
    linear, cosine = _rates("linear", warmup=0), _rates("cosine", warmup=0)
    assert linear == pytest.approx([1 - (step + 1) / 11 for step in range(10)])
    assert cosine == pytest.approx([0.5 * (1 + math.cos(math.pi * (step + 1) / 11)) for step in range(10)])


def test_an_unknown_schedule_is_refused_by_name():
    with pytest.raises(TrainingError, match="lr_schedule must be one of constant, linear, cosine, not 'step'"):
        learning_rate_schedule(TrainingConfig(lr_schedule="step"), 10)
