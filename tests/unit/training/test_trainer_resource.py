"""The ``trainer`` resource hands config.yaml's ``training:`` section to the trainer as is,
except ``device``, which it pins when it names one (``TDM_TRAINER_DEVICE``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tdm_dagster.config.training import TrainingConfig
from tdm_dagster.resources import TrainerResource
from tdm_dagster.training import trainer


@pytest.mark.parametrize(
    "pinned, configured, used",
    [(None, "auto", "auto"), (None, "cuda:1", "cuda:1"), ("cpu", "cuda:1", "cpu"), ("cuda", "auto", "cuda")],
)
def test_the_resource_pins_the_device_and_passes_the_rest(monkeypatch, tmp_path, pinned, configured, used):
    seen = []
    monkeypatch.setattr(trainer, "train_from_queue", lambda home, config, out, progress, profile: seen.append(config))
    settings = TrainingConfig(learning_rate=0.01, seed=4, device=configured)
    TrainerResource(device=pinned).train_from_queue("home", settings, tmp_path)
    assert seen == [TrainingConfig(learning_rate=0.01, seed=4, device=used)]


def test_the_code_location_pins_the_device_only_when_the_env_var_is_set(home):
    code = (
        "import importlib, os; import tdm_dagster.definitions as d;"
        "print(d.defs.resources['trainer'].device); os.environ['TDM_TRAINER_DEVICE'] = 'cpu';"
        "print(importlib.reload(d).defs.resources['trainer'].device)"
    )
    # the home fixture has removed every TDM_ variable, TDM_TRAINER_DEVICE included
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.split() == ["None", "cpu"]
